//! Grading of the multi-target, segmentation, detection and question-answering competitions at
//! parity with MLE-bench: each is prepared with synthetic answers in a temporary directory (their
//! real data is not in `../shared`), and the sandboxed `mlebench` adapter's verdicts on the
//! answers, noisy predictions and corrupted submissions are checked against an independent
//! pandas/numpy/scikit-learn/SciPy reference (`tests/support/mlebench_reference.py`).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sophon::config::SophonConfig;
use sophon::grading::Grader;
use sophon_grading::CompetitionReport;
use sophon_tests::mlebench::{python_reference, reference_score};
use std::path::{Path, PathBuf};

type Records = Vec<Vec<String>>;

/// One competition prepared with synthetic answers, and submissions to grade.
struct Scenario {
    id: &'static str,
    family: &'static str,
    id_column: &'static str,
    targets: Vec<String>,
    /// Relative to `prepared/`.
    answers_file: &'static str,
    answers: String,
    perfect: Records,
    perfect_score: f64,
    /// (what, submission, expected validity when the scenario pins it).
    variants: Vec<(&'static str, Records, Option<bool>)>,
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// A CSV record: `first`, then `rest`.
fn record<T: ToString>(first: impl ToString, rest: impl IntoIterator<Item = T>) -> Vec<String> {
    std::iter::once(s(first))
        .chain(rest.into_iter().map(s))
        .collect()
}

fn csv_text(records: &Records) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.write_record(r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// Rows after the header, shuffled.
fn shuffled(records: &Records, rng: &mut StdRng) -> Records {
    let mut body = records[1..].to_vec();
    body.shuffle(rng);
    std::iter::once(records[0].clone()).chain(body).collect()
}

fn with_cell(records: &Records, row: usize, column: usize, value: &str) -> Records {
    let mut r = records.clone();
    r[row][column] = value.to_string();
    r
}

fn without_row(records: &Records, row: usize) -> Records {
    let mut r = records.clone();
    r.remove(row);
    r
}

fn with_column(records: &Records, name: &str, value: &str) -> Records {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.push(if i == 0 { name.into() } else { value.into() });
            r
        })
        .collect()
}

fn without_column(records: &Records, column: usize) -> Records {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove(column);
            r
        })
        .collect()
}

/// A random mask of `height × width` as a flat array in the given order: a few rectangles
/// (or nothing, with probability `empty`).
fn random_mask(
    rng: &mut StdRng,
    height: usize,
    width: usize,
    empty: f64,
    column_major: bool,
) -> Vec<bool> {
    let mut mask = vec![false; height * width];
    if rng.random_bool(empty) {
        return mask;
    }
    for _ in 0..rng.random_range(1..=3) {
        let (r0, c0) = (rng.random_range(0..height), rng.random_range(0..width));
        let (r1, c1) = (
            (r0 + rng.random_range(1..=height / 2 + 1)).min(height),
            (c0 + rng.random_range(1..=width / 2 + 1)).min(width),
        );
        for r in r0..r1 {
            for c in c0..c1 {
                mask[if column_major {
                    c * height + r
                } else {
                    r * width + c
                }] = true;
            }
        }
    }
    mask
}

/// Flip a few pixels near set ones: a noisy prediction.
fn perturb(rng: &mut StdRng, mask: &[bool]) -> Vec<bool> {
    let mut out = mask.to_vec();
    for _ in 0..mask.len() / 8 {
        let k = rng.random_range(0..mask.len());
        out[k] = rng.random_bool(0.5);
    }
    out
}

/// 1-based `start length` runs of a flat mask.
fn rle(mask: &[bool]) -> String {
    let mut runs = Vec::new();
    let mut k = 0;
    while k < mask.len() {
        if mask[k] {
            let start = k;
            while k < mask.len() && mask[k] {
                k += 1;
            }
            runs.push(format!("{} {}", start + 1, k - start));
        } else {
            k += 1;
        }
    }
    runs.join(" ")
}

