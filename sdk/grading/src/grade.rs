//! Grading recipes: MLE-bench's validation checks and metric for a family of competitions.
//!
//! A recipe takes the submission and answers tables and returns
//! - `Ok(score)` — a valid submission (the score may be NaN, which MLE-bench counts as valid);
//! - `Err(Failure::Invalid(why))` — a check MLE-bench performs deliberately failed;
//! - `Err(Failure::Error(why))` — the metric would raise (MLE-bench reports a null score).
//!
//! Both failures make the submission invalid in the report; the message tells a strategy
//! what to fix.

mod boxes3d;
mod coco;
mod detection;
mod masks;
mod multi_target;
pub mod question_answering;
mod recommendation;
pub mod rle;

use crate::metrics::{self, LOG_LOSS_EPS};
use crate::table::{Cell, Column, Table};

/// Why a submission got no score.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    Invalid(String),
    Error(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Invalid(m) | Failure::Error(m) => m,
        }
    }
}

pub type GradeOutcome = Result<f64, Failure>;

fn invalid<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Invalid(message.into()))
}

fn error(message: impl Into<String>) -> Failure {
    Failure::Error(message.into())
}

/// How a competition is graded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recipe {
    /// MLE-bench's accuracy preparation: row count, columns, ids equal after sorting, then
    /// accuracy of the raw target values.
    Accuracy,
    /// Binary ROC AUC preparation: columns, row count, numeric target in [0, 1], ids equal
    /// after sorting.
    RocAuc,
    /// Mean of per-column ROC AUCs. `exact_columns`: the submission's columns must be exactly
    /// the id and the targets; `range_check`: values must lie in [0, 1].
    MeanRocAuc {
        exact_columns: bool,
        range_check: bool,
    },
    /// Multi-class log loss of one-hot answers: rows summing to 1 (by `sums`), values in
    /// [0, 1], then scikit-learn's `log_loss`. `exact_columns` as above.
    OneHotLogLoss { exact_columns: bool, sums: RowSums },
    /// Binary log loss of P(positive) in one column, values in [0, 1].
    BinaryLogLoss { check_rows: bool },
    /// RMSE; `range`: every prediction must lie within it. `by_position`: no row-count or id
    /// check — both tables sorted by id and paired by position (a length mismatch is an error).
    Rmse {
        range: Option<(f64, f64)>,
        by_position: bool,
    },
    /// Mean of per-column RMSLEs with rows paired in file order (no sort, no id check).
    PositionalMeanRmsle,
    /// MAE over the rows whose answers have `column` = `value`, after row count and id checks.
    MaskedMae { column: &'static str, value: f64 },
    /// Macro F1 over integer labels (the union of true and predicted labels).
    MacroF1,
    /// Accuracy of labels compared as text (pandas `astype(str)` / `fillna`), blanks becoming
    /// `missing_as` on both sides.
    TextAccuracy { missing_as: &'static str },
    /// Top-1 error (1 − accuracy) of the first space-separated token of each prediction;
    /// integer columns are used as they are, a float column (blanks) is an error.
    TopOneError,
    /// Matthews correlation of 0/1 predictions after an id-set and row count check;
    /// probabilities are an error (scikit-learn: continuous targets).
    Mcc,
    /// Σ edit distance ÷ Σ true lengths of space-separated integer sequences, after row count
    /// and id checks; a token that is not an integer is invalid.
    SequenceEditRate,
    /// Kaggle's pooled Kendall tau of space-separated orders, after row count, id-set and
    /// per-row length checks; a prediction missing a true item is an error.
    PooledKendallTau,
    /// RSNA 2022's study-weighted binary log loss (clip 1e-15): per study, Σ w·loss / Σ w with
    /// w = 7/14 for `patient_overall` (truth 0/1) and 1/2 for the vertebrae; mean over studies.
    /// Values must lie in [0, 1] (blanks fail), ids must match.
    StudyWeightedLogLoss,
    /// Probabilistic F1 after row count and id checks.
    ProbabilisticF1,
    /// ALASKA2's weighted AUC after row count, id and numeric (no NaN) checks.
    WeightedAuc,
    /// MAE over an inner join of the answers with the submission on the id (duplicates count
    /// each time), after an id-set check (no row count); `integer`: rounded to an integer.
    JoinedMae { integer: bool },
    /// Mean over the answers' `group` values of ln(MAE) within the group, over an inner join
    /// on the id (champs); MAE 0 gives −inf, which MLE-bench keeps.
    LogMaeByGroup { group: &'static str },
    /// Jigsaw's unintended-bias blend (GRADERS.md 4.8): 0.25 × (overall AUC + the power
    /// means (p = −5) over the 9 identities of the subgroup, BPSN and BNSP AUCs), with the
    /// answers' toxicity and identities and the submission's scores all binarised at ≥ 0.5
    /// (missing → 0). An AUC over one class is NaN, as in Kaggle's kernel.
    JigsawBias,
    /// Stanford COVID vaccine's MCRMSE (GRADERS.md 4.21): row count, the 6 columns, ids equal
    /// after sorting; the answers' `keep` flags applied to the sorted submission by original
    /// row number; RMSE of the kept rows by position, mean over the 3 scored columns.
    CovidMcrmse,
    /// OSIC's modified Laplace log-likelihood (GRADERS.md 4.10) on each patient's last 3
    /// measured weeks: σ = max(Confidence, 70) (blank → 0 → 70), Δ = min(|FVC error|, 1000),
    /// mean of −√2·Δ/σ − ln(√2·σ); rows may be missing, unknown ids are invalid, duplicates
    /// an error.
    OsicLaplace,
    /// Freesound's label-weighted LRAP: row count, `fname` first, then exactly the answers'
    /// class columns in their order, ids equal after sorting, numeric scores (NaN → null).
    Lwlrap,
    /// smartphone-decimeter's score: per trip (answers' first-appearance order), rows paired by
    /// position within the trip, the mean of the 50th and 95th percentiles (numpy's linear
    /// interpolation) of the haversine error in metres; mean over trips. Invalid: a missing
    /// column, the total row count, a trip's row count.
    TripHaversine,
    /// Mean angle in radians between (azimuth, zenith) directions; the submission must have
    /// exactly the id and both angle columns, numeric and finite.
    MeanAngularError,
    /// MAP@k of space-separated predictions against one true label per row (as text);
    /// `exact_columns` as above. Rows paired by id after a row count and id-set check.
    MapAtK { k: usize, exact_columns: bool },
    /// Micro F1 of whitespace-separated label sets, vocabulary from the answers. The label
    /// columns must be text without blanks (pandas' `.str.split` fails otherwise).
    MicroF1Sets,
    /// Quadratic weighted kappa of the ids-aligned labels (no row-count check: a length
    /// mismatch is an error).
    QuadraticKappa,
    /// Pearson correlation after row count and id checks (NaN for constant predictions).
    Pearson,
    /// Mean Levenshtein distance between texts after row count and id checks; a blank becomes
    /// `missing_as`, or is an error (a NaN reaches the metric) when `None`.
    MeanLevenshtein { missing_as: Option<&'static str> },
    /// Mean lower-cased word-set Jaccard after row count and id checks; blanks count as "".
    /// Two empty texts score 0, or are an error (division by zero) when `both_empty_error`.
    MeanWordJaccard { both_empty_error: bool },
    /// Jigsaw toxic comments: mean per-column ROC AUC of every non-id submission column, in the
    /// submission's order, against the answers' classes, rows labelled −1 dropped.
    JigsawToxic,
    /// Google QUEST: mean Spearman ρ over the targets, rows paired after sorting by id.
    ColumnSpearman,
    /// HMS: KL divergence of the normalised vote distribution from the clipped prediction.
    KlDivergence,
    /// H&M: MAP@k of space-separated article ids per customer.
    CustomerMapAtK { k: usize },
    /// TensorFlow 2 QA: accuracy of "answered" against the Natural Questions annotations.
    NqAccuracy,
    /// TGS salt: fraction of IoU thresholds beaten per 101×101 mask.
    TgsIou,
    /// Contrails: Dice over all pixels of all records.
    GlobalDice,
    /// HuBMAP: mean per-image Dice.
    MeanDice,
    /// Vesuvius: pixel F0.5 per fragment, row-major RLE.
    InkF05,
    /// UW-Madison: 0.4 × 2-D Dice + 0.6 × (1 − 3-D Hausdorff).
    DiceHausdorff,
    /// Kuzushiji: pooled F1 of predicted character centres inside true boxes.
    KuzushijiF1,
    /// SIIM-COVID-19: mean over classes of the average precision of a box match list.
    SiimMap,
    /// VinBigData: pycocotools' AP at IoU 0.4 with MLE-bench's box and id quirks.
    CocoAp,
    /// Lyft 3-D detection: mean over samples and IoU thresholds of the per-sample 3-D mAP.
    MeanAp3d,
}

/// Read an answers file: a CSV with pandas' semantics, or Natural Questions JSONL (`.jsonl`,
/// TensorFlow 2 QA) as the table of [`question_answering::read_nq_answers`].
pub fn read_answers(path: &std::path::Path) -> Result<Table, crate::table::ReadError> {
    if path.extension().is_some_and(|e| e == "jsonl") {
        let file = std::fs::File::open(path)
            .map_err(|e| crate::table::ReadError(format!("cannot open {}: {e}", path.display())))?;
        question_answering::read_nq_answers(std::io::BufReader::new(file))
    } else {
        Table::read_path(path)
    }
}

/// How the rows of a probability submission must sum to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowSums {
    /// `np.isclose(sum, 1, atol=1e-6)` over the class columns.
    Close,
    /// `round(sum, 6) == 1` over the class columns.
    Round6,
    /// `np.isclose` over every column but the first, which must then be the id.
    CloseAfterFirstColumn,
}

/// The columns a recipe works on.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    pub id: &'a str,
    pub targets: &'a [&'a str],
}

