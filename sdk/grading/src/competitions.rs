//! The competitions of MLE-bench (all 82 of its low, medium, high and dev splits), with what
//! grading needs: metric, id and prediction columns, the answers file, the sample submission
//! and the grading recipe. Facts from MLE-bench's competition configs and graders as described
//! in `shared/mlebench/GRADERS.md`. Competitions outside the table are graded through a
//! [`GenericSpec`] from the configuration.

use crate::grade::{Recipe, RowSums};
use serde::{Deserialize, Serialize};

/// MLE-bench's complexity split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Low,
    Medium,
    High,
    Dev,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Low => "low",
            Split::Medium => "medium",
            Split::High => "high",
            Split::Dev => "dev",
        }
    }
}

/// One competition's grading facts.
#[derive(Clone, Copy, Debug)]
pub struct Competition {
    pub id: &'static str,
    pub split: Split,
    /// The metric's name as MLE-bench calls it.
    pub metric: &'static str,
    pub lower_is_better: bool,
    pub id_column: &'static str,
    /// Prediction columns; empty for one-hot log loss, whose classes are the answers' columns
    /// other than the id.
    pub targets: &'static [&'static str],
    /// Relative to `prepared/`.
    pub answers: &'static str,
    /// Relative to `prepared/`.
    pub sample_submission: &'static str,
    pub recipe: Recipe,
}

#[allow(clippy::too_many_arguments)]
const fn graded(
    id: &'static str,
    split: Split,
    metric: &'static str,
    lower: bool,
    id_column: &'static str,
    targets: &'static [&'static str],
    answers: &'static str,
    sample_submission: &'static str,
    recipe: Recipe,
) -> Competition {
    Competition {
        id,
        split,
        metric,
        lower_is_better: lower,
        id_column,
        targets,
        answers,
        sample_submission,
        recipe,
    }
}

use Split::*;

const AUC: Recipe = Recipe::RocAuc;
const ACC: Recipe = Recipe::Accuracy;
const TEST: &str = "private/test.csv";
const ANSWERS: &str = "private/answers.csv";
const SAMPLE: &str = "public/sample_submission.csv";
/// Google QUEST's 30 rated aspects, in Kaggle's column order.
const QUEST_TARGETS: &[&str] = &[
    "question_asker_intent_understanding",
    "question_body_critical",
    "question_conversational",
    "question_expect_short_answer",
    "question_fact_seeking",
    "question_has_commonly_accepted_answer",
    "question_interestingness_others",
    "question_interestingness_self",
    "question_multi_intent",
    "question_not_really_a_question",
    "question_opinion_seeking",
    "question_type_choice",
    "question_type_compare",
    "question_type_consequence",
    "question_type_definition",
    "question_type_entity",
    "question_type_instructions",
    "question_type_procedure",
    "question_type_reason_explanation",
    "question_type_spelling",
    "question_well_written",
    "answer_helpful",
    "answer_level_of_information",
    "answer_plausible",
    "answer_relevance",
    "answer_satisfaction",
    "answer_type_instructions",
    "answer_type_procedure",
    "answer_type_reason_explanation",
    "answer_well_written",
];
/// The class columns are the answers' columns other than the id.
const FROM_ANSWERS: &[&str] = &[];