fn jigsaw_toxic(rng: &mut StdRng) -> Scenario {
    let classes = [
        "toxic",
        "severe_toxic",
        "obscene",
        "threat",
        "insult",
        "identity_hate",
    ];
    let header = record("id", classes);
    let mut answers = vec![header.clone()];
    let mut perfect = vec![header.clone()];
    let mut noisy = vec![header.clone()];
    for i in 0..80 {
        let id = format!("{:016x}", 0x9e37_79b9u64 * (i + 1));
        let scored = i % 5 != 0;
        let labels: Vec<i32> = (0..6)
            .map(|c| {
                if !scored {
                    -1
                } else {
                    i32::from(rng.random_bool(if c == 0 { 0.4 } else { 0.25 }))
                }
            })
            .collect();
        answers.push(
            std::iter::once(id.clone())
                .chain(labels.iter().map(s))
                .collect(),
        );
        perfect.push(
            std::iter::once(id.clone())
                .chain(labels.iter().map(|&l| s(if l == 1 { 0.9 } else { 0.1 })))
                .collect(),
        );
        noisy.push(
            std::iter::once(id)
                .chain(labels.iter().map(|&l| {
                    format!(
                        "{:.3}",
                        (f64::from(l.max(0)) * 0.4 + rng.random_range(0.0..0.6))
                    )
                }))
                .collect(),
        );
    }
    let mut swapped = noisy.clone();
    for r in &mut swapped {
        r.swap(1, 2);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "jigsaw-toxic-comment-classification-challenge",
        family: "jigsaw-toxic",
        id_column: "id",
        targets: classes.iter().map(s).collect(),
        answers_file: "private/test.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "two columns swapped (scored against the wrong classes, as in MLE-bench)",
                swapped,
                Some(true),
            ),
            ("a wrong id", with_cell(&noisy, 3, 0, "nope"), Some(false)),
            ("a missing row", without_row(&noisy, 4), Some(false)),
            (
                "an extra column",
                with_column(&noisy, "extra", "0.5"),
                Some(false),
            ),
            ("a blank", with_cell(&noisy, 2, 3, ""), Some(false)),
            ("a missing class", without_column(&noisy, 6), Some(false)),
        ],
    }
}

/// Google QUEST's 30 targets, as the grading table lists them.
fn quest_targets() -> &'static [&'static str] {
    sophon_grading::find("google-quest-challenge")
        .unwrap()
        .targets
}

fn google_quest(rng: &mut StdRng) -> Scenario {
    let header = record("qa_id", quest_targets());
    let levels = ["0.0", "0.333333333", "0.5", "0.666666667", "1.0"];
    let mut answers = vec![header.clone()];
    let mut noisy = vec![header.clone()];
    for i in 0..50 {
        let values: Vec<&str> = (0..30).map(|_| levels[rng.random_range(0..5)]).collect();
        answers.push(record(39 + i * 7, &values));
        noisy.push(record(
            39 + i * 7,
            values.iter().map(|v| {
                format!(
                    "{:.4}",
                    v.parse::<f64>().unwrap() + rng.random_range(-0.4..0.4)
                )
            }),
        ));
    }
    let noisy = shuffled(&noisy, rng);
    let mut constant = noisy.clone();
    for r in constant.iter_mut().skip(1) {
        r[5] = s("0.5");
    }
    Scenario {
        id: "google-quest-challenge",
        family: "google-quest",
        id_column: "qa_id",
        targets: quest_targets().iter().map(s).collect(),
        answers_file: "private/test.csv",
        perfect: answers.clone(),
        answers: csv_text(&answers),
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a constant column (NaN: valid, no score)",
                constant,
                Some(true),
            ),
            (
                "a wrong id (not checked by MLE-bench)",
                with_cell(&noisy, 3, 0, "99999"),
                Some(true),
            ),
            ("a missing row", without_row(&noisy, 4), Some(false)),
            (
                "an extra column",
                with_column(&noisy, "extra", "0.5"),
                Some(false),
            ),
            ("a missing target", without_column(&noisy, 30), Some(false)),
            ("a blank", with_cell(&noisy, 2, 3, ""), Some(true)),
        ],
    }
}

fn hms(rng: &mut StdRng) -> Scenario {
    let votes = [
        "seizure_vote",
        "lpd_vote",
        "gpd_vote",
        "lrda_vote",
        "grda_vote",
        "other_vote",
    ];
    let header = record("eeg_id", votes);
    let mut answers = vec![header.clone()];
    let mut perfect = vec![header.clone()];
    let mut noisy = vec![header.clone()];
    for e in 0..30 {
        let eeg = 1_000_000 + e * 3779;
        // Some EEGs are labelled in several windows; the submission repeats one prediction.
        let guess: Vec<f64> = {
            let raw: Vec<f64> = (0..6).map(|_| rng.random_range(0.05..1.0)).collect();
            let total: f64 = raw.iter().sum();
            raw.iter().map(|x| x / total).collect()
        };
        for _ in 0..rng.random_range(1..=3) {
            let v: Vec<u32> = (0..6)
                .map(|_| {
                    if rng.random_bool(0.4) {
                        0
                    } else {
                        rng.random_range(1..6)
                    }
                })
                .collect();
            let v = if v.iter().all(|x| *x == 0) {
                vec![1, 0, 0, 0, 0, 0]
            } else {
                v
            };
            let total: u32 = v.iter().sum();
            answers.push(record(eeg, &v));
            perfect.push(record(
                eeg,
                v.iter().map(|x| f64::from(*x) / f64::from(total)),
            ));
            noisy.push(record(eeg, &guess));
        }
    }
    // Rows of one EEG pair in file order (GRADERS.md 4.16): keep the perfect file's order.
    let noisy = shuffled(&noisy, rng);
    let mut out_of_range = noisy.clone();
    out_of_range[2][1] = s(1.2);
    out_of_range[2][2] = s(-0.2 + out_of_range[2][2].parse::<f64>().unwrap());
    Scenario {
        id: "hms-harmful-brain-activity-classification",
        family: "hms",
        id_column: "eeg_id",
        targets: votes.iter().map(s).collect(),
        answers_file: "private/test.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 0.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a row not summing to 1",
                with_cell(&noisy, 3, 2, "0.9"),
                Some(false),
            ),
            (
                "a value outside [0, 1] in a row summing to 1",
                out_of_range,
                Some(false),
            ),
            (
                "an extra numeric column",
                with_column(&noisy, "extra", "0.1"),
                Some(false),
            ),
            ("a wrong id", with_cell(&noisy, 3, 0, "7"), Some(false)),
            ("a missing row", without_row(&noisy, 4), Some(false)),
        ],
    }
}