/// Grade `submission` against `answers`. Without targets, the targets are the answers'
/// columns other than the id (one-hot classes).
pub fn grade(
    recipe: Recipe,
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    if columns.targets.is_empty() {
        if !answers.has(columns.id) {
            return Err(error(format!(
                "the answers lack the id column `{}`",
                columns.id
            )));
        }
        let classes: Vec<&str> = answers
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != columns.id)
            .collect();
        if classes.is_empty() {
            return Err(error("the answers have no class columns"));
        }
        let columns = Columns {
            id: columns.id,
            targets: &classes,
        };
        return grade(recipe, columns, submission, answers);
    }
    match recipe {
        Recipe::Accuracy => accuracy(columns, submission, answers),
        Recipe::RocAuc => mean_roc_auc(columns, submission, answers, false, true),
        Recipe::MeanRocAuc {
            exact_columns,
            range_check,
        } => mean_roc_auc(columns, submission, answers, exact_columns, range_check),
        Recipe::OneHotLogLoss {
            exact_columns,
            sums,
        } => one_hot_log_loss(columns, submission, answers, exact_columns, sums),
        Recipe::BinaryLogLoss { check_rows } => {
            binary_log_loss(columns, submission, answers, check_rows)
        }
        Recipe::Rmse { range, by_position } => {
            if by_position {
                sorted_rmse(columns, submission, answers)
            } else {
                rmse(columns, submission, answers, range)
            }
        }
        Recipe::PositionalMeanRmsle => positional_rmsle(columns, submission, answers),
        Recipe::MaskedMae { column, value } => {
            masked_mae(columns, submission, answers, column, value)
        }
        Recipe::MacroF1 => macro_f1(columns, submission, answers),
        Recipe::TextAccuracy { missing_as } => {
            text_accuracy(columns, submission, answers, missing_as)
        }
        Recipe::TopOneError => top_one_error(columns, submission, answers),
        Recipe::Mcc => mcc(columns, submission, answers),
        Recipe::MeanAngularError => angular(columns, submission, answers),
        Recipe::WeightedAuc => weighted_auc(columns, submission, answers),
        Recipe::StudyWeightedLogLoss => study_log_loss(columns, submission, answers),
        Recipe::ProbabilisticF1 => probabilistic_f1(columns, submission, answers),
        Recipe::SequenceEditRate => sequence_edit_rate(columns, submission, answers),
        Recipe::PooledKendallTau => kendall(columns, submission, answers),
        Recipe::JoinedMae { integer } => joined_mae(columns, submission, answers, integer, None),
        Recipe::LogMaeByGroup { group } => {
            joined_mae(columns, submission, answers, false, Some(group))
        }
        Recipe::MapAtK { k, exact_columns } => {
            map_at_k(columns, submission, answers, k, exact_columns)
        }
        Recipe::MicroF1Sets => micro_f1_sets(columns, submission, answers),
        Recipe::QuadraticKappa => kappa(columns, submission, answers),
        Recipe::Pearson => pearson(columns, submission, answers),
        Recipe::MeanLevenshtein { missing_as } => texts(
            columns,
            submission,
            answers,
            TextMetric::Levenshtein(missing_as),
        ),
        Recipe::MeanWordJaccard { both_empty_error } => texts(
            columns,
            submission,
            answers,
            TextMetric::Jaccard { both_empty_error },
        ),
        Recipe::JigsawBias => jigsaw_bias(columns, submission, answers),
        Recipe::CovidMcrmse => covid_mcrmse(columns, submission, answers),
        Recipe::OsicLaplace => osic_laplace(columns, submission, answers),
        Recipe::Lwlrap => lwlrap(columns, submission, answers),
        Recipe::TripHaversine => trip_haversine(columns, submission, answers),
        Recipe::JigsawToxic => {
            multi_target::jigsaw_toxic(columns.id, columns.targets, submission, answers)
        }
        Recipe::ColumnSpearman => {
            multi_target::column_spearman(columns.id, columns.targets, submission, answers)
        }
        Recipe::KlDivergence => {
            multi_target::kl_divergence(columns.id, columns.targets, submission, answers)
        }
        Recipe::CustomerMapAtK { k } => recommendation::customer_map_at_k(
            columns.id,
            columns.targets[0],
            k,
            submission,
            answers,
        ),
        Recipe::NqAccuracy => question_answering::nq_accuracy(submission, answers),
        Recipe::TgsIou => masks::tgs_iou(columns.id, columns.targets[0], submission, answers),
        Recipe::GlobalDice => {
            masks::global_dice(columns.id, columns.targets[0], submission, answers)
        }
        Recipe::MeanDice => masks::mean_dice(columns.id, columns.targets[0], submission, answers),
        Recipe::InkF05 => masks::ink_f05(columns.id, columns.targets[0], submission, answers),
        Recipe::KuzushijiF1 => {
            detection::kuzushiji_f1(columns.id, columns.targets[0], submission, answers)
        }
        Recipe::SiimMap => detection::siim_map(columns.id, columns.targets[0], submission, answers),
        Recipe::MeanAp3d => {
            boxes3d::mean_ap_3d(columns.id, columns.targets[0], submission, answers)
        }
        Recipe::CocoAp => coco::coco_ap(columns.id, columns.targets[0], submission, answers),
        Recipe::DiceHausdorff => masks::dice_hausdorff(columns.targets[0], submission, answers),
    }
}

fn require_columns(table: &Table, names: &[&str], whose: &str) -> Result<(), Failure> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| !table.has(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        invalid(format!(
            "the {whose} lacks column(s) {}; it has {}",
            quote(&missing),
            quote_owned(&table.names)
        ))
    }
}