/// Every competition of MLE-bench's four splits, in alphabetical order.
#[rustfmt::skip]
pub const COMPETITIONS: &[Competition] = &[
    graded("3d-object-detection-for-autonomous-vehicles", High, "mean-average-precision", false, "Id", &["PredictionString"], TEST, SAMPLE, Recipe::MeanAp3d),
    graded("AI4Code", Medium, "kendall-tau", false, "id", &["cell_order"], "private/test_orders.csv", SAMPLE, Recipe::PooledKendallTau),
    graded("aerial-cactus-identification", Low, "auc-roc", false, "id", &["has_cactus"], TEST, SAMPLE, AUC),
    graded("alaska2-image-steganalysis", Medium, "weighted-auroc", false, "Id", &["Label"], TEST, SAMPLE, Recipe::WeightedAuc),
    graded("aptos2019-blindness-detection", Low, "quadratic-weighted-kappa", false, "id_code", &["diagnosis"], TEST, SAMPLE, Recipe::QuadraticKappa),
    graded("billion-word-imputation", Medium, "levenshtein-distance", true, "id", &["sentence"], TEST, "private/sample_submission.csv", Recipe::MeanLevenshtein { missing_as: None }),
    graded("bms-molecular-translation", High, "levenshtein-distance", true, "image_id", &["InChI"], TEST, SAMPLE, Recipe::MeanLevenshtein { missing_as: Some("nan") }),
    graded("cassava-leaf-disease-classification", Medium, "accuracy", false, "image_id", &["label"], TEST, SAMPLE, ACC),
    graded("cdiscount-image-classification-challenge", Medium, "accuracy", false, "_id", &["category_id"], ANSWERS, SAMPLE, ACC),
    graded("chaii-hindi-and-tamil-question-answering", Medium, "word-level-jaccard-score", false, "id", &["PredictionString"], TEST, SAMPLE, Recipe::MeanWordJaccard { both_empty_error: false }),
    graded("champs-scalar-coupling", Medium, "log-mean-absolute-error", true, "id", &["scalar_coupling_constant"], ANSWERS, SAMPLE, Recipe::LogMaeByGroup { group: "type" }),
    graded("denoising-dirty-documents", Low, "root-mean-squared-error", true, "id", &["value"], ANSWERS, "public/sampleSubmission.csv", Recipe::Rmse { range: None, by_position: false }),
    graded("detecting-insults-in-social-commentary", Low, "auc-roc", false, "Comment", &["Insult"], TEST, "public/sample_submission_null.csv", AUC),
    graded("dog-breed-identification", Low, "multi-class-log-loss", true, "id", FROM_ANSWERS, TEST, SAMPLE, Recipe::OneHotLogLoss { exact_columns: false, sums: RowSums::Close }),
    graded("dogs-vs-cats-redux-kernels-edition", Low, "log-loss", true, "id", &["label"], ANSWERS, SAMPLE, Recipe::BinaryLogLoss { check_rows: true }),
    graded("facebook-recruiting-iii-keyword-extraction", Medium, "micro-f1-score", false, "Id", &["Tags"], TEST, SAMPLE, Recipe::MicroF1Sets),
    graded("freesound-audio-tagging-2019", Medium, "label-ranking-average-precision", false, "fname", &[], TEST, SAMPLE, Recipe::Lwlrap),
    graded("google-quest-challenge", Medium, "column-wise-spearman", false, "qa_id", QUEST_TARGETS, TEST, SAMPLE, Recipe::ColumnSpearman),
    graded("google-research-identify-contrails-reduce-global-warming", High, "global-dice", false, "record_id", &["encoded_pixels"], ANSWERS, SAMPLE, Recipe::GlobalDice),
    graded("h-and-m-personalized-fashion-recommendations", Medium, "MAP@12", false, "customer_id", &["prediction"], ANSWERS, SAMPLE, Recipe::CustomerMapAtK { k: 12 }),
    graded("herbarium-2020-fgvc7", Medium, "macro-f1-score", false, "Id", &["Predicted"], ANSWERS, SAMPLE, Recipe::MacroF1),
    graded("herbarium-2021-fgvc8", Medium, "macro-f1-score", false, "Id", &["Predicted"], ANSWERS, SAMPLE, Recipe::MacroF1),
    graded("herbarium-2022-fgvc9", Medium, "macro-f1-score", false, "Id", &["Predicted"], ANSWERS, SAMPLE, Recipe::MacroF1),
    graded("histopathologic-cancer-detection", Low, "auc-roc", false, "id", &["label"], ANSWERS, SAMPLE, AUC),
    graded("hms-harmful-brain-activity-classification", High, "KL-divergence", true, "eeg_id", &["seizure_vote", "lpd_vote", "gpd_vote", "lrda_vote", "grda_vote", "other_vote"], TEST, SAMPLE, Recipe::KlDivergence),
    graded("hotel-id-2021-fgvc8", Medium, "map-at-5", false, "image", &["hotel_id"], TEST, SAMPLE, Recipe::MapAtK { k: 5, exact_columns: false }),
    graded("hubmap-kidney-segmentation", Medium, "dice-coefficient", false, "id", &["predicted"], TEST, SAMPLE, Recipe::MeanDice),
    graded("icecube-neutrinos-in-deep-ice", Medium, "mean-angular-error", true, "event_id", &["azimuth", "zenith"], TEST, SAMPLE, Recipe::MeanAngularError),
    graded("imet-2020-fgvc7", Medium, "micro-f1-score", false, "id", &["attribute_ids"], ANSWERS, SAMPLE, Recipe::MicroF1Sets),
    graded("inaturalist-2019-fgvc6", Medium, "top-1-classification-error", true, "id", &["predicted"], ANSWERS, "public/kaggle_sample_submission.csv", Recipe::TopOneError),
    graded("invasive-species-monitoring", Dev, "auc-roc", false, "name", &["invasive"], ANSWERS, "private/sample_submission.csv", AUC),
    graded("iwildcam-2019-fgvc6", High, "macro-f1-score", false, "Id", &["Category"], ANSWERS, SAMPLE, Recipe::MacroF1),
    graded("iwildcam-2020-fgvc7", Medium, "accuracy", false, "Id", &["Category"], ANSWERS, SAMPLE, ACC),
    graded("jigsaw-toxic-comment-classification-challenge", Low, "column-wise-roc-auc", false, "id", &["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"], TEST, SAMPLE, Recipe::JigsawToxic),
    graded("jigsaw-unintended-bias-in-toxicity-classification", Medium, "jigsaw-bias-auc", false, "id", &["prediction"], TEST, SAMPLE, Recipe::JigsawBias),
    graded("kuzushiji-recognition", Medium, "f1-score", false, "image_id", &["labels"], TEST, SAMPLE, Recipe::KuzushijiF1),
    graded("leaf-classification", Low, "multi-class-log-loss", true, "id", FROM_ANSWERS, TEST, SAMPLE, Recipe::OneHotLogLoss { exact_columns: true, sums: RowSums::Close }),
    graded("learning-agency-lab-automated-essay-scoring-2", Medium, "quadratic-weighted-kappa", false, "essay_id", &["score"], ANSWERS, SAMPLE, Recipe::QuadraticKappa),
    graded("lmsys-chatbot-arena", Medium, "multi-class-log-loss", true, "id", &["winner_model_a", "winner_model_b", "winner_tie"], ANSWERS, SAMPLE, Recipe::OneHotLogLoss { exact_columns: false, sums: RowSums::Round6 }),
    graded("ml2021spring-hw2", Dev, "accuracy", false, "Id", &["ClassId"], ANSWERS, "public/sampleSubmission.csv", ACC),
    graded("mlsp-2013-birds", Low, "auc-roc", false, "Id", &["Probability"], ANSWERS, SAMPLE, AUC),
    graded("movie-review-sentiment-analysis-kernels-only", Dev, "accuracy", false, "PhraseId", &["Sentiment"], ANSWERS, "public/sampleSubmission.csv", ACC),
    graded("multi-modal-gesture-recognition", Medium, "levenshtein-distance", true, "Id", &["Sequence"], TEST, "public/randomPredictions.csv", Recipe::SequenceEditRate),
    graded("new-york-city-taxi-fare-prediction", Low, "root-mean-squared-error", true, "key", &["fare_amount"], TEST, SAMPLE, Recipe::Rmse { range: None, by_position: true }),
    graded("nfl-player-contact-detection", High, "matthews-correlation-coefficient", false, "contact_id", &["contact"], TEST, SAMPLE, Recipe::Mcc),
    graded("nomad2018-predict-transparent-conductors", Low, "mean-column-wise-rmsle", true, "id", &["formation_energy_ev_natom", "bandgap_energy_ev"], TEST, SAMPLE, Recipe::PositionalMeanRmsle),
    graded("osic-pulmonary-fibrosis-progression", Medium, "modified-laplace-log-likelihood", false, "Patient_Week", &["FVC", "Confidence"], TEST, SAMPLE, Recipe::OsicLaplace),
    graded("paddy-disease-classification", Dev, "accuracy", false, "image_id", &["label"], TEST, SAMPLE, Recipe::TextAccuracy { missing_as: "" }),
    graded("petfinder-pawpularity-score", Medium, "root-mean-squared-error", true, "Id", &["Pawpularity"], TEST, SAMPLE, Recipe::Rmse { range: Some((1.0, 100.0)), by_position: false }),
    graded("plant-pathology-2020-fgvc7", Low, "mean-column-wise-roc-auc", false, "image_id", &["healthy", "multiple_diseases", "rust", "scab"], TEST, SAMPLE, Recipe::MeanRocAuc { exact_columns: true, range_check: false, }),
    graded("plant-pathology-2021-fgvc8", Medium, "micro-f1-score", false, "image", &["labels"], ANSWERS, SAMPLE, Recipe::MicroF1Sets),
    graded("plant-seedlings-classification", Dev, "micro-f1-score", false, "file", &["species"], ANSWERS, SAMPLE, ACC),
    graded("playground-series-s3e18", Dev, "auroc-multi-label", false, "id", &["EC1", "EC2"], TEST, SAMPLE, Recipe::MeanRocAuc { exact_columns: false, range_check: false, }),
    graded("predict-volcanic-eruptions-ingv-oe", High, "mean-absolute-error", true, "segment_id", &["time_to_eruption"], TEST, SAMPLE, Recipe::JoinedMae { integer: true }),
    graded("random-acts-of-pizza", Low, "auc-roc", false, "request_id", &["requester_received_pizza"], TEST, "public/sampleSubmission.csv", AUC),
    graded("ranzcr-clip-catheter-line-classification", Low, "auc-roc", false, "StudyInstanceUID", &["ETT - Abnormal", "ETT - Borderline", "ETT - Normal", "NGT - Abnormal", "NGT - Borderline", "NGT - Incompletely Imaged", "NGT - Normal", "CVC - Abnormal", "CVC - Borderline"], TEST, SAMPLE, Recipe::MeanRocAuc { exact_columns: false, range_check: true }),
    graded("rsna-2022-cervical-spine-fracture-detection", High, "weighted-multi-label-log-loss", true, "row_id", &["fractured"], ANSWERS, SAMPLE, Recipe::StudyWeightedLogLoss),
    graded("rsna-breast-cancer-detection", High, "probabilistic-f1-score", false, "prediction_id", &["cancer"], ANSWERS, SAMPLE, Recipe::ProbabilisticF1),
    graded("rsna-miccai-brain-tumor-radiogenomic-classification", High, "auc-roc", false, "BraTS21ID", &["MGMT_value"], TEST, SAMPLE, AUC),
    graded("seti-breakthrough-listen", Medium, "auc-roc", false, "id", &["target"], TEST, SAMPLE, AUC),
    graded("siim-covid19-detection", High, "mean-average-precision", false, "id", &["PredictionString"], TEST, SAMPLE, Recipe::SiimMap),
    graded("siim-isic-melanoma-classification", Low, "auc-roc", false, "image_name", &["target"], TEST, SAMPLE, AUC),
    graded("smartphone-decimeter-2022", High, "average-haversine-distance", true, "tripId", &["UnixTimeMillis", "LatitudeDegrees", "LongitudeDegrees"], TEST, SAMPLE, Recipe::TripHaversine),
    graded("spaceship-titanic", Dev, "accuracy", false, "PassengerId", &["Transported"], TEST, SAMPLE, ACC),
    graded("spooky-author-identification", Low, "multi-class-log-loss", true, "id", &["EAP", "HPL", "MWS"], TEST, SAMPLE, Recipe::OneHotLogLoss { exact_columns: true, sums: RowSums::CloseAfterFirstColumn }),
    graded("stanford-covid-vaccine", High, "mcrmse", true, "id_seqpos", &["reactivity", "deg_Mg_pH10", "deg_pH10", "deg_Mg_50C", "deg_50C"], TEST, SAMPLE, Recipe::CovidMcrmse),
    graded("statoil-iceberg-classifier-challenge", Medium, "log-loss", true, "id", &["is_iceberg"], TEST, "private/sample_submission.csv", Recipe::BinaryLogLoss { check_rows: false }),
    graded("tabular-playground-series-dec-2021", Low, "multi-class-classification-accuracy", false, "Id", &["Cover_Type"], TEST, SAMPLE, ACC),
    graded("tabular-playground-series-may-2022", Low, "auc-roc", false, "id", &["target"], TEST, SAMPLE, AUC),
    graded("tensorflow-speech-recognition-challenge", Medium, "accuracy", false, "fname", &["label"], TEST, SAMPLE, ACC),
    graded("tensorflow2-question-answering", Medium, "micro-f1-score", false, "example_id", &["PredictionString"], "private/test.jsonl", SAMPLE, Recipe::NqAccuracy),
    graded("text-normalization-challenge-english-language", Low, "accuracy", false, "id", &["after"], ANSWERS, "private/sample_submission.csv", Recipe::TextAccuracy { missing_as: "nan" }),
    graded("text-normalization-challenge-russian-language", Low, "accuracy", false, "id", &["after"], ANSWERS, "private/sample_submission.csv", Recipe::TextAccuracy { missing_as: "nan" }),
    graded("tgs-salt-identification-challenge", Medium, "mean-precision-iou-thresholds", false, "id", &["rle_mask"], TEST, SAMPLE, Recipe::TgsIou),
    graded("the-icml-2013-whale-challenge-right-whale-redux", Low, "auc-roc", false, "clip", &["probability"], TEST, "public/sampleSubmission.csv", AUC),
    graded("tweet-sentiment-extraction", Medium, "jaccard-similarity", false, "textID", &["selected_text"], TEST, SAMPLE, Recipe::MeanWordJaccard { both_empty_error: true }),
    graded("us-patent-phrase-to-phrase-matching", Medium, "pearson-correlation-coefficient", false, "id", &["score"], TEST, SAMPLE, Recipe::Pearson),
    graded("uw-madison-gi-tract-image-segmentation", Medium, "dice-hausdorff-combo", false, "id", &["predicted"], TEST, SAMPLE, Recipe::DiceHausdorff),
    graded("ventilator-pressure-prediction", Medium, "mean-absolute-error", true, "id", &["pressure"], TEST, SAMPLE, Recipe::MaskedMae { column: "u_out", value: 0.0 }),
    graded("vesuvius-challenge-ink-detection", High, "f0.5-score", false, "Id", &["Predicted"], "private/inklabels_rle.csv", SAMPLE, Recipe::InkF05),
    graded("vinbigdata-chest-xray-abnormalities-detection", High, "mAP-at-IoU-0.4", false, "image_id", &["PredictionString"], ANSWERS, SAMPLE, Recipe::CocoAp),
    graded("whale-categorization-playground", Medium, "MAP@5", false, "Image", &["Id"], TEST, SAMPLE, Recipe::MapAtK { k: 5, exact_columns: true }),
];