fn h_and_m(rng: &mut StdRng) -> Scenario {
    let header = vec![s("customer_id"), s("prediction")];
    let article = |rng: &mut StdRng| s(rng.random_range(108_775_015u64..959_461_001));
    let mut answers = vec![header.clone()];
    let mut perfect = vec![header.clone()];
    let mut noisy = vec![header.clone()];
    for c in 0..90u64 {
        let customer = format!("{:064x}", c.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let predicted: Vec<String> = (0..12).map(|_| article(rng)).collect();
        if c % 3 == 0 {
            // A customer who bought nothing in the test week: only in the submission.
            perfect.push(vec![customer.clone(), predicted.join(" ")]);
            noisy.push(vec![customer, predicted.join(" ")]);
            continue;
        }
        let bought: Vec<String> = (0..rng.random_range(1..16)).map(|_| article(rng)).collect();
        answers.push(vec![customer.clone(), bought.join(" ")]);
        perfect.push(vec![customer.clone(), bought.join(" ")]);
        let mut guess: Vec<String> = bought
            .iter()
            .filter(|_| rng.random_bool(0.4))
            .cloned()
            .chain(predicted)
            .take(12)
            .collect();
        guess.shuffle(rng);
        noisy.push(vec![customer, guess.join(" ")]);
    }
    let noisy = shuffled(&noisy, rng);
    let missing = noisy
        .iter()
        .position(|r| answers.iter().any(|a| a[0] == r[0]))
        .unwrap();
    let mut duplicated = noisy.clone();
    duplicated.push(noisy[missing].clone());
    Scenario {
        id: "h-and-m-personalized-fashion-recommendations",
        family: "h-and-m",
        id_column: "customer_id",
        targets: vec![s("prediction")],
        answers_file: "private/answers.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            (
                "noisy, shuffled, with customers outside the test week",
                noisy.clone(),
                Some(true),
            ),
            (
                "a test customer missing",
                without_row(&noisy, missing),
                Some(false),
            ),
            (
                "a duplicated customer (mis-aligned, as in MLE-bench)",
                duplicated,
                Some(true),
            ),
            (
                "an extra column",
                with_column(&noisy, "extra", "1"),
                Some(false),
            ),
            (
                "a blank and double spaces",
                with_cell(&with_cell(&noisy, 2, 1, ""), 3, 1, "1  2"),
                Some(true),
            ),
        ],
    }
}