fn exact_columns(submission: &Table, expected: &[&str]) -> Result<(), Failure> {
    let mut have: Vec<&str> = submission.names.iter().map(String::as_str).collect();
    let mut want = expected.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    if have == want {
        return Ok(());
    }
    let extra: Vec<&str> = have.iter().copied().filter(|n| !want.contains(n)).collect();
    let missing: Vec<&str> = want.iter().copied().filter(|n| !have.contains(n)).collect();
    invalid(format!(
        "the submission must have exactly the columns {}; missing {}, unexpected {}",
        quote(expected),
        quote(&missing),
        quote(&extra)
    ))
}

fn same_rows(submission: &Table, answers: &Table) -> Result<(), Failure> {
    if submission.rows != answers.rows {
        return invalid(format!(
            "the submission has {} rows but {} are expected (one per test id)",
            submission.rows, answers.rows
        ));
    }
    Ok(())
}

/// Row orders that pair the two tables by id, after checking the ids agree.
fn align(
    id: &str,
    submission: &Table,
    answers: &Table,
) -> Result<(Vec<usize>, Vec<usize>), Failure> {
    let sub_order = submission.order_by(id).expect("id column checked");
    let ans_order = answers.order_by(id).expect("id column checked");
    if sub_order.len() != ans_order.len() {
        return Err(error(format!(
            "{} submission rows against {} answers rows",
            sub_order.len(),
            ans_order.len()
        )));
    }
    let (s, a) = (submission.column(id).unwrap(), answers.column(id).unwrap());
    let differ = |i: usize, j: usize| !s.sort_key(i).same(&a.sort_key(j));
    let mismatches = sub_order
        .iter()
        .zip(&ans_order)
        .filter(|(i, j)| differ(**i, **j))
        .count();
    if mismatches > 0 {
        let first = sub_order
            .iter()
            .zip(&ans_order)
            .find(|(i, j)| differ(**i, **j))
            .map(|(i, j)| (describe_cell(s, *i), describe_cell(a, *j)))
            .unwrap();
        return invalid(format!(
            "the `{id}` values do not match the test set's ({mismatches} differ after sorting; \
             first: submission has {}, expected {}): submit one row per test id, unchanged",
            first.0, first.1
        ));
    }
    Ok((sub_order, ans_order))
}

/// Submission and answers rows paired by id, with both target columns.
type AlignedTarget<'a> = (Vec<usize>, Vec<usize>, &'a Column, &'a Column);

/// The preamble most one-target graders share: equal row counts, the id and target columns,
/// ids equal after sorting. Returns both row orders and both target columns.
fn aligned_target<'a>(
    id: &str,
    target: &str,
    submission: &'a Table,
    answers: &'a Table,
) -> Result<AlignedTarget<'a>, Failure> {
    same_rows(submission, answers)?;
    require_columns(submission, &[id, target], "submission")?;
    require_columns(answers, &[id, target], "answers").map_err(as_error)?;
    let (sub_order, ans_order) = align(id, submission, answers)?;
    Ok((
        sub_order,
        ans_order,
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    ))
}

/// The cell as text; `None` for a blank (pandas NaN); an error for a non-text value, whose
/// `.split` fails in Python.
pub(crate) fn text_cell<'a>(
    column: &'a Column,
    row: usize,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    match column.cell(row) {
        crate::table::Cell::Text(t) => Ok(Some(t)),
        crate::table::Cell::Missing => Ok(None),
        _ => Err(error(format!("row {}: `{name}` must be text", row + 1))),
    }
}

fn describe_cell(column: &Column, row: usize) -> String {
    match column.cell(row) {
        crate::table::Cell::Num(x) => format!("{x}"),
        crate::table::Cell::Bool(b) => format!("{b}"),
        crate::table::Cell::Text(t) => format!("{t:?}"),
        crate::table::Cell::Missing => "an empty value".into(),
    }
}

fn numbers(table: &Table, name: &str, order: &[usize], whose: &str) -> Result<Vec<f64>, Failure> {
    let values = table.column(name).unwrap().to_f64().ok_or_else(|| {
        Failure::Invalid(format!(
            "the {whose}'s `{name}` column must be numeric, but it is {}",
            table.column(name).unwrap().kind()
        ))
    })?;
    Ok(order.iter().map(|&r| values[r]).collect())
}

/// [`numbers`] for the metric's own input: a column that is not numeric makes the metric
/// raise (a null score), not a deliberate check fail.
fn metric_numbers(
    table: &Table,
    name: &str,
    order: &[usize],
    whose: &str,
) -> Result<Vec<f64>, Failure> {
    numbers(table, name, order, whose).map_err(as_error)
}

/// A failed check demoted to a metric error (MLE-bench reaches it by an exception, not a
/// deliberate validation).
fn as_error(f: Failure) -> Failure {
    Failure::Error(f.message().to_string())
}

/// The id and target columns are present (`exact`: and nothing else).
fn check_columns(submission: &Table, columns: Columns<'_>, exact: bool) -> Result<(), Failure> {
    let mut needed = vec![columns.id];
    needed.extend_from_slice(columns.targets);
    if exact {
        exact_columns(submission, &needed)
    } else {
        require_columns(submission, &needed, "submission")
    }
}