/// The competition with this id.
pub fn find(id: &str) -> Option<&'static Competition> {
    COMPETITIONS.iter().find(|c| c.id == id)
}

/// A competition MLE-bench does not know, configured by the operator: metric, id column and
/// target columns (`[tasks.mlebench.competitions.<id>]` in `sophon.toml`, passed to the
/// adapter as its options).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenericSpec {
    /// `accuracy`, `auc` (mean over targets), `log-loss` (one-hot targets), `binary-log-loss`
    /// or `rmse`.
    pub metric: String,
    pub id_column: String,
    pub target_columns: Vec<String>,
    #[serde(default = "default_answers")]
    pub answers: String,
    #[serde(default = "default_sample")]
    pub sample_submission: String,
    /// Defaults to the metric's usual direction.
    pub lower_is_better: Option<bool>,
}

fn default_answers() -> String {
    TEST.into()
}

fn default_sample() -> String {
    SAMPLE.into()
}

impl GenericSpec {
    /// The recipe and default direction of `metric`.
    pub fn recipe(&self) -> Result<(Recipe, bool), String> {
        Ok(match self.metric.as_str() {
            "accuracy" => (Recipe::Accuracy, false),
            "auc" | "roc-auc" => (
                Recipe::MeanRocAuc {
                    exact_columns: false,
                    range_check: true,
                },
                false,
            ),
            "log-loss" => (
                Recipe::OneHotLogLoss {
                    exact_columns: false,
                    sums: RowSums::Close,
                },
                true,
            ),
            "binary-log-loss" => (Recipe::BinaryLogLoss { check_rows: true }, true),
            "rmse" => (
                Recipe::Rmse {
                    range: None,
                    by_position: false,
                },
                true,
            ),
            other => {
                return Err(format!(
                    "metric `{other}` is not one the generic grader knows: use accuracy, auc, \
                     log-loss, binary-log-loss or rmse"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_complete_sorted_and_consistent() {
        assert_eq!(COMPETITIONS.len(), 82);
        let mut ids: Vec<&str> = COMPETITIONS.iter().map(|c| c.id).collect();
        let sorted = {
            let mut s = ids.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(ids, sorted);
        ids.dedup();
        assert_eq!(ids.len(), 82);
        for c in COMPETITIONS {
            assert!(!c.id_column.is_empty(), "{}", c.id);
            if c.targets.is_empty() {
                assert!(
                    matches!(c.recipe, Recipe::OneHotLogLoss { .. } | Recipe::Lwlrap),
                    "{}",
                    c.id
                );
            }
        }
        assert_eq!(find("spaceship-titanic").unwrap().recipe, Recipe::Accuracy);
        assert!(find("nope").is_none());
    }

    #[test]
    fn generic_specs_name_their_metric() {
        let spec: GenericSpec = serde_json::from_str(
            r#"{"metric": "rmse", "id-column": "id", "target-columns": ["y"]}"#,
        )
        .unwrap();
        assert!(matches!(
            spec.recipe().unwrap(),
            (Recipe::Rmse { .. }, true)
        ));
        assert_eq!(spec.answers, "private/test.csv");
        let bad = GenericSpec {
            metric: "f2".into(),
            ..spec
        };
        assert!(bad.recipe().unwrap_err().contains("accuracy, auc"));
    }
}