fn nq(rng: &mut StdRng) -> Scenario {
    let mut lines = Vec::new();
    let header = vec![s("example_id"), s("PredictionString")];
    let (mut perfect, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    for i in 0..40i64 {
        let id = -7_000_000_000_000_000_000 + i * 104_729_000_000_007;
        let long = if rng.random_bool(0.7) {
            let a = rng.random_range(0..500);
            (a, a + rng.random_range(5..80))
        } else {
            (-1, -1)
        };
        let shorts: Vec<(i64, i64)> = if long.0 >= 0 && rng.random_bool(0.5) {
            vec![(long.0 + 1, long.0 + 3)]
        } else {
            vec![]
        };
        let yes_no = if long.0 >= 0 && shorts.is_empty() && rng.random_bool(0.3) {
            "YES"
        } else {
            "NONE"
        };
        let shorts_json: Vec<String> = shorts
            .iter()
            .map(|(a, b)| format!(r#"{{"start_token": {a}, "end_token": {b}}}"#))
            .collect();
        lines.push(format!(
            r#"{{"document_text": "<P> words {i} </P>", "question_text": "q{i}?", "example_id": {id}, "annotations": [{{"yes_no_answer": "{yes_no}", "long_answer": {{"start_token": {}, "end_token": {}, "candidate_index": 0}}, "short_answers": [{}], "annotation_id": 1}}], "long_answer_candidates": []}}"#,
            long.0, long.1, shorts_json.join(", ")
        ));
        let long_text = if long.0 >= 0 {
            format!("{}:{}", long.0, long.1)
        } else {
            String::new()
        };
        let short_text = shorts
            .first()
            .map(|(a, b)| format!("{a}:{b}"))
            .unwrap_or_else(|| {
                if yes_no == "NONE" {
                    String::new()
                } else {
                    s(yes_no)
                }
            });
        perfect.push(vec![format!("{id}_long"), long_text.clone()]);
        perfect.push(vec![format!("{id}_short"), short_text.clone()]);
        let mut guess = |right: String| match rng.random_range(0..4) {
            0 => String::new(),
            1 => format!(
                "{}:{}",
                rng.random_range(0..100),
                rng.random_range(100..200)
            ),
            2 => s("NO"),
            _ => right,
        };
        noisy.push(vec![format!("{id}_long"), guess(long_text)]);
        noisy.push(vec![format!("{id}_short"), guess(short_text)]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "tensorflow2-question-answering",
        family: "nq",
        id_column: "example_id",
        targets: vec![s("PredictionString")],
        answers_file: "private/test.jsonl",
        answers: lines.join("\n") + "\n",
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a prediction that is not an answer",
                with_cell(&noisy, 3, 1, "maybe"),
                Some(false),
            ),
            (
                "a non-integer token",
                with_cell(&noisy, 3, 1, "3.5:9"),
                Some(false),
            ),
            ("a missing row", without_row(&noisy, 4), Some(false)),
            (
                "a duplicated id",
                with_cell(&noisy, 2, 0, &noisy[1][0].clone()),
                Some(false),
            ),
            (
                "spaces around the tokens",
                with_cell(&noisy, 5, 1, " 12 : 40 "),
                Some(true),
            ),
        ],
    }
}

fn kuzushiji(rng: &mut StdRng) -> Scenario {
    let header = vec![s("image_id"), s("labels")];
    let (mut answers, mut perfect, mut noisy) = (
        vec![header.clone()],
        vec![header.clone()],
        vec![header.clone()],
    );
    for page in 0..25 {
        let id = format!("200003076_{page:05}");
        let n = if page % 7 == 0 {
            0
        } else {
            rng.random_range(1..12)
        };
        let (mut truth, mut centres, mut guesses) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let label = format!("U+{:04X}", 0x3042 + rng.random_range(0..5));
            let (x, y, w, h) = (
                rng.random_range(0..2000),
                rng.random_range(0..3000),
                rng.random_range(20..120),
                rng.random_range(20..120),
            );
            truth.push(format!("{label} {x} {y} {w} {h}"));
            centres.push(format!("{label} {} {}", x + w / 2, y + h / 2));
            if rng.random_bool(0.7) {
                let jitter = rng.random_range(-40..40);
                guesses.push(format!("{label} {} {}", x + w / 2 + jitter, y + h / 2));
            }
        }
        if rng.random_bool(0.3) {
            guesses.push(format!(
                "U+3042 {}.5 {}",
                rng.random_range(0..2000),
                rng.random_range(0..3000)
            ));
        }
        answers.push(vec![id.clone(), truth.join(" ")]);
        perfect.push(vec![id.clone(), centres.join(" ")]);
        noisy.push(vec![id, guesses.join(" ")]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "kuzushiji-recognition",
        family: "kuzushiji",
        id_column: "image_id",
        targets: vec![s("labels")],
        answers_file: "private/test.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            (
                "noisy, shuffled, some pages blank",
                noisy.clone(),
                Some(true),
            ),
            (
                "a token count that is not a multiple of 3",
                with_cell(&noisy, 2, 1, "U+3042 10"),
                Some(false),
            ),
            (
                "a coordinate that is not a number",
                with_cell(&noisy, 2, 1, "U+3042 ten 20"),
                Some(false),
            ),
            ("a wrong id", with_cell(&noisy, 2, 0, "nope"), Some(false)),
            ("a missing row", without_row(&noisy, 3), Some(false)),
        ],
    }
}