fn accuracy(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    same_rows(submission, answers)?;
    let target = columns.targets[0];
    require_columns(submission, &[target, columns.id], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    // scikit-learn refuses labels with missing values (NaN makes the target type "unknown" or
    // unsortable): a null score.
    if (0..submission.rows).any(|r| sc.cell(r) == Cell::Missing) {
        return Err(error(format!(
            "`{target}` has empty values: predict a label for every row"
        )));
    }
    // Text labels against numeric or boolean ones: scikit-learn cannot sort their union
    // (pandas gives text as Python strings) and raises.
    let is_text = |c: &Column| matches!(c, Column::Text(_));
    if is_text(sc) != is_text(ac) {
        return Err(error(format!(
            "`{target}` holds {} labels but the answers are {}: write labels like the sample \
             submission's",
            sc.kind(),
            ac.kind()
        )));
    }
    metrics::accuracy(s.len(), |i| sc.cell(s[i]).label_eq(&ac.cell(a[i]))).map_err(error)
}

fn range_ok(values: &[f64], low: f64, high: f64) -> bool {
    // `min() < low or max() > high` with NaN skipped, as pandas does.
    values
        .iter()
        .filter(|v| !v.is_nan())
        .all(|v| *v >= low && *v <= high)
}

fn mean_roc_auc(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    exact: bool,
    range_check: bool,
) -> GradeOutcome {
    check_columns(submission, columns, exact)?;
    same_rows(submission, answers)?;
    let identity: Vec<usize> = (0..submission.rows).collect();
    for target in columns.targets {
        let values = numbers(submission, target, &identity, "submission")?;
        if range_check && !range_ok(&values, 0.0, 1.0) {
            return invalid(format!(
                "`{target}` holds values outside [0, 1]: submit probabilities"
            ));
        }
    }
    let (s, a) = align(columns.id, submission, answers)?;
    let mut total = 0.0;
    for target in columns.targets {
        let truth = numbers(answers, target, &a, "answers")?;
        let scores = numbers(submission, target, &s, "submission")?;
        total += metrics::roc_auc(&truth, &scores).map_err(error)?;
    }
    Ok(total / columns.targets.len() as f64)
}

fn one_hot_log_loss(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    exact: bool,
    sums: RowSums,
) -> GradeOutcome {
    check_columns(submission, columns, exact)?;
    same_rows(submission, answers)?;
    let identity: Vec<usize> = (0..submission.rows).collect();
    let probs: Vec<Vec<f64>> = columns
        .targets
        .iter()
        .map(|t| numbers(submission, t, &identity, "submission"))
        .collect::<Result<_, _>>()?;
    if sums == RowSums::CloseAfterFirstColumn
        && submission.names.first().map(String::as_str) != Some(columns.id)
    {
        // The sum then includes the id column, which pandas cannot add up.
        return Err(error(format!("`{}` must be the first column", columns.id)));
    }
    for row in 0..submission.rows {
        let sum: f64 = probs.iter().map(|c| c[row]).sum();
        // np.isclose(sum, 1, atol=1e-6) with its default rtol 1e-5, or Python's
        // round(sum, 6) == 1; NaN fails both.
        let close_to_one = match sums {
            RowSums::Round6 => metrics::round_python(sum, 6) == 1.0,
            _ => (sum - 1.0).abs() <= 1e-6 + 1e-5,
        };
        if !close_to_one {
            return invalid(format!(
                "row {} sums to {sum} over the class columns; each row's probabilities must sum to 1",
                row + 1
            ));
        }
    }
    if probs.iter().any(|c| !range_ok(c, 0.0, 1.0)) {
        return invalid("some probabilities are outside [0, 1]");
    }
    let (s, a) = align(columns.id, submission, answers).map_err(as_error)?;
    let k = columns.targets.len();
    let mut truth = Vec::with_capacity(s.len() * k);
    let mut pred = Vec::with_capacity(s.len() * k);
    let answer_columns: Vec<Vec<f64>> = columns
        .targets
        .iter()
        .map(|t| numbers(answers, t, &a, "answers"))
        .collect::<Result<_, _>>()?;
    for i in 0..s.len() {
        for c in 0..k {
            truth.push(answer_columns[c][i]);
            pred.push(probs[c][s[i]]);
        }
    }
    metrics::log_loss(&truth, &pred, k, LOG_LOSS_EPS).map_err(error)
}

fn binary_log_loss(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    check_rows: bool,
) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    if check_rows {
        same_rows(submission, answers)?;
    }
    let identity: Vec<usize> = (0..submission.rows).collect();
    let values = numbers(submission, target, &identity, "submission")?;
    if values.iter().any(|v| !(0.0..=1.0).contains(v)) {
        return invalid(format!(
            "`{target}` must be a probability in [0, 1] on every row (no empty values)"
        ));
    }
    let (s, a) = align(columns.id, submission, answers)?;
    let truth = numbers(answers, target, &a, "answers")?;
    let probs: Vec<f64> = s.iter().map(|&r| values[r]).collect();
    metrics::binary_log_loss(&truth, &probs, LOG_LOSS_EPS).map_err(error)
}

fn rmse(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    range: Option<(f64, f64)>,
) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    let identity: Vec<usize> = (0..submission.rows).collect();
    let values = numbers(submission, target, &identity, "submission")?;
    if let Some((low, high)) = range
        && values.iter().any(|v| !(low..=high).contains(v))
    {
        return invalid(format!(
            "`{target}` must lie in [{low}, {high}] on every row (no empty values)"
        ));
    }
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let truth = numbers(answers, target, &a, "answers")?;
    let preds: Vec<f64> = s.iter().map(|&r| values[r]).collect();
    metrics::rmse(&truth, &preds).map_err(error)
}

fn kappa(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[target, columns.id], "submission")?;
    if submission.rows == 0 {
        return invalid("the submission is empty");
    }
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = metric_numbers(submission, target, &s, "submission")?;
    let truth = numbers(answers, target, &a, "answers")?;
    metrics::quadratic_weighted_kappa(&truth, &preds).map_err(error)
}

fn pearson(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = metric_numbers(submission, target, &s, "submission")?;
    let truth = numbers(answers, target, &a, "answers")?;
    metrics::pearson(&truth, &preds).map_err(error)
}

/// The text of a cell as pandas' `astype(str)` or `fillna("")` would give it.
fn cell_text(column: &Column, row: usize, blank: Option<&str>) -> Option<String> {
    match column.cell(row) {
        crate::table::Cell::Missing => blank.map(str::to_string),
        crate::table::Cell::Text(t) => Some(t.to_string()),
        crate::table::Cell::Bool(b) => Some(if b { "True" } else { "False" }.to_string()),
        crate::table::Cell::Num(x) => Some(match column {
            Column::Int(_) => format!("{}", x as i64),
            _ => python_float_text(x),
        }),
    }
}

/// Python's `str(float)` for the common cases: `1.0`, `0.5`, `1e-05`.
fn python_float_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// The per-row text metric of [`texts`].
#[derive(Clone, Copy)]
enum TextMetric {
    Levenshtein(Option<&'static str>),
    Jaccard { both_empty_error: bool },
}

fn texts(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    metric: TextMetric,
) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    let mut total = 0.0;
    for (i, j) in s.iter().zip(&a) {
        total += match metric {
            TextMetric::Levenshtein(missing_as) => {
                // python-Levenshtein raises on a NaN (a float).
                let pred = cell_text(sc, *i, missing_as).ok_or_else(|| {
                    error(format!(
                        "`{target}` is empty in some rows: predict a text for every row"
                    ))
                })?;
                let truth = cell_text(ac, *j, missing_as)
                    .ok_or_else(|| error("the answers have empty texts"))?;
                metrics::levenshtein(&pred, &truth) as f64
            }
            TextMetric::Jaccard { both_empty_error } => {
                let pred = cell_text(sc, *i, Some("")).unwrap_or_default();
                let truth = cell_text(ac, *j, Some("")).unwrap_or_default();
                if both_empty_error
                    && pred.split_whitespace().next().is_none()
                    && truth.split_whitespace().next().is_none()
                {
                    return Err(error(
                        "a row where prediction and answer are both empty divides by zero",
                    ));
                }
                metrics::word_jaccard(&truth, &pred)
            }
        };
    }
    Ok(total / s.len().max(1) as f64)
}

fn sorted_rmse(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    let s = submission.order_by(columns.id).unwrap();
    let a = answers.order_by(columns.id).unwrap();
    if s.len() != a.len() {
        return Err(error(format!(
            "{} submission rows against {} answers rows",
            s.len(),
            a.len()
        )));
    }
    let preds = metric_numbers(submission, target, &s, "submission")?;
    let truth = numbers(answers, target, &a, "answers")?;
    metrics::rmse(&truth, &preds).map_err(error)
}

/// The identity columns of Jigsaw's bias metric.
pub const JIGSAW_IDENTITIES: [&str; 9] = [
    "male",
    "female",
    "homosexual_gay_or_lesbian",
    "christian",
    "jewish",
    "muslim",
    "black",
    "white",
    "psychiatric_or_mental_illness",
];