fn siim(rng: &mut StdRng) -> Scenario {
    let header = vec![s("id"), s("PredictionString")];
    let (mut answers, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    let studies = ["negative", "typical", "indeterminate", "atypical"];
    for i in 0..20 {
        let study = studies[rng.random_range(0..4)];
        answers.push(vec![
            format!("{i:012x}_study"),
            format!("{study} 1 0 0 1 1"),
        ]);
        let guess = if rng.random_bool(0.6) {
            study
        } else {
            studies[rng.random_range(0..4)]
        };
        noisy.push(vec![
            format!("{i:012x}_study"),
            format!(
                "{guess} {:.2} 0 0 1 1 {} {:.2} 0 0 1 1",
                rng.random_range(0.3..1.0),
                studies[rng.random_range(0..4)],
                rng.random_range(0.0..0.5)
            ),
        ]);
        let boxes: Vec<[f64; 4]> = (0..rng.random_range(0..3))
            .map(|_| {
                let (x, y) = (
                    rng.random_range(0.0..2000.0f64).round(),
                    rng.random_range(0.0..2000.0f64).round(),
                );
                [
                    x,
                    y,
                    x + rng.random_range(100.0..800.0f64).round(),
                    y + rng.random_range(100.0..800.0f64).round(),
                ]
            })
            .collect();
        let truth = if boxes.is_empty() {
            s("none 1 0 0 1 1")
        } else {
            boxes
                .iter()
                .map(|b| format!("opacity 1 {} {} {} {}", b[0], b[1], b[2], b[3]))
                .collect::<Vec<_>>()
                .join(" ")
        };
        answers.push(vec![format!("{i:012x}_image"), truth]);
        let mut guess = Vec::new();
        for b in boxes
            .iter()
            .filter(|_| rng.random_bool(0.7))
            .collect::<Vec<_>>()
        {
            let d = rng.random_range(-80.0..80.0f64).round();
            let confidence = rng.random_range(0.2..1.0);
            guess.push(format!(
                "opacity {confidence:.2} {} {} {} {}",
                b[0] + d,
                b[1],
                b[2] + d,
                b[3]
            ));
        }
        guess.push(format!("none {:.2} 0 0 1 1", rng.random_range(0.0..1.0)));
        noisy.push(vec![format!("{i:012x}_image"), guess.join(" ")]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "siim-covid19-detection",
        family: "siim",
        id_column: "id",
        targets: vec![s("PredictionString")],
        answers_file: "private/test.csv",
        perfect: answers.clone(),
        answers: csv_text(&answers),
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            ("a blank", with_cell(&noisy, 2, 1, ""), Some(false)),
            (
                "an incomplete box",
                with_cell(&noisy, 2, 1, "none 1 0 0 1"),
                Some(false),
            ),
            (
                "a coordinate that is not a number",
                with_cell(&noisy, 2, 1, "none 1 0 zero 1 1"),
                Some(false),
            ),
            (
                "a wrong id",
                with_cell(&noisy, 2, 0, "nope_image"),
                Some(false),
            ),
        ],
    }
}

/// A segmentation competition: masks of the given sizes; `column_major` RLE order.
struct Masks {
    truth: Vec<Vec<bool>>,
    sizes: Vec<(usize, usize)>,
}

fn masks(rng: &mut StdRng, sizes: Vec<(usize, usize)>, empty: f64, column_major: bool) -> Masks {
    Masks {
        truth: sizes
            .iter()
            .map(|&(h, w)| random_mask(rng, h, w, empty, column_major))
            .collect(),
        sizes,
    }
}

fn tgs(rng: &mut StdRng) -> Scenario {
    let m = masks(rng, vec![(101, 101); 30], 0.3, true);
    let header = vec![s("id"), s("rle_mask")];
    let ids: Vec<String> = (0..30)
        .map(|i| format!("{:010x}", 0xabcdef + i * 977))
        .collect();
    let mut answers = vec![header.clone()];
    let mut noisy = vec![header.clone()];
    let mut blank = vec![header.clone()];
    for (i, t) in m.truth.iter().enumerate() {
        answers.push(vec![ids[i].clone(), rle(t)]);
        noisy.push(vec![ids[i].clone(), rle(&perturb(rng, t))]);
        blank.push(vec![ids[i].clone(), String::new()]);
    }
    // A truth covering most of the image, to exercise the histogram quirk on empty predictions.
    answers[1][1] = s("1 9000");
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "tgs-salt-identification-challenge",
        family: "tgs",
        id_column: "id",
        targets: vec![s("rle_mask")],
        answers_file: "private/test.csv",
        perfect: answers.clone(),
        answers: csv_text(&answers),
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            ("every mask empty", blank, Some(true)),
            (
                "overlapping runs",
                with_cell(&noisy, 2, 1, "1 5 3 2"),
                Some(false),
            ),
            (
                "unsorted runs",
                with_cell(&noisy, 2, 1, "20 5 3 2"),
                Some(false),
            ),
            (
                "a token that is not an integer",
                with_cell(&noisy, 2, 1, "1 x"),
                Some(false),
            ),
            (
                "an odd token count (numpy broadcasts three)",
                with_cell(&noisy, 2, 1, "1 2 50"),
                Some(true),
            ),
            (
                "an extra column",
                with_column(&noisy, "extra", "a"),
                Some(false),
            ),
            ("a wrong id", with_cell(&noisy, 2, 0, "nope"), Some(false)),
        ],
    }
}

fn contrails(rng: &mut StdRng) -> Scenario {
    let m = masks(rng, vec![(32, 32); 20], 0.4, true);
    let header = vec![s("record_id"), s("encoded_pixels")];
    let mut answers = vec![vec![
        s("record_id"),
        s("encoded_pixels"),
        s("height"),
        s("width"),
    ]];
    let (mut perfect, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    for (i, t) in m.truth.iter().enumerate() {
        let id = s(1_000_834_164_244_036_115u64 + i as u64 * 7);
        let dash = |text: String| if text.is_empty() { s("-") } else { text };
        answers.push(vec![id.clone(), dash(rle(t)), s(32), s(32)]);
        perfect.push(vec![id.clone(), dash(rle(t))]);
        noisy.push(vec![id, dash(rle(&perturb(rng, t)))]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "google-research-identify-contrails-reduce-global-warming",
        family: "contrails",
        id_column: "record_id",
        targets: vec![s("encoded_pixels")],
        answers_file: "private/answers.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a blank instead of `-`",
                with_cell(&noisy, 2, 1, ""),
                Some(false),
            ),
            (
                "overlapping runs (not caught: a null score)",
                with_cell(&noisy, 2, 1, "1 5 3 2"),
                Some(false),
            ),
            ("a missing row", without_row(&noisy, 2), Some(false)),
            ("a wrong id", with_cell(&noisy, 2, 0, "12"), Some(false)),
        ],
    }
}

fn hubmap(rng: &mut StdRng) -> Scenario {
    let sizes: Vec<(usize, usize)> = (0..8)
        .map(|_| (rng.random_range(20..60), rng.random_range(20..60)))
        .collect();
    let m = masks(rng, sizes, 0.0, true);
    let header = vec![s("id"), s("predicted")];
    let mut answers = vec![vec![
        s("id"),
        s("encoding"),
        s("width_pixels"),
        s("height_pixels"),
    ]];
    let (mut perfect, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    for (i, t) in m.truth.iter().enumerate() {
        let id = format!("{:09x}", 0x2f6ecfcdf + i * 31);
        let (h, w) = m.sizes[i];
        answers.push(vec![id.clone(), rle(t), s(w), s(h)]);
        perfect.push(vec![id.clone(), rle(t)]);
        noisy.push(vec![id, rle(&perturb(rng, t))]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "hubmap-kidney-segmentation",
        family: "hubmap",
        id_column: "id",
        targets: vec![s("predicted")],
        answers_file: "private/test.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a blank (an empty mask)",
                with_cell(&noisy, 2, 1, ""),
                Some(true),
            ),
            (
                "unsorted runs (a null score)",
                with_cell(&noisy, 2, 1, "20 5 3 2"),
                Some(false),
            ),
            ("a wrong id", with_cell(&noisy, 2, 0, "nope"), Some(false)),
            ("a missing row", without_row(&noisy, 2), Some(false)),
        ],
    }
}

fn vesuvius(rng: &mut StdRng) -> Scenario {
    let m = masks(rng, vec![(40, 30), (25, 50)], 0.0, false);
    let header = vec![s("Id"), s("Predicted")];
    let mut answers = vec![vec![s("Id"), s("Predicted"), s("width"), s("height")]];
    let (mut perfect, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    for (i, t) in m.truth.iter().enumerate() {
        let id = ["a", "b"][i].to_string();
        let (h, w) = m.sizes[i];
        answers.push(vec![id.clone(), rle(t), s(w), s(h)]);
        perfect.push(vec![id.clone(), rle(t)]);
        noisy.push(vec![id, rle(&perturb(rng, t))]);
    }
    let mut swapped = noisy.clone();
    swapped.swap(1, 2);
    Scenario {
        id: "vesuvius-challenge-ink-detection",
        family: "vesuvius",
        id_column: "Id",
        targets: vec![s("Predicted")],
        answers_file: "private/inklabels_rle.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy", noisy.clone(), Some(true)),
            ("rows in another order (a null score)", swapped, Some(false)),
            ("a blank", with_cell(&noisy, 1, 1, ""), Some(false)),
            (
                "an extra column",
                with_column(&noisy, "extra", "x"),
                Some(false),
            ),
            (
                "overlapping runs",
                with_cell(&noisy, 1, 1, "1 5 3 2"),
                Some(false),
            ),
        ],
    }
}

fn uw_madison(rng: &mut StdRng) -> Scenario {
    let classes = ["large_bowel", "small_bowel", "stomach"];
    let header = vec![s("id"), s("class"), s("predicted")];
    let mut answers = vec![vec![
        s("id"),
        s("class"),
        s("predicted"),
        s("image_height"),
        s("image_width"),
    ]];
    let (mut perfect, mut noisy, mut empty) = (
        vec![header.clone()],
        vec![header.clone()],
        vec![header.clone()],
    );
    for (case, day, h, w) in [(2, 1, 12, 10), (2, 20, 12, 10), (31, 3, 9, 14)] {
        for slice in 1..=5 {
            for class in classes {
                let id = format!("case{case}_day{day}_slice_{slice:04}");
                let t = random_mask(rng, h, w, 0.5, true);
                answers.push(vec![id.clone(), s(class), rle(&t), s(h), s(w)]);
                perfect.push(vec![id.clone(), s(class), rle(&t)]);
                noisy.push(vec![id.clone(), s(class), rle(&perturb(rng, &t))]);
                empty.push(vec![id, s(class), String::new()]);
            }
        }
    }
    let mut swapped = noisy.clone();
    swapped.swap(1, 4);
    Scenario {
        id: "uw-madison-gi-tract-image-segmentation",
        family: "uw-madison",
        id_column: "id",
        targets: vec![s("predicted")],
        answers_file: "private/test.csv",
        answers: csv_text(&answers),
        perfect,
        perfect_score: 1.0,
        variants: vec![
            ("noisy", noisy.clone(), Some(true)),
            ("every mask empty", empty, Some(true)),
            (
                "two rows swapped (paired by position, as in MLE-bench)",
                swapped,
                Some(true),
            ),
            (
                "the last row missing (ignored, as in MLE-bench)",
                noisy[..noisy.len() - 1].to_vec(),
                Some(true),
            ),
            (
                "overlapping runs (a null score)",
                with_cell(&noisy, 2, 2, "1 5 3 2"),
                Some(false),
            ),
            ("no class column", without_column(&noisy, 1), Some(false)),
        ],
    }
}