fn jigsaw_bias(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    require_columns(submission, &[columns.id], "submission")?;
    let Some(score_column) = ["prediction", "toxicity"]
        .into_iter()
        .find(|c| submission.has(c))
    else {
        return invalid("the submission needs a `prediction` column (the toxicity score per id)");
    };
    if submission.rows != answers.rows {
        return Err(error(format!(
            "{} submission rows against {} answers rows",
            submission.rows, answers.rows
        )));
    }
    let (sub_order, ans_order) = align(columns.id, submission, answers)?;
    let binary = |values: Vec<f64>| -> Vec<f64> {
        values
            .into_iter()
            .map(|x| if x >= 0.5 { 1.0 } else { 0.0 })
            .collect()
    };
    let scores = binary(metric_numbers(
        submission,
        score_column,
        &sub_order,
        "submission",
    )?);
    let toxic = binary(numbers(answers, "toxicity", &ans_order, "answers")?);
    let auc_over = |rows: &[usize]| -> f64 {
        let truth: Vec<f64> = rows.iter().map(|&r| toxic[r]).collect();
        let preds: Vec<f64> = rows.iter().map(|&r| scores[r]).collect();
        metrics::roc_auc(&truth, &preds).unwrap_or(f64::NAN)
    };
    let all: Vec<usize> = (0..toxic.len()).collect();
    let overall = auc_over(&all);
    let mut families = [Vec::new(), Vec::new(), Vec::new()];
    for identity in JIGSAW_IDENTITIES {
        require_columns(answers, &[identity], "answers").map_err(as_error)?;
        let member = binary(numbers(answers, identity, &ans_order, "answers")?);
        let pick = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
            all.iter().copied().filter(|&r| keep(r)).collect()
        };
        let (t, m) = (&toxic, &member);
        families[0].push(auc_over(&pick(&|r| m[r] == 1.0)));
        families[1].push(auc_over(&pick(&|r| {
            (t[r] == 0.0 && m[r] == 1.0) || (t[r] == 1.0 && m[r] == 0.0)
        })));
        families[2].push(auc_over(&pick(&|r| {
            (t[r] == 1.0 && m[r] == 1.0) || (t[r] == 0.0 && m[r] == 0.0)
        })));
    }
    let power_mean = |values: &[f64]| -> f64 {
        let mean = values.iter().map(|v| v.powf(-5.0)).sum::<f64>() / values.len() as f64;
        mean.powf(-1.0 / 5.0)
    };
    Ok(0.25
        * (overall
            + power_mean(&families[0])
            + power_mean(&families[1])
            + power_mean(&families[2])))
}

fn trip_haversine(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let id = columns.id;
    let mut required = vec![id];
    required.extend_from_slice(columns.targets);
    require_columns(submission, &required, "submission")?;
    same_rows(submission, answers)?;
    let rows_of = |table: &Table| {
        let column = table.column(id).unwrap();
        let mut trips: Vec<(String, Vec<usize>)> = Vec::new();
        for r in 0..table.rows {
            let trip = cell_text(column, r, Some("nan")).unwrap_or_default();
            match trips.iter_mut().find(|(t, _)| *t == trip) {
                Some((_, rows)) => rows.push(r),
                None => trips.push((trip, vec![r])),
            }
        }
        trips
    };
    let (ans_trips, sub_trips) = (rows_of(answers), rows_of(submission));
    let all_sub: Vec<usize> = (0..submission.rows).collect();
    let all_ans: Vec<usize> = (0..answers.rows).collect();
    let coordinate = |table: &Table, name: &str, rows: &[usize], whose: &str| {
        metric_numbers(table, name, rows, whose)
    };
    let (lat_p, lon_p) = (
        coordinate(submission, "LatitudeDegrees", &all_sub, "submission")?,
        coordinate(submission, "LongitudeDegrees", &all_sub, "submission")?,
    );
    let (lat_t, lon_t) = (
        numbers(answers, "LatitudeDegrees", &all_ans, "answers")?,
        numbers(answers, "LongitudeDegrees", &all_ans, "answers")?,
    );
    let mut total = 0.0;
    for (trip, truth_rows) in &ans_trips {
        let predicted = sub_trips
            .iter()
            .find(|(t, _)| t == trip)
            .map_or(&[][..], |(_, rows)| rows.as_slice());
        if predicted.len() != truth_rows.len() {
            return invalid(format!(
                "trip {trip:?} has {} rows in the submission but {} in the test set: one row per \
                 test epoch, in the test set's order",
                predicted.len(),
                truth_rows.len()
            ));
        }
        let errors: Vec<f64> = predicted
            .iter()
            .zip(truth_rows)
            .map(|(&s, &a)| metrics::haversine_m(lat_t[a], lon_t[a], lat_p[s], lon_p[s]))
            .collect();
        if errors.iter().any(|e| e.is_nan()) {
            // numpy's percentile of an array with NaN is NaN (and so is the score).
            return Ok(f64::NAN);
        }
        total += (metrics::quantile_linear(&errors, 0.5) + metrics::quantile_linear(&errors, 0.95))
            / 2.0;
    }
    Ok(total / ans_trips.len() as f64)
}

fn lwlrap(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let id = columns.id;
    same_rows(submission, answers)?;
    if submission.names.first().map(String::as_str) != Some(id) {
        return invalid(format!("the first column must be `{id}`"));
    }
    let classes: Vec<&str> = answers
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != id)
        .collect();
    let given: Vec<&str> = submission.names[1..].iter().map(String::as_str).collect();
    if given != classes {
        return invalid(format!(
            "the columns after `{id}` must be the {} class names, in the sample submission's order",
            classes.len()
        ));
    }
    let (sub_order, ans_order) = align(id, submission, answers)?;
    let mut scores = vec![Vec::with_capacity(classes.len()); sub_order.len()];
    let mut truth = vec![Vec::with_capacity(classes.len()); ans_order.len()];
    for class in &classes {
        let s = numbers(submission, class, &sub_order, "submission")?;
        let t = numbers(answers, class, &ans_order, "answers")?;
        for (row, (x, y)) in s.into_iter().zip(t).enumerate() {
            scores[row].push(x);
            truth[row].push(y > 0.5);
        }
    }
    metrics::lwlrap(&truth, &scores).map_err(error)
}

fn osic_laplace(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let id = columns.id;
    require_columns(submission, &[id, "FVC", "Confidence"], "submission")?;
    let text_of = |table: &Table, r: usize| cell_text(table.column(id).unwrap(), r, None);
    let known: std::collections::HashSet<String> = (0..answers.rows)
        .filter_map(|r| text_of(answers, r))
        .collect();
    if let Some(r) =
        (0..submission.rows).find(|&r| text_of(submission, r).is_none_or(|t| !known.contains(&t)))
    {
        return invalid(format!(
            "row {} has a `{id}` that is not in the test set: use the test set's patient/week ids",
            r + 1
        ));
    }
    let all_sub: Vec<usize> = (0..submission.rows).collect();
    let fvc_pred = numbers(submission, "FVC", &all_sub, "submission")?;
    let confidence = numbers(submission, "Confidence", &all_sub, "submission")?;
    let all_ans: Vec<usize> = (0..answers.rows).collect();
    let fvc_true = numbers(answers, "FVC", &all_ans, "answers")?;
    // Each patient's 3 latest weeks among the answers with a measured FVC.
    let mut by_patient: std::collections::HashMap<String, Vec<(i64, usize)>> = Default::default();
    for r in all_ans.iter().copied().filter(|&r| !fvc_true[r].is_nan()) {
        let text = text_of(answers, r).unwrap_or_default();
        let (patient, week) = text
            .rsplit_once('_')
            .ok_or_else(|| error(format!("answers id {text:?} has no `_<week>`")))?;
        let week: i64 = week
            .parse()
            .map_err(|_| error(format!("answers id {text:?} has no integer week")))?;
        by_patient
            .entry(patient.to_string())
            .or_default()
            .push((week, r));
    }
    let mut last3: std::collections::HashMap<String, usize> = Default::default();
    for rows in by_patient.values_mut() {
        rows.sort_by_key(|(week, _)| *week);
        for &(_, r) in rows.iter().rev().take(3) {
            last3.insert(text_of(answers, r).unwrap_or_default(), r);
        }
    }
    let mut scored: Vec<(String, usize)> = all_sub
        .iter()
        .filter_map(|&r| {
            let t = text_of(submission, r)?;
            last3.contains_key(&t).then_some((t, r))
        })
        .collect();
    let present: std::collections::HashSet<&String> = scored.iter().map(|(t, _)| t).collect();
    let mut truth: Vec<(String, usize)> = last3
        .iter()
        .filter(|(t, _)| present.contains(t))
        .map(|(t, r)| (t.clone(), *r))
        .collect();
    if scored.len() != truth.len() {
        return Err(error(format!(
            "{} submission rows for {} scored weeks: a `{id}` appears twice",
            scored.len(),
            truth.len()
        )));
    }
    scored.sort();
    truth.sort();
    let mut total = 0.0;
    for ((_, s), (_, a)) in scored.iter().zip(&truth) {
        let c = confidence[*s];
        let sigma = (if c.is_nan() { 0.0 } else { c }).max(70.0);
        // numpy's minimum propagates NaN (a blank FVC makes the score NaN); f64::min would not.
        let error = (fvc_true[*a] - fvc_pred[*s]).abs();
        let delta = if error.is_nan() {
            error
        } else {
            error.min(1000.0)
        };
        total +=
            -std::f64::consts::SQRT_2 * delta / sigma - (std::f64::consts::SQRT_2 * sigma).ln();
    }
    Ok(total / scored.len() as f64)
}

fn covid_mcrmse(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    same_rows(submission, answers)?;
    let mut required = vec![columns.id];
    required.extend_from_slice(columns.targets);
    require_columns(submission, &required, "submission")?;
    let (sub_order, ans_order) = align(columns.id, submission, answers)?;
    let keep_column = answers
        .column("keep")
        .ok_or_else(|| error("the answers lack the `keep` column"))?;
    let keep = |r: usize| match keep_column.cell(r) {
        crate::table::Cell::Bool(b) => b,
        crate::table::Cell::Num(x) => x != 0.0,
        crate::table::Cell::Text(t) => t.eq_ignore_ascii_case("true"),
        crate::table::Cell::Missing => false,
    };
    // pandas aligns the boolean mask on the index: submission row k is kept iff answers row k
    // has keep = True (the same rows only when both files share their order).
    let kept_sub: Vec<usize> = sub_order.iter().copied().filter(|&r| keep(r)).collect();
    let kept_ans: Vec<usize> = ans_order.iter().copied().filter(|&r| keep(r)).collect();
    const SCORED: [&str; 3] = ["reactivity", "deg_Mg_pH10", "deg_Mg_50C"];
    mean_over_columns(
        &SCORED,
        metrics::rmse,
        (submission, &kept_sub),
        (answers, &kept_ans),
    )
}

/// The mean over `targets` of `metric(truth, predictions)`, each column read at the given rows
/// of the submission and of the answers (a non-numeric submission column is a metric error).
fn mean_over_columns(
    targets: &[&str],
    metric: fn(&[f64], &[f64]) -> metrics::MetricResult,
    (submission, sub_rows): (&Table, &[usize]),
    (answers, ans_rows): (&Table, &[usize]),
) -> GradeOutcome {
    let mut total = 0.0;
    for target in targets {
        let preds = metric_numbers(submission, target, sub_rows, "submission")?;
        let truth = numbers(answers, target, ans_rows, "answers")?;
        total += metric(&truth, &preds).map_err(error)?;
    }
    Ok(total / targets.len() as f64)
}

fn positional_rmsle(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    require_columns(submission, columns.targets, "submission")?;
    same_rows(submission, answers)?;
    let rows: Vec<usize> = (0..submission.rows).collect();
    mean_over_columns(
        columns.targets,
        metrics::rmsle,
        (submission, &rows),
        (answers, &rows),
    )
}

fn masked_mae(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    mask: &str,
    keep: f64,
) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = metric_numbers(submission, target, &s, "submission")?;
    let truth = numbers(answers, target, &a, "answers")?;
    let flags = numbers(answers, mask, &a, "answers")?;
    let kept: Vec<usize> = (0..flags.len()).filter(|&i| flags[i] == keep).collect();
    let t: Vec<f64> = kept.iter().map(|&i| truth[i]).collect();
    let p: Vec<f64> = kept.iter().map(|&i| preds[i]).collect();
    metrics::mae(&t, &p).map_err(error)
}

/// Integer labels, or an error naming the problem (floats that are whole numbers count).
fn integer_labels(table: &Table, name: &str, order: &[usize]) -> Result<Vec<i64>, Failure> {
    let column = table.column(name).unwrap();
    let values: Vec<i64> = match column {
        Column::Int(v) => order.iter().map(|&r| v[r]).collect(),
        Column::Float(v) if order.iter().all(|&r| v[r].fract() == 0.0) => {
            order.iter().map(|&r| v[r] as i64).collect()
        }
        other => {
            return Err(error(format!(
                "`{name}` must hold integer labels on every row, but it is {}",
                other.kind()
            )));
        }
    };
    Ok(values)
}

fn macro_f1(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = integer_labels(submission, target, &s)?;
    let truth = integer_labels(answers, target, &a)?;
    metrics::macro_f1(&truth, &preds).map_err(error)
}

fn text_accuracy(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    missing_as: &str,
) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    metrics::accuracy(s.len(), |i| {
        cell_text(sc, s[i], Some(missing_as)) == cell_text(ac, a[i], Some(missing_as))
    })
    .map_err(error)
}

fn top_one_error(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    let first = |c: &Column, r: usize| -> Result<String, Failure> {
        match c {
            Column::Int(v) => Ok(v[r].to_string()),
            // A blank cannot be turned into a label (as a NaN in a float column cannot).
            Column::Text(v) => v[r]
                .as_deref()
                .and_then(|t| t.split(' ').next())
                .map(str::to_string)
                .ok_or_else(|| error(format!("`{target}` is empty in some rows"))),
            other => Err(error(format!(
                "`{target}` must hold integer labels (or space-separated guesses), but it is {}",
                other.kind()
            ))),
        }
    };
    let mut right = 0usize;
    for (i, j) in s.iter().zip(&a) {
        if first(sc, *i)? == first(ac, *j)? {
            right += 1;
        }
    }
    Ok(1.0 - right as f64 / s.len().max(1) as f64)
}

fn mcc(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = metric_numbers(submission, target, &s, "submission")?;
    let truth = numbers(answers, target, &a, "answers")?;
    if preds.iter().any(|p| *p != 0.0 && *p != 1.0) {
        return Err(error(format!(
            "`{target}` must be 0 or 1 on every row (probabilities are not accepted)"
        )));
    }
    metrics::matthews(&truth, &preds).map_err(error)
}

fn angular(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    check_columns(submission, columns, true)?;
    let rows: Vec<usize> = (0..submission.rows).collect();
    for t in columns.targets {
        if matches!(
            submission.column(t).unwrap(),
            Column::Text(_) | Column::Bool(_)
        ) {
            return invalid(format!("`{t}` must be numeric"));
        }
        if numbers(submission, t, &rows, "submission")?
            .iter()
            .any(|v| !v.is_finite())
        {
            return invalid(format!(
                "`{t}` must be finite on every row (no blanks, no inf)"
            ));
        }
    }
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let get = |table: &Table, name: &str, order: &[usize], whose: &str| {
        numbers(table, name, order, whose)
    };
    let (az, zen) = (columns.targets[0], columns.targets[1]);
    metrics::mean_angular_error(
        &get(answers, az, &a, "answers")?,
        &get(answers, zen, &a, "answers")?,
        &get(submission, az, &s, "submission")?,
        &get(submission, zen, &s, "submission")?,
    )
    .map_err(error)
}

fn map_at_k(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    k: usize,
    exact: bool,
) -> GradeOutcome {
    let target = columns.targets[0];
    check_columns(submission, columns, exact)?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    // astype(str): a blank becomes the text "nan", which matches nothing real.
    let text = |c: &Column, r: usize| cell_text(c, r, Some("nan")).unwrap_or_default();
    let truth: Vec<Vec<String>> = a.iter().map(|&r| vec![text(ac, r)]).collect();
    let preds: Vec<Vec<String>> = s
        .iter()
        .map(|&r| text(sc, r).split(' ').map(str::to_string).collect())
        .collect();
    metrics::map_at_k(&truth, &preds, k).map_err(error)
}