fn vinbigdata(rng: &mut StdRng) -> Scenario {
    let header = vec![s("image_id"), s("PredictionString")];
    let mut answers = vec![vec![
        s("image_id"),
        s("class_id"),
        s("x_min"),
        s("y_min"),
        s("x_max"),
        s("y_max"),
    ]];
    let (mut perfect, mut noisy, mut nothing) = (
        vec![header.clone()],
        vec![header.clone()],
        vec![header.clone()],
    );
    for i in 0..30 {
        let image = format!("{:032x}", 0x51_f2a3u64 * (i + 3));
        let (mut exact, mut guess) = (Vec::new(), Vec::new());
        if i % 4 == 0 {
            answers.push(vec![image.clone(), s(14), s(0), s(0), s(1), s(1)]);
            exact.push(s("14 1 0 0 1 1"));
            guess.push(format!("14 {:.2} 0 0 1 1", rng.random_range(0.3..1.0)));
        } else {
            for _ in 0..rng.random_range(1..4) {
                let class = rng.random_range(0..4);
                let (x, y) = (rng.random_range(0..800), rng.random_range(0..800));
                let (x1, y1) = (x + rng.random_range(40..300), y + rng.random_range(40..300));
                answers.push(vec![image.clone(), s(class), s(x), s(y), s(x1), s(y1)]);
                exact.push(format!("{class} 1 {x} {y} {x1} {y1}"));
                if rng.random_bool(0.8) {
                    let d = rng.random_range(-30..30);
                    guess.push(format!(
                        "{class} {:.3} {} {y} {} {y1}",
                        rng.random_range(0.05..1.0),
                        x + d,
                        x1 + d
                    ));
                }
            }
            guess.push(format!("14 {:.2} 0 0 1 1", rng.random_range(0.0..0.5)));
        }
        perfect.push(vec![image.clone(), exact.join(" ")]);
        noisy.push(vec![image.clone(), guess.join(" ")]);
        nothing.push(vec![image, s("14 1 0 0 1 1")]);
    }
    let noisy = shuffled(&noisy, rng);
    Scenario {
        id: "vinbigdata-chest-xray-abnormalities-detection",
        family: "vinbigdata",
        id_column: "image_id",
        targets: vec![s("PredictionString")],
        answers_file: "private/answers.csv",
        answers: csv_text(&answers),
        perfect,
        // Not 1: a detection matched to the truth with id 0 counts as a false positive.
        perfect_score: f64::NAN,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            ("no finding everywhere", nothing, Some(true)),
            (
                "an incomplete box",
                with_cell(&noisy, 2, 1, "14 1 0 0 1"),
                Some(false),
            ),
            (
                "a double space",
                with_cell(&noisy, 2, 1, "14 1 0  0 1 1"),
                Some(false),
            ),
            ("a missing image", without_row(&noisy, 2), Some(false)),
        ],
    }
}