/// Whitespace-separated label sets of a text column; blanks or a non-text column are errors.
fn label_sets(
    table: &Table,
    name: &str,
    order: &[usize],
    whose: &str,
) -> Result<Vec<Vec<String>>, Failure> {
    let Column::Text(values) = table.column(name).unwrap() else {
        return Err(error(format!(
            "the {whose}'s `{name}` must be text (labels separated by spaces), but it is {}",
            table.column(name).unwrap().kind()
        )));
    };
    order
        .iter()
        .map(|&r| match &values[r] {
            Some(v) => Ok(v.split_whitespace().map(str::to_string).collect()),
            None => Err(error(format!(
                "the {whose}'s `{name}` is empty in some rows"
            ))),
        })
        .collect()
}

fn micro_f1_sets(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = label_sets(submission, target, &s, "submission")?;
    let truth = label_sets(answers, target, &a, "answers")?;
    metrics::micro_f1_sets(&truth, &preds).map_err(error)
}

/// Each row's cell as text (`astype(str)`: blanks become "nan"), split on single spaces.
fn token_rows(table: &Table, name: &str, order: &[usize]) -> Vec<Vec<String>> {
    let column = table.column(name).unwrap();
    order
        .iter()
        .map(|&r| {
            cell_text(column, r, Some("nan"))
                .unwrap_or_default()
                .split(' ')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn sequence_edit_rate(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let ints = |rows: Vec<Vec<String>>, whose: &str| -> Result<Vec<Vec<i64>>, Failure> {
        rows.into_iter()
            .map(|row| {
                row.iter()
                    .map(|t| {
                        t.parse::<i64>().map_err(|_| {
                            Failure::Invalid(format!(
                                "the {whose}'s `{target}` has {t:?}, not an integer: write space-separated integers"
                            ))
                        })
                    })
                    .collect()
            })
            .collect()
    };
    let preds = ints(token_rows(submission, target, &s), "submission")?;
    let truth = ints(token_rows(answers, target, &a), "answers")?;
    let distance: usize = truth
        .iter()
        .zip(&preds)
        .map(|(t, p)| metrics::edit_distance(t, p))
        .sum();
    let length: usize = truth.iter().map(Vec::len).sum();
    if length == 0 {
        return Err(error("the answers' sequences are empty"));
    }
    Ok(distance as f64 / length as f64)
}

fn kendall(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    if id_set(submission, columns.id) != id_set(answers, columns.id) {
        return invalid(format!(
            "the `{}` values differ from the test set's",
            columns.id
        ));
    }
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = token_rows(submission, target, &s);
    let truth = token_rows(answers, target, &a);
    if let Some(i) = (0..truth.len()).find(|&i| truth[i].len() != preds[i].len()) {
        return invalid(format!(
            "a row of `{target}` lists {} items where its notebook has {}: order every cell exactly once",
            preds[i].len(),
            truth[i].len()
        ));
    }
    metrics::pooled_kendall_tau(&truth, &preds).map_err(error)
}

fn study_log_loss(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    let rows: Vec<usize> = (0..submission.rows).collect();
    let values = numbers(submission, target, &rows, "submission")?;
    if values.iter().any(|v| !(0.0..=1.0).contains(v)) {
        return invalid(format!(
            "`{target}` must be a probability in [0, 1] on every row"
        ));
    }
    let (s, a) = align(columns.id, submission, answers)?;
    let truth = numbers(answers, target, &a, "answers")?;
    let ids = answers.column(columns.id).unwrap();
    let mut studies: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for (k, (&sr, &ar)) in s.iter().zip(&a).enumerate() {
        let id = cell_text(ids, ar, Some("nan")).unwrap_or_default();
        let (study, part) = id.split_once('_').unwrap_or((id.as_str(), ""));
        let y = truth[k];
        let p = values[sr].clamp(1e-15, 1.0 - 1e-15);
        let loss = -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        let weight = match (part == "patient_overall", y == 1.0) {
            (true, false) => 7.0,
            (true, true) => 14.0,
            (false, false) => 1.0,
            (false, true) => 2.0,
        };
        let e = studies.entry(study.to_string()).or_default();
        e.0 += weight * loss;
        e.1 += weight;
    }
    if studies.is_empty() {
        return Err(error("no rows to score"));
    }
    Ok(studies.values().map(|(l, w)| l / w).sum::<f64>() / studies.len() as f64)
}

fn probabilistic_f1(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    same_rows(submission, answers)?;
    let (s, a) = align(columns.id, submission, answers)?;
    let preds = metric_numbers(submission, target, &s, "submission")?;
    if preds.iter().any(|v| v.is_nan()) {
        return Err(error(format!("`{target}` is empty in some rows")));
    }
    let truth = numbers(answers, target, &a, "answers")?;
    metrics::probabilistic_f1(&truth, &preds).map_err(error)
}

fn weighted_auc(columns: Columns<'_>, submission: &Table, answers: &Table) -> GradeOutcome {
    let target = columns.targets[0];
    same_rows(submission, answers)?;
    require_columns(submission, &[columns.id, target], "submission")?;
    let (s, a) = align(columns.id, submission, answers)?;
    let scores = numbers(submission, target, &s, "submission")?;
    if scores.iter().any(|v| v.is_nan()) {
        return invalid(format!("`{target}` is empty in some rows"));
    }
    let truth = numbers(answers, target, &a, "answers")?;
    metrics::weighted_auc(&truth, &scores).map_err(error)
}

/// The distinct ids of a table's id column, as sort keys.
fn id_set(table: &Table, id: &str) -> Vec<crate::table::SortKey> {
    let column = table.column(id).unwrap();
    let mut keys: Vec<_> = (0..table.rows).map(|r| column.sort_key(r)).collect();
    keys.sort_by(|a, b| a.total_cmp(b));
    keys.dedup_by(|a, b| a.total_cmp(b).is_eq());
    keys
}

fn joined_mae(
    columns: Columns<'_>,
    submission: &Table,
    answers: &Table,
    integer: bool,
    group: Option<&str>,
) -> GradeOutcome {
    let target = columns.targets[0];
    require_columns(submission, &[columns.id, target], "submission")?;
    if id_set(submission, columns.id) != id_set(answers, columns.id) {
        return invalid(format!(
            "the `{}` values differ from the test set's: submit one row per test id",
            columns.id
        ));
    }
    // Inner join in answers order: every submission row with the answer's id.
    let sc = submission.column(columns.id).unwrap();
    let mut by_id: std::collections::HashMap<String, Vec<usize>> = Default::default();
    let key = |k: crate::table::SortKey| format!("{k:?}");
    for r in 0..submission.rows {
        by_id.entry(key(sc.sort_key(r))).or_default().push(r);
    }
    let preds_all = metric_numbers(
        submission,
        target,
        &(0..submission.rows).collect::<Vec<_>>(),
        "submission",
    )?;
    let rows: Vec<usize> = (0..answers.rows).collect();
    let truth_all = numbers(answers, target, &rows, "answers")?;
    let ac = answers.column(columns.id).unwrap();
    let groups: Option<Vec<String>> = match group {
        Some(g) => {
            let column = answers
                .column(g)
                .ok_or_else(|| error(format!("the answers lack the `{g}` column")))?;
            Some(
                (0..answers.rows)
                    .map(|r| cell_text(column, r, Some("nan")).unwrap_or_default())
                    .collect(),
            )
        }
        None => None,
    };
    let mut pairs: Vec<(String, f64, f64)> = Vec::new();
    for r in 0..answers.rows {
        for &sr in by_id.get(&key(ac.sort_key(r))).into_iter().flatten() {
            let g = groups.as_ref().map_or(String::new(), |g| g[r].clone());
            pairs.push((g, truth_all[r], preds_all[sr]));
        }
    }
    if pairs.iter().any(|(_, t, p)| t.is_nan() || p.is_nan()) {
        return Err(error(format!("`{target}` is empty in some rows")));
    }
    let mut by_group: std::collections::BTreeMap<&str, (f64, f64)> = Default::default();
    for (g, t, p) in &pairs {
        let e = by_group.entry(g.as_str()).or_default();
        e.0 += (t - p).abs();
        e.1 += 1.0;
    }
    let score = match group {
        None => {
            let (sum, n) = by_group
                .values()
                .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            if n == 0.0 {
                return Err(error("no rows to score"));
            }
            let mae = sum / n;
            if integer { mae.round_ties_even() } else { mae }
        }
        Some(_) => {
            by_group
                .values()
                .map(|(sum, n)| (sum / n).ln())
                .sum::<f64>()
                / by_group.len().max(1) as f64
        }
    };
    Ok(score)
}

fn quote(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = names.iter().take(12).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(12);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn quote_owned(names: &[String]) -> String {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    quote(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Limits;

    fn table(text: &str) -> Table {
        Table::read(text.as_bytes(), Limits::default()).unwrap()
    }

    const ID: Columns<'static> = Columns {
        id: "id",
        targets: &["y"],
    };

    #[test]
    fn accuracy_aligns_by_id_and_compares_by_value() {
        let answers = table("id,y\n1,True\n2,False\n3,True\n");
        // 1/0 compare equal to True/False; row order does not matter.
        let shuffled = table("id,y\n3,1\n1,1\n2,1\n");
        let score = grade(Recipe::Accuracy, ID, &shuffled, &answers).unwrap();
        assert!((score - 2.0 / 3.0).abs() < 1e-12);
        // A column mixing `1` and `True` is text for pandas, and scikit-learn refuses text
        // labels against boolean ones (checked against scikit-learn 1.5.2).
        let mixed = table("id,y\n3,1\n1,True\n2,False\n");
        assert!(matches!(
            grade(Recipe::Accuracy, ID, &mixed, &answers),
            Err(Failure::Error(m)) if m.contains("text labels")
        ));
        let missing = table("id,y\n1,True\n2,False\n");
        let err = grade(Recipe::Accuracy, ID, &missing, &answers).unwrap_err();
        assert!(
            matches!(&err, Failure::Invalid(m) if m.contains("2 rows but 3")),
            "{err:?}"
        );
        let wrong_ids = table("id,y\n1,True\n2,False\n4,True\n");
        let err = grade(Recipe::Accuracy, ID, &wrong_ids, &answers).unwrap_err();
        assert!(err.message().contains("do not match"), "{err:?}");
        let no_column = table("id,z\n1,True\n2,False\n3,True\n");
        let err = grade(Recipe::Accuracy, ID, &no_column, &answers).unwrap_err();
        assert!(err.message().contains("lacks column(s) `y`"), "{err:?}");
    }

    #[test]
    fn auc_checks_range_then_scores() {
        let answers = table("id,y\na,0\nb,1\nc,0\nd,1\n");
        let good = table("id,y\nd,0.9\nc,0.2\nb,0.7\na,0.1\n");
        assert_eq!(grade(Recipe::RocAuc, ID, &good, &answers).unwrap(), 1.0);
        let out_of_range = table("id,y\na,0.1\nb,1.7\nc,0.2\nd,0.9\n");
        assert!(matches!(
            grade(Recipe::RocAuc, ID, &out_of_range, &answers),
            Err(Failure::Invalid(_))
        ));
        // NaN passes the range check (pandas min/max skip it) and then breaks the metric.
        let nan = table("id,y\na,0.1\nb,\nc,0.2\nd,0.9\n");
        assert!(matches!(
            grade(Recipe::RocAuc, ID, &nan, &answers),
            Err(Failure::Error(_))
        ));
        let text = table("id,y\na,x\nb,0.2\nc,0.2\nd,0.9\n");
        assert!(
            grade(Recipe::RocAuc, ID, &text, &answers)
                .unwrap_err()
                .message()
                .contains("numeric")
        );
    }

    #[test]
    fn one_hot_log_loss_checks_sums_and_exact_columns() {
        let columns = Columns {
            id: "id",
            targets: &["a", "b"],
        };
        let answers = table("id,a,b\n1,1,0\n2,0,1\n");
        let recipe = Recipe::OneHotLogLoss {
            exact_columns: true,
            sums: RowSums::Close,
        };
        let uniform = table("id,b,a\n2,0.5,0.5\n1,0.5,0.5\n");
        let score = grade(recipe, columns, &uniform, &answers).unwrap();
        assert!((score - 2f64.ln()).abs() < 1e-12);
        let bad_sum = table("id,a,b\n1,0.5,0.6\n2,0.5,0.5\n");
        assert!(
            grade(recipe, columns, &bad_sum, &answers)
                .unwrap_err()
                .message()
                .contains("sums to")
        );
        let extra = table("id,a,b,c\n1,1,0,0\n2,0,1,0\n");
        assert!(
            grade(recipe, columns, &extra, &answers)
                .unwrap_err()
                .message()
                .contains("exactly")
        );
    }

    #[test]
    fn row_sum_rules_differ_as_their_graders_do() {
        let columns = Columns {
            id: "id",
            targets: &["a", "b"],
        };
        let answers = table("id,a,b\nx,1,0\ny,0,1\n");
        let almost = table("id,a,b\nx,0.49999,0.5\ny,0.5,0.5\n");
        let close = Recipe::OneHotLogLoss {
            exact_columns: true,
            sums: RowSums::Close,
        };
        let round6 = Recipe::OneHotLogLoss {
            exact_columns: true,
            sums: RowSums::Round6,
        };
        assert!(
            grade(close, columns, &almost, &answers).is_ok(),
            "within 1e-6 + 1e-5"
        );
        assert!(matches!(
            grade(round6, columns, &almost, &answers),
            Err(Failure::Invalid(_))
        ));
        let id_last = table("a,b,id\n0.5,0.5,x\n0.5,0.5,y\n");
        let first = Recipe::OneHotLogLoss {
            exact_columns: true,
            sums: RowSums::CloseAfterFirstColumn,
        };
        assert!(
            grade(first, columns, &id_last, &answers)
                .unwrap_err()
                .message()
                .contains("first column")
        );
        let id_first = table("id,a,b\nx,0.5,0.5\ny,0.5,0.5\n");
        assert!(grade(first, columns, &id_first, &answers).is_ok());
    }

    #[test]
    fn positional_graders_pair_rows_in_file_order() {
        let columns = Columns {
            id: "id",
            targets: &["y", "z"],
        };
        let answers = table("id,y,z\n1,1.0,2.0\n2,3.0,4.0\n");
        let same = table("id,y,z\n1,1.0,2.0\n2,3.0,4.0\n");
        let swapped = table("id,y,z\n2,3.0,4.0\n1,1.0,2.0\n");
        assert_eq!(
            grade(Recipe::PositionalMeanRmsle, columns, &same, &answers).unwrap(),
            0.0
        );
        assert!(grade(Recipe::PositionalMeanRmsle, columns, &swapped, &answers).unwrap() > 0.1);
        let negative = table("id,y,z\n1,-1.0,2.0\n2,3.0,4.0\n");
        assert!(matches!(
            grade(Recipe::PositionalMeanRmsle, columns, &negative, &answers),
            Err(Failure::Error(_))
        ));
    }
}