fn lyft_3d(rng: &mut StdRng) -> Scenario {
    let header = vec![s("Id"), s("PredictionString")];
    let (mut answers, mut noisy) = (vec![header.clone()], vec![header.clone()]);
    let classes = ["car", "pedestrian", "truck"];
    for i in 0..15 {
        let id = format!("{:064x}", 0x97ce_3ab0u64 * (i + 1));
        let (mut truth, mut guess) = (Vec::new(), Vec::new());
        for _ in 0..rng.random_range(1..5) {
            let class = classes[rng.random_range(0..3)];
            let (x, y, z) = (
                rng.random_range(2000.0..2060.0f64),
                rng.random_range(600.0..660.0f64),
                rng.random_range(-20.0..-17.0f64),
            );
            let (w, l, h) = (
                rng.random_range(0.8..2.5f64),
                rng.random_range(1.0..8.0f64),
                rng.random_range(1.0..3.0f64),
            );
            let yaw = rng.random_range(-3.1..3.1f64);
            truth.push(format!(
                "1.0 {x:.3} {y:.3} {z:.3} {w:.3} {l:.3} {h:.3} {yaw:.4} {class}"
            ));
            if rng.random_bool(0.8) {
                let (dx, dy, dyaw) = (
                    rng.random_range(-0.6..0.6f64),
                    rng.random_range(-0.6..0.6f64),
                    rng.random_range(-0.2..0.2f64),
                );
                guess.push(format!(
                    "{:.3} {:.3} {:.3} {z:.3} {w:.3} {:.3} {h:.3} {:.4} {class}",
                    rng.random_range(0.1..1.0f64),
                    x + dx,
                    y + dy,
                    l * rng.random_range(0.8..1.2f64),
                    yaw + dyaw
                ));
            }
        }
        if rng.random_bool(0.4) {
            guess.push(format!(
                "{:.2} 2030.0 630.0 -18.5 1.8 4.5 1.6 0.3 {}",
                rng.random_range(0.1..0.9f64),
                classes[rng.random_range(0..3)]
            ));
        }
        answers.push(vec![id.clone(), truth.join(" ")]);
        noisy.push(vec![id, guess.join(" ")]);
    }
    let noisy = shuffled(&noisy, rng);
    let class_of_row2 = answers
        .iter()
        .find(|r| r[0] == noisy[2][0])
        .map(|r| r[1].split(' ').nth(8).unwrap().to_string())
        .unwrap();
    Scenario {
        id: "3d-object-detection-for-autonomous-vehicles",
        family: "lyft-3d",
        id_column: "Id",
        targets: vec![s("PredictionString")],
        answers_file: "private/test.csv",
        perfect: answers.clone(),
        answers: csv_text(&answers),
        perfect_score: 1.0,
        variants: vec![
            ("noisy, shuffled", noisy.clone(), Some(true)),
            (
                "a blank (no boxes)",
                with_cell(&noisy, 2, 1, ""),
                Some(true),
            ),
            (
                "eight tokens",
                with_cell(&noisy, 2, 1, "1 2030 630 -18 1 4 1 car"),
                Some(false),
            ),
            (
                "a token that is not a number",
                with_cell(&noisy, 2, 1, "1 2030 630 -18 1 4 1 x car"),
                Some(false),
            ),
            (
                "a zero size",
                with_cell(
                    &noisy,
                    2,
                    1,
                    &format!("1 2030 630 -18 0 4 1 0 {class_of_row2}"),
                ),
                Some(false),
            ),
            ("a wrong id", with_cell(&noisy, 2, 0, "nope"), Some(false)),
        ],
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

struct Check<'a> {
    grader: &'a Grader,
    python: &'a Path,
    data: &'a Path,
    dir: PathBuf,
}

impl Check<'_> {
    /// Grade with Sophon and with the reference: they must agree on validity and, within 1e-6,
    /// on the score.
    async fn agree(&self, sc: &Scenario, what: &str, records: &Records) -> CompetitionReport {
        let path = self
            .dir
            .join(format!("{}-{}.csv", sc.id, what.replace(['/', ' '], "_")));
        write(&path, &csv_text(records));
        let prepared = self.grader.prepared(sc.id).unwrap();
        let report = self
            .grader
            .grade(sc.id, &prepared, &path, &path.display().to_string())
            .await;
        let targets: Vec<&str> = sc.targets.iter().map(String::as_str).collect();
        let answers = self.data.join(sc.id).join("prepared").join(sc.answers_file);
        let (expected, why) = reference_score(
            self.python,
            sc.family,
            sc.id_column,
            &targets,
            &path,
            &answers,
        );
        match (report.score, expected) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 1e-6,
                "{} / {what}: Sophon {a}, reference {b}",
                sc.id
            ),
            (None, None) => assert_eq!(
                report.valid_submission,
                why == "nan",
                "{} / {what}: {} / reference: {why}",
                sc.id,
                report.message
            ),
            (a, b) => panic!(
                "{} / {what}: Sophon {a:?} ({}), reference {b:?} ({why})",
                sc.id, report.message
            ),
        }
        report
    }
}

#[tokio::test]
async fn segmentation_detection_and_multi_target_graders_score_as_the_reference_does() {
    let Some(python) = python_reference() else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(2026);
    let scenarios = vec![
        jigsaw_toxic(&mut rng),
        google_quest(&mut rng),
        hms(&mut rng),
        h_and_m(&mut rng),
        nq(&mut rng),
        kuzushiji(&mut rng),
        siim(&mut rng),
        tgs(&mut rng),
        contrails(&mut rng),
        hubmap(&mut rng),
        vesuvius(&mut rng),
        uw_madison(&mut rng),
        vinbigdata(&mut rng),
        lyft_3d(&mut rng),
    ];
    let data = tempfile::tempdir().unwrap();
    for sc in &scenarios {
        let root = data.path().join(sc.id).join("prepared");
        write(&root.join(sc.answers_file), &sc.answers);
        write(
            &root.join("public/sample_submission.csv"),
            &csv_text(&sc.perfect),
        );
    }
    let grader = SophonConfig::defaults()
        .grader(Some(data.path().to_path_buf()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = Check {
        grader: &grader,
        python: &python,
        data: data.path(),
        dir: dir.path().to_path_buf(),
    };
    for sc in &scenarios {
        let perfect = check.agree(sc, "the answers", &sc.perfect).await;
        if sc.perfect_score.is_finite() {
            assert_eq!(
                perfect.score,
                Some(sc.perfect_score),
                "{}: {}",
                sc.id,
                perfect.message
            );
        }
        for (what, records, valid) in &sc.variants {
            let report = check.agree(sc, what, records).await;
            if let Some(valid) = valid {
                assert_eq!(
                    report.valid_submission, *valid,
                    "{} / {what}: {}",
                    sc.id, report.message
                );
            }
        }
    }
}
