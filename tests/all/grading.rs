//! Grading at parity with MLE-bench, on the real prepared competitions in
//! `../shared/mlebench/data`: the sandboxed `mlebench` adapter's scores against an independent
//! pandas + scikit-learn reference, medal thresholds against MLE-bench's for every
//! leaderboard, and hostile submissions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sophon::config::SophonConfig;
use sophon::grading::{Grader, Prepared};
use sophon_grading::{CompetitionReport, Thresholds};
use sophon_tests::mlebench::{mlebench_dir, python_reference, reference_score};
use std::path::{Path, PathBuf};

/// One prepared competition and how the reference grades it.
struct Case {
    id: &'static str,
    family: &'static str,
    id_column: &'static str,
    targets: &'static [&'static str],
    answers: &'static str,
    /// A submission with every answer right.
    perfect: &'static str,
    perfect_score: f64,
}

const CASES: &[Case] = &[
    Case {
        id: "spaceship-titanic",
        family: "accuracy",
        id_column: "PassengerId",
        targets: &["Transported"],
        answers: "private/test.csv",
        perfect: "private/test.csv",
        perfect_score: 1.0,
    },
    Case {
        id: "playground-series-s3e18",
        family: "mean-auc",
        id_column: "id",
        targets: &["EC1", "EC2"],
        answers: "private/test.csv",
        perfect: "private/test.csv",
        perfect_score: 1.0,
    },
    Case {
        id: "detecting-insults-in-social-commentary",
        family: "auc",
        id_column: "Comment",
        targets: &["Insult"],
        answers: "private/test.csv",
        perfect: "private/gold_submission.csv",
        perfect_score: 1.0,
    },
    Case {
        id: "leaf-classification",
        family: "one-hot-log-loss",
        id_column: "id",
        targets: &[],
        answers: "private/test.csv",
        perfect: "private/test.csv",
        perfect_score: 0.0,
    },
];

struct Setup {
    data: PathBuf,
    python: PathBuf,
    grader: Grader,
    dir: tempfile::TempDir,
}

fn setup() -> Option<Setup> {
    let shared = mlebench_dir()?;
    let python = python_reference()?;
    let data = shared.join("data");
    let grader = SophonConfig::defaults().grader(Some(data.clone())).unwrap();
    Some(Setup {
        data,
        python,
        grader,
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Setup {
    fn prepared(&self, case: &Case) -> Prepared {
        self.grader.prepared(case.id).unwrap()
    }

    fn file(&self, case: &Case, relative: &str) -> PathBuf {
        self.data.join(case.id).join("prepared").join(relative)
    }

    async fn grade(&self, case: &Case, submission: &Path) -> CompetitionReport {
        let prepared = self.prepared(case);
        self.grader
            .grade(
                case.id,
                &prepared,
                submission,
                &submission.display().to_string(),
            )
            .await
    }

    /// Grade with Sophon and with the reference; they must agree on validity and, within
    /// 1e-6, on the score. Returns Sophon's report.
    async fn agree(&self, case: &Case, submission: &Path, what: &str) -> CompetitionReport {
        let report = self.grade(case, submission).await;
        let (expected, why) = reference_score(
            &self.python,
            case.family,
            case.id_column,
            case.targets,
            submission,
            &self.file(case, case.answers),
        );
        match (report.score, expected) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 1e-6,
                "{} / {what}: Sophon {a}, reference {b}",
                case.id
            ),
            // The reference's NaN is a valid submission without a score.
            (None, None) => assert_eq!(
                report.valid_submission,
                why == "nan",
                "{what}: {}",
                report.message
            ),
            (a, b) => panic!(
                "{} / {what}: Sophon {a:?} ({}), reference {b:?} ({why})",
                case.id, report.message
            ),
        }
        report
    }

    /// Write `records` (header first) as a CSV submission named `name`.
    fn write(&self, name: &str, records: &[Vec<String>]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut w = csv::Writer::from_path(&path).unwrap();
        for r in records {
            w.write_record(r).unwrap();
        }
        w.flush().unwrap();
        path
    }
}

fn records(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// A plausible random submission: the sample's ids and columns, random predictions.
fn random_submission(case: &Case, sample: &[Vec<String>], rng: &mut StdRng) -> Vec<Vec<String>> {
    let header = sample[0].clone();
    let mut out = vec![header.clone()];
    for row in &sample[1..] {
        let mut new = row.clone();
        match case.family {
            "accuracy" => {
                new[1] = if rng.random_bool(0.5) {
                    "True"
                } else {
                    "False"
                }
                .into()
            }
            "one-hot-log-loss" => {
                let raw: Vec<f64> = (1..row.len()).map(|_| rng.random_range(0.0..1.0)).collect();
                let total: f64 = raw.iter().sum();
                for (c, v) in raw.iter().enumerate() {
                    new[c + 1] = format!("{}", v / total);
                }
            }
            _ => {
                for (c, name) in header.iter().enumerate() {
                    if case.targets.contains(&name.as_str()) {
                        new[c] = format!("{}", rng.random_range(0.0..1.0));
                    }
                }
            }
        }
        out.push(new);
    }
    out
}

#[tokio::test]
async fn samples_answers_and_random_submissions_score_as_the_reference_does() {
    let Some(s) = setup() else { return };
    let mut rng = StdRng::seed_from_u64(2026);
    for case in CASES {
        let sample_path = s.file(
            case,
            sophon_grading::find(case.id).unwrap().sample_submission,
        );
        let report = s.agree(case, &sample_path, "sample submission").await;
        assert!(report.valid_submission && report.gold_threshold.is_some());

        let perfect = s
            .agree(case, &s.file(case, case.perfect), "the answers")
            .await;
        assert_eq!(perfect.score, Some(case.perfect_score), "{}", case.id);
        assert!(
            perfect.gold_medal,
            "{}: a perfect score takes gold",
            case.id
        );

        let sample = records(&sample_path);
        for i in 0..3 {
            let path = s.write(
                &format!("{}-random-{i}.csv", case.id),
                &random_submission(case, &sample, &mut rng),
            );
            let r = s.agree(case, &path, "random predictions").await;
            assert!(r.valid_submission, "{}: {}", case.id, r.message);
        }
    }
}

#[tokio::test]
async fn corrupted_submissions_fail_or_score_exactly_as_the_reference_says() {
    let Some(s) = setup() else { return };
    let mut rng = StdRng::seed_from_u64(7);
    for case in CASES {
        let sample_path = s.file(
            case,
            sophon_grading::find(case.id).unwrap().sample_submission,
        );
        let base = random_submission(case, &records(&sample_path), &mut rng);
        let n = base.len();
        let base_path = s.write(&format!("{}-base.csv", case.id), &base);
        let base_score = s.agree(case, &base_path, "base").await.score;

        // Shuffled rows: the same score (rows are paired by id).
        let mut shuffled = base.clone();
        shuffled[1..].reverse();
        let path = s.write(&format!("{}-shuffled.csv", case.id), &shuffled);
        assert_eq!(
            s.agree(case, &path, "shuffled rows").await.score,
            base_score
        );

        // Missing rows.
        let path = s.write(&format!("{}-short.csv", case.id), &base[..n - 5]);
        let r = s.agree(case, &path, "missing rows").await;
        assert!(
            !r.valid_submission && r.message.contains("rows"),
            "{}",
            r.message
        );

        // A wrong id.
        let mut wrong = base.clone();
        let id_index = wrong[0].iter().position(|c| c == case.id_column).unwrap();
        wrong[3][id_index] = format!("{}-not-a-test-id", wrong[3][id_index]);
        let path = s.write(&format!("{}-wrong-id.csv", case.id), &wrong);
        let r = s.agree(case, &path, "wrong id").await;
        assert!(!r.valid_submission, "{}", r.message);

        // An empty prediction (NaN).
        let mut nan = base.clone();
        let target_index = (0..nan[0].len()).find(|&c| c != id_index).unwrap();
        nan[2][target_index] = String::new();
        let path = s.write(&format!("{}-nan.csv", case.id), &nan);
        let r = s.agree(case, &path, "an empty prediction").await;
        assert!(
            !r.valid_submission || case.family == "accuracy",
            "{}",
            r.message
        );

        // The prediction column renamed.
        let mut renamed = base.clone();
        renamed[0][target_index] = format!("{}_pred", renamed[0][target_index]);
        let path = s.write(&format!("{}-renamed.csv", case.id), &renamed);
        let r = s.agree(case, &path, "a renamed column").await;
        assert!(
            !r.valid_submission && r.message.contains("column"),
            "{}",
            r.message
        );

        // Stray whitespace around every prediction: numbers tolerate it, text does not.
        let mut spaced = base.clone();
        for row in spaced.iter_mut().skip(1) {
            for (c, cell) in row.iter_mut().enumerate() {
                if c != id_index {
                    *cell = format!(" {cell} ");
                }
            }
        }
        let path = s.write(&format!("{}-spaced.csv", case.id), &spaced);
        s.agree(case, &path, "stray whitespace").await;
    }
}

#[test]
fn medal_thresholds_match_mlebench_for_every_leaderboard() {
    let Some(shared) = mlebench_dir() else { return };
    let expected = records(&shared.join("THRESHOLDS.csv"));
    let header = &expected[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut checked = 0;
    for row in &expected[1..] {
        let id = &row[col("competition")];
        let leaderboard = shared.join("competitions").join(id).join("leaderboard.csv");
        if row[col("gold")].is_empty() {
            continue; // no leaderboard (ventilator: a Git-LFS pointer)
        }
        let t = Thresholds::read(&leaderboard).unwrap_or_else(|e| panic!("{id}: {e}"));
        let number = |name: &str| row[col(name)].parse::<f64>().unwrap();
        for (name, ours) in [
            ("gold", t.gold),
            ("silver", t.silver),
            ("bronze", t.bronze),
            ("median", t.median),
        ] {
            let theirs = number(name);
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{id} {name}: {ours} vs MLE-bench {theirs}"
            );
        }
        assert_eq!(
            t.lower_is_better,
            row[col("lower_is_better")] == "True",
            "{id}"
        );
        assert_eq!(t.teams as f64, number("n_teams"), "{id}");
        checked += 1;
    }
    assert_eq!(checked, 81);
}

/// `mlebench prepare` leaves no leaderboard in the data directory, so Sophon carries the
/// thresholds: recomputed here from every leaderboard, they must equal the built-in table to
/// the bit. On a mismatch the current table is written to `target/medal-thresholds.csv`:
/// copy it over `host/src/grading/medal-thresholds.csv`.
#[test]
fn built_in_medal_thresholds_are_those_of_every_mlebench_leaderboard() {
    use sophon::grading::leaderboards;
    let Some(shared) = mlebench_dir() else { return };
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(shared.join("competitions")).unwrap() {
        let dir = entry.unwrap().path();
        let leaderboard = dir.join("leaderboard.csv");
        let id = dir.file_name().unwrap().to_string_lossy().to_string();
        if !leaderboard.is_file() {
            assert!(
                leaderboards::builtin(&id).is_none(),
                "{id} has no leaderboard"
            );
            continue;
        }
        let t = Thresholds::read(&leaderboard).unwrap_or_else(|e| panic!("{id}: {e}"));
        rows.push((id, t));
    }
    let table = leaderboards::render(&rows);
    if table != leaderboards::TABLE {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/medal-thresholds.csv");
        std::fs::write(&out, &table).unwrap();
        panic!(
            "the built-in table is not current: copy {} over host/src/grading/medal-thresholds.csv",
            out.display()
        );
    }
    for (id, t) in &rows {
        assert_eq!(leaderboards::builtin(id), Some(*t), "{id}");
    }
    assert_eq!(leaderboards::count(), 81);
    // Every competition Sophon grades but one (ventilator: its leaderboard is a Git-LFS
    // pointer) has medals built in.
    let without: Vec<&str> = sophon_grading::COMPETITIONS
        .iter()
        .map(|c| c.id)
        .filter(|id| leaderboards::builtin(id).is_none())
        .collect();
    assert_eq!(without, ["ventilator-pressure-prediction"]);
}

#[tokio::test]
async fn hostile_submissions_are_invalid_quickly_and_in_bounded_memory() {
    let Some(s) = setup() else { return };
    let case = &CASES[0];
    let dir = s.dir.path();

    // A 4 GB file (sparse: it costs no disk): refused by its size before reading.
    let huge = dir.join("huge.csv");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let r = s.grade(case, &huge).await;
    assert!(
        !r.valid_submission && r.message.contains("byte limit"),
        "{}",
        r.message
    );

    // Binary garbage.
    let garbage = dir.join("garbage.csv");
    let mut rng = StdRng::seed_from_u64(1);
    let bytes: Vec<u8> = (0..2_000_000).map(|_| rng.random()).collect();
    std::fs::write(&garbage, bytes).unwrap();
    let r = s.grade(case, &garbage).await;
    assert!(r.submission_exists && !r.valid_submission, "{}", r.message);

    // Two million columns.
    let wide = dir.join("wide.csv");
    let header: Vec<String> = (0..2_000_000).map(|i| format!("c{i}")).collect();
    std::fs::write(&wide, header.join(",") + "\n").unwrap();
    let r = s.grade(case, &wide).await;
    assert!(
        !r.valid_submission && r.message.contains("columns"),
        "{}",
        r.message
    );

    // Deeply nested JSON where a CSV belongs: not a submission at all.
    let nested = dir.join("nested.json");
    std::fs::write(&nested, "[".repeat(1_000_000) + &"]".repeat(1_000_000)).unwrap();
    let r = s.grade(case, &nested).await;
    assert!(!r.submission_exists && !r.valid_submission);
    // ... and the same bytes named .csv are one absurd text cell, not a crash.
    let nested_csv = dir.join("nested.csv");
    std::fs::copy(&nested, &nested_csv).unwrap();
    let r = s.grade(case, &nested_csv).await;
    assert!(!r.valid_submission, "{}", r.message);

    // A missing file.
    let r = s.grade(case, &dir.join("absent.csv")).await;
    assert!(!r.submission_exists && r.score.is_none());

    // After all that, the adapter still grades a good submission.
    let sample = s.file(case, "public/sample_submission.csv");
    assert!(s.grade(case, &sample).await.valid_submission);
}

#[test]
fn unknown_and_unprepared_competitions_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let grader = SophonConfig::defaults()
        .grader(Some(dir.path().to_path_buf()))
        .unwrap();
    let err = grader
        .prepared("no-such-competition")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not an MLE-bench competition") && err.contains("competitions list"),
        "{err}"
    );
    let err = grader
        .prepared("spaceship-titanic")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not prepared") && err.contains("--data-dir"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("spaceship-titanic/prepared/private")).unwrap();
    std::fs::write(
        dir.path()
            .join("spaceship-titanic/prepared/private/other.csv"),
        "x",
    )
    .unwrap();
    let err = grader
        .prepared("spaceship-titanic")
        .unwrap_err()
        .to_string();
    assert!(err.contains("answers file"), "{err}");
}

#[tokio::test]
async fn describe_gives_metric_format_and_a_bounded_preview_of_public_data_only() {
    let Some(shared) = mlebench_dir() else { return };
    let data = shared.join("data");
    let grader = SophonConfig::defaults().grader(Some(data.clone())).unwrap();
    for case in CASES {
        let prepared = grader.prepared(case.id).unwrap();
        let info = grader.describe(case.id, &prepared).await.unwrap();
        assert_eq!(info.competition_id, case.id);
        assert!(!info.description.is_empty() && info.description.len() <= 40 * 1024);
        let expected = sophon_grading::find(case.id).unwrap();
        assert_eq!(info.metric.name, expected.metric);
        assert!(
            info.public_files.iter().any(|f| f == "train.csv"),
            "{:?}",
            info.public_files
        );
        assert!(info.data_preview.contains("train.csv:") && info.data_preview.len() <= 25 * 1024);
        assert!(
            info.submission_format.contains(case.id_column),
            "{}",
            info.submission_format
        );
        // Nothing private leaks into what strategies see: no private file, and no column
        // that only the answers have.
        assert!(!info.data_preview.contains("gold_submission"));
        assert!(info.public_files.iter().all(|f| !f.contains("private")));
        let public_columns: Vec<String> = info
            .public_files
            .iter()
            .filter(|f| f.ends_with(".csv"))
            .flat_map(|f| records_head(&prepared.public.join(f)))
            .collect();
        for column in records_head(&s_file(&data, case, case.answers)) {
            if !public_columns.contains(&column) {
                assert!(
                    !info.data_preview.contains(&format!("- {column}:")),
                    "{}: private column {column} in the preview",
                    case.id
                );
            }
        }
    }
    // Spaceship's preview knows its columns' types and ranges.
    let prepared = grader.prepared("spaceship-titanic").unwrap();
    let info = grader
        .describe("spaceship-titanic", &prepared)
        .await
        .unwrap();
    assert!(
        info.data_preview.contains("Transported: boolean"),
        "{}",
        info.data_preview
    );
    assert!(
        info.data_preview.contains("Age: float, range 0"),
        "{}",
        info.data_preview
    );
    assert!(info.submission_format.contains("PassengerId,Transported"));
    assert_eq!(info.metric.direction, sophon::task::Direction::Maximize);
}

fn records_head(path: &Path) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.headers().unwrap().iter().map(str::to_string).collect()
}

fn s_file(data: &Path, case: &Case, relative: &str) -> PathBuf {
    data.join(case.id).join("prepared").join(relative)
}

/// A competition of one of the text or ranking families, prepared in a temporary directory
/// with synthetic answers (these competitions' real data is not in `../shared`).
struct Synthetic {
    case: Case,
    answers: Vec<Vec<String>>,
    sample: &'static str,
    /// Columns of a submission: the id and the first `width - 1` answer columns after it.
    width: usize,
    /// A random prediction for one cell given its true value.
    predict: fn(&mut StdRng, &str) -> String,
}

fn words(rng: &mut StdRng, n: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "cat",
        "सूरज",
        "ran",
        "Blue",
        "sky",
        "நீர்",
        "over",
        "a",
        "hill",
    ];
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn synthetic_cases(rng: &mut StdRng) -> Vec<Synthetic> {
    let rows = 60;
    let essay: Vec<Vec<String>> = std::iter::once(vec!["essay_id".into(), "score".into()])
        .chain((0..rows).map(|i| vec![format!("e{i:04}"), rng.random_range(1..=6).to_string()]))
        .collect();
    let patent: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "score".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{:016x}", i * 7919),
                ["0.0", "0.25", "0.5", "0.75", "1.0"][rng.random_range(0..5)].into(),
            ]
        }))
        .collect();
    let sentences: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "sentence".into()])
        .chain((0..rows).map(|i| vec![i.to_string(), words(rng, 6)]))
        .collect();
    let answers: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "PredictionString".into()])
        .chain((0..rows).map(|i| vec![format!("q{i}"), words(rng, 3)]))
        .collect();
    let herbarium: Vec<Vec<String>> = std::iter::once(vec!["Id".into(), "Predicted".into()])
        .chain((0..rows).map(|i| vec![i.to_string(), rng.random_range(0..8).to_string()]))
        .collect();
    let ventilator: Vec<Vec<String>> =
        std::iter::once(vec!["id".into(), "pressure".into(), "u_out".into()])
            .chain((0..rows).map(|i| {
                vec![
                    (i + 1).to_string(),
                    format!("{:.3}", rng.random_range(5.0..40.0)),
                    rng.random_range(0..2).to_string(),
                ]
            }))
            .collect();
    let taxi: Vec<Vec<String>> = std::iter::once(vec!["key".into(), "fare_amount".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("2015-01-{:02} 10:00:00.{i}", i % 28 + 1),
                format!("{:.2}", rng.random_range(3.0..60.0)),
            ]
        }))
        .collect();
    let paddy: Vec<Vec<String>> = std::iter::once(vec!["image_id".into(), "label".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{i}.jpg"),
                ["blast", "normal", "tungro"][rng.random_range(0..3)].into(),
            ]
        }))
        .collect();
    let iceberg: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "is_iceberg".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{:08x}", i * 31),
                rng.random_range(0..2).to_string(),
            ]
        }))
        .collect();
    let whales: Vec<Vec<String>> = std::iter::once(vec!["Image".into(), "Id".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{i:05}.jpg"),
                format!("w_{:03}", rng.random_range(0..12)),
            ]
        }))
        .collect();
    let attributes: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "attribute_ids".into()])
        .chain((0..rows).map(|i| {
            let n = rng.random_range(1..4);
            let labels: Vec<String> = (0..n)
                .map(|_| rng.random_range(0..15).to_string())
                .collect();
            vec![format!("a{i}"), labels.join(" ")]
        }))
        .collect();
    let normalization: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "after".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{}_{}", i / 5, i % 5),
                ["the", "twelve", "sil", "Dr.", "3"][rng.random_range(0..5)].into(),
            ]
        }))
        .collect();
    let inchi: Vec<Vec<String>> = std::iter::once(vec!["image_id".into(), "InChI".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{i:06x}"),
                format!(
                    "InChI=1S/C{}H{}O",
                    rng.random_range(1..30),
                    rng.random_range(1..60)
                ),
            ]
        }))
        .collect();
    let tweets: Vec<Vec<String>> = std::iter::once(vec!["textID".into(), "selected_text".into()])
        .chain((0..rows).map(|i| vec![format!("t{i}"), words(rng, 4)]))
        .collect();
    let species: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "predicted".into()])
        .chain((0..rows).map(|i| vec![i.to_string(), rng.random_range(0..30).to_string()]))
        .collect();
    let contacts: Vec<Vec<String>> = std::iter::once(vec!["contact_id".into(), "contact".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("g_{i}_1_2"),
                u8::from(rng.random_bool(0.3)).to_string(),
            ]
        }))
        .collect();
    let alaska: Vec<Vec<String>> = std::iter::once(vec!["Id".into(), "Label".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{i:04}.jpg"),
                u8::from(rng.random_bool(0.4)).to_string(),
            ]
        }))
        .collect();
    let volcanic: Vec<Vec<String>> =
        std::iter::once(vec!["segment_id".into(), "time_to_eruption".into()])
            .chain((0..rows).map(|i| {
                vec![
                    (1_000_000 + i * 37).to_string(),
                    rng.random_range(10_000..40_000_000).to_string(),
                ]
            }))
            .collect();
    let champs: Vec<Vec<String>> = std::iter::once(vec![
        "id".into(),
        "scalar_coupling_constant".into(),
        "type".into(),
    ])
    .chain((0..rows).map(|i| {
        vec![
            (4_000_000 + i).to_string(),
            format!("{:.4}", rng.random_range(-20.0..100.0)),
            ["1JHC", "2JHH", "3JHN"][i as usize % 3].into(),
        ]
    }))
    .collect();
    let gestures: Vec<Vec<String>> = std::iter::once(vec!["Id".into(), "Sequence".into()])
        .chain((0..rows).map(|i| {
            let n = rng.random_range(3..9);
            let seq: Vec<String> = (0..n)
                .map(|_| rng.random_range(1..21).to_string())
                .collect();
            vec![format!("{:04}", 300 + i), seq.join(" ")]
        }))
        .collect();
    let notebooks: Vec<Vec<String>> = std::iter::once(vec!["id".into(), "cell_order".into()])
        .chain((0..rows).map(|i| {
            let n = rng.random_range(2..10);
            let cells: Vec<String> = (0..n)
                .map(|c| format!("{:08x}", (i * 97 + c * 13) as u32))
                .collect();
            vec![format!("nb{i:04}"), cells.join(" ")]
        }))
        .collect();
    let spines: Vec<Vec<String>> = std::iter::once(vec!["row_id".into(), "fractured".into()])
        .chain((0..10).flat_map(|study| {
            let parts = ["patient_overall", "C1", "C2", "C3", "C4", "C5", "C6", "C7"];
            let fractured: Vec<bool> = (0..8).map(|_| rng.random_bool(0.3)).collect();
            parts
                .iter()
                .zip(fractured)
                .map(move |(part, f)| {
                    vec![format!("1.2.826.{study}_{part}"), u8::from(f).to_string()]
                })
                .collect::<Vec<_>>()
        }))
        .collect();
    let breasts: Vec<Vec<String>> = std::iter::once(vec!["prediction_id".into(), "cancer".into()])
        .chain((0..rows).map(|i| {
            vec![
                format!("{}_{}", 10_000 + i / 2, ["L", "R"][i as usize % 2]),
                u8::from(rng.random_bool(0.2)).to_string(),
            ]
        }))
        .collect();
    // Smartphone: 4 trips of 15 epochs each, around Mountain View.
    let phones: Vec<Vec<String>> = std::iter::once(
        [
            "tripId",
            "UnixTimeMillis",
            "LatitudeDegrees",
            "LongitudeDegrees",
        ]
        .map(String::from)
        .to_vec(),
    )
    .chain((0..rows).map(|i| {
        vec![
            format!("2021-08-{:02}-US-SVL-1/Pixel{}", 20 + i / 15, i / 15 + 4),
            (1_629_400_000_000u64 + i * 1000).to_string(),
            format!("{:.7}", 37.4 + rng.random_range(-0.01..0.01)),
            format!("{:.7}", -122.1 + rng.random_range(-0.01..0.01)),
        ]
    }))
    .collect();
    // Freesound: 6 classes, one to three positives per clip, a few clips with none.
    let freesound: Vec<Vec<String>> = std::iter::once(
        ["fname", "Bark", "Meow", "Rain", "Siren", "Bus", "Applause"]
            .map(String::from)
            .to_vec(),
    )
    .chain((0..rows).map(|i| {
        let mut row = vec![format!("{:08x}.wav", i * 977)];
        for _ in 0..6 {
            row.push(u8::from(rng.random_bool(0.3)).to_string());
        }
        row
    }))
    .collect();
    // OSIC: 12 patients × 5 weeks (some negative), a few FVCs unmeasured.
    let osic: Vec<Vec<String>> = std::iter::once(
        ["Patient_Week", "FVC", "Confidence"]
            .map(String::from)
            .to_vec(),
    )
    .chain((0..rows).map(|i| {
        let weeks = [-4, 0, 7, 15, 33];
        let week = weeks[i as usize % 5] + (i as i64 / 5) % 3;
        let fvc = if rng.random_range(0..8) == 0 {
            String::new()
        } else {
            rng.random_range(1200..4200).to_string()
        };
        vec![format!("ID{:05}_{week}", i / 5), fvc, "70".into()]
    }))
    .collect();
    // Stanford COVID: per-position targets of 6 sequences, the first 7 positions scored. Ids
    // sort as text (`id_001_10` before `id_001_2`), so sorted order is not file order.
    let covid: Vec<Vec<String>> = std::iter::once(
        [
            "id_seqpos",
            "reactivity",
            "deg_Mg_pH10",
            "deg_pH10",
            "deg_Mg_50C",
            "deg_50C",
            "keep",
        ]
        .map(String::from)
        .to_vec(),
    )
    .chain((0..rows).map(|i| {
        let (seq, pos) = (i / 10, i % 10 + 1);
        let mut row = vec![format!("id_{seq:03}_{pos}")];
        for _ in 0..5 {
            row.push(format!("{:.4}", rng.random_range(-0.5..3.0)));
        }
        row.push(if pos <= 7 { "True" } else { "False" }.into());
        row
    }))
    .collect();
    // Jigsaw: toxicity and the 9 identity columns (some blank), as fractions of raters.
    let identities = sophon_grading::grade::JIGSAW_IDENTITIES;
    let fractions = ["0.0", "0.1", "0.3", "0.5", "0.6", "0.9", "1.0"];
    let jigsaw: Vec<Vec<String>> = std::iter::once(
        ["id", "toxicity"]
            .into_iter()
            .chain(identities)
            .map(String::from)
            .collect(),
    )
    .chain((0..rows).map(|i| {
        let mut row = vec![
            (7_000_000 + i).to_string(),
            fractions[rng.random_range(0..fractions.len())].to_string(),
        ];
        for _ in identities {
            row.push(match rng.random_range(0..10) {
                0 => String::new(),
                1..=5 => "0.0".into(),
                _ => "0.8".into(),
            });
        }
        row
    }))
    .collect();
    vec![
        Synthetic {
            case: Case {
                id: "smartphone-decimeter-2022",
                family: "trip-haversine",
                id_column: "tripId",
                targets: &["UnixTimeMillis", "LatitudeDegrees", "LongitudeDegrees"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: phones,
            sample: "public/sample_submission.csv",
            width: 4,
            predict: |rng, truth| {
                let t: f64 = truth.parse().unwrap();
                if t.abs() > 1e9 {
                    truth.into()
                } else {
                    format!("{:.7}", t + rng.random_range(-0.0002..0.0002))
                }
            },
        },
        Synthetic {
            case: Case {
                id: "freesound-audio-tagging-2019",
                family: "lwlrap",
                id_column: "fname",
                targets: &[],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: freesound,
            sample: "public/sample_submission.csv",
            width: 7,
            predict: |rng, truth| {
                let base = if truth == "1" { 0.6 } else { 0.3 };
                format!("{:.3}", base + rng.random_range(-0.3..0.3))
            },
        },
        Synthetic {
            case: Case {
                id: "osic-pulmonary-fibrosis-progression",
                family: "osic",
                id_column: "Patient_Week",
                targets: &["FVC", "Confidence"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: -4.59507,
            },
            answers: osic,
            sample: "public/sample_submission.csv",
            width: 3,
            predict: |rng, truth| match truth.parse::<f64>() {
                Ok(t) if t > 100.0 => format!("{:.0}", t + rng.random_range(-600.0..600.0)),
                Ok(_) => rng.random_range(40..400).to_string(),
                Err(_) => rng.random_range(1500..3500).to_string(),
            },
        },
        Synthetic {
            case: Case {
                id: "stanford-covid-vaccine",
                family: "covid-mcrmse",
                id_column: "id_seqpos",
                targets: &[
                    "reactivity",
                    "deg_Mg_pH10",
                    "deg_pH10",
                    "deg_Mg_50C",
                    "deg_50C",
                ],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: covid,
            sample: "public/sample_submission.csv",
            width: 6,
            predict: |rng, truth| {
                let t: f64 = truth.parse().unwrap();
                format!("{:.4}", t + rng.random_range(-0.3..0.3))
            },
        },
        Synthetic {
            case: Case {
                id: "jigsaw-unintended-bias-in-toxicity-classification",
                family: "jigsaw-bias",
                id_column: "id",
                targets: &["toxicity"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: jigsaw,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let t: f64 = truth.parse().unwrap();
                format!("{:.3}", (t + rng.random_range(-0.45..0.45)).clamp(0.0, 1.0))
            },
        },
        Synthetic {
            case: Case {
                id: "rsna-2022-cervical-spine-fracture-detection",
                family: "study-log-loss",
                id_column: "row_id",
                targets: &["fractured"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: spines,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    (truth.parse::<f64>().unwrap() * 0.5 + rng.random_range(0.0..0.5))
                        .clamp(0.0, 1.0)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "rsna-breast-cancer-detection",
                family: "pf1",
                id_column: "prediction_id",
                targets: &["cancer"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: breasts,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    (truth.parse::<f64>().unwrap() * 0.6 + rng.random_range(0.0..0.4))
                        .clamp(0.0, 1.0)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "multi-modal-gesture-recognition",
                family: "sequence-edit-rate",
                id_column: "Id",
                targets: &["Sequence"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: gestures,
            sample: "public/randomPredictions.csv",
            width: 2,
            predict: |rng, truth| {
                let mut seq: Vec<&str> = truth.split(' ').collect();
                if rng.random_bool(0.5) {
                    seq.pop();
                }
                if rng.random_bool(0.5) {
                    seq.insert(0, "7");
                }
                seq.join(" ")
            },
        },
        Synthetic {
            case: Case {
                id: "AI4Code",
                family: "kendall",
                id_column: "id",
                targets: &["cell_order"],
                answers: "private/test_orders.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: notebooks,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let mut cells: Vec<&str> = truth.split(' ').collect();
                let n = cells.len();
                for _ in 0..2 {
                    cells.swap(rng.random_range(0..n), rng.random_range(0..n));
                }
                cells.join(" ")
            },
        },
        Synthetic {
            case: Case {
                id: "alaska2-image-steganalysis",
                family: "weighted-auc",
                id_column: "Id",
                targets: &["Label"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: alaska,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() * 0.3 + rng.random_range(0.0..1.0)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "predict-volcanic-eruptions-ingv-oe",
                family: "joined-mae-int",
                id_column: "segment_id",
                targets: &["time_to_eruption"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: volcanic,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() + rng.random_range(-1e6..1e6)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "champs-scalar-coupling",
                family: "log-mae-by-type",
                id_column: "id",
                targets: &["scalar_coupling_constant"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: f64::NEG_INFINITY,
            },
            answers: champs,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() + rng.random_range(-3.0..3.0)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "text-normalization-challenge-english-language",
                family: "text-accuracy-nan",
                id_column: "id",
                targets: &["after"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: normalization,
            sample: "private/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.8) {
                    truth.into()
                } else {
                    "the".into()
                }
            },
        },
        Synthetic {
            case: Case {
                id: "bms-molecular-translation",
                family: "levenshtein-nan",
                id_column: "image_id",
                targets: &["InChI"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: inchi,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.5) {
                    truth.into()
                } else {
                    truth.replace('C', "N")
                }
            },
        },
        Synthetic {
            case: Case {
                id: "tweet-sentiment-extraction",
                family: "tweet-jaccard",
                id_column: "textID",
                targets: &["selected_text"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: tweets,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                truth
                    .split(' ')
                    .skip(rng.random_range(0..3))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        },
        Synthetic {
            case: Case {
                id: "inaturalist-2019-fgvc6",
                family: "top1-error",
                id_column: "id",
                targets: &["predicted"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: species,
            sample: "public/kaggle_sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.6) {
                    format!("{truth} 3 4")
                } else {
                    format!("{} {truth}", rng.random_range(0..30))
                }
            },
        },
        Synthetic {
            case: Case {
                id: "nfl-player-contact-detection",
                family: "mcc",
                id_column: "contact_id",
                targets: &["contact"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: contacts,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.8) {
                    truth.into()
                } else {
                    "1".into()
                }
            },
        },
        Synthetic {
            case: Case {
                id: "whale-categorization-playground",
                family: "map5",
                id_column: "Image",
                targets: &["Id"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: whales,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let mut guesses: Vec<String> = (0..4)
                    .map(|_| format!("w_{:03}", rng.random_range(0..12)))
                    .collect();
                guesses.insert(rng.random_range(0..5), truth.to_string());
                guesses.join(" ")
            },
        },
        Synthetic {
            case: Case {
                id: "imet-2020-fgvc7",
                family: "micro-f1-sets",
                id_column: "id",
                targets: &["attribute_ids"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: attributes,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let mut labels: Vec<String> = truth.split(' ').map(str::to_string).collect();
                if rng.random_bool(0.5) {
                    labels.pop();
                }
                labels.push(rng.random_range(0..20).to_string());
                labels.join(" ")
            },
        },
        Synthetic {
            case: Case {
                id: "herbarium-2020-fgvc7",
                family: "macro-f1",
                id_column: "Id",
                targets: &["Predicted"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: herbarium,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.6) {
                    truth.into()
                } else {
                    rng.random_range(0..10).to_string()
                }
            },
        },
        Synthetic {
            case: Case {
                id: "ventilator-pressure-prediction",
                family: "masked-mae",
                id_column: "id",
                targets: &["pressure"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: ventilator,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() + rng.random_range(-2.0..2.0)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "new-york-city-taxi-fare-prediction",
                family: "sorted-rmse",
                id_column: "key",
                targets: &["fare_amount"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: taxi,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() * rng.random_range(0.8..1.2)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "paddy-disease-classification",
                family: "text-accuracy",
                id_column: "image_id",
                targets: &["label"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: paddy,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                if rng.random_bool(0.7) {
                    truth.into()
                } else {
                    "blast".into()
                }
            },
        },
        Synthetic {
            case: Case {
                id: "statoil-iceberg-classifier-challenge",
                family: "binary-log-loss",
                id_column: "id",
                targets: &["is_iceberg"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: iceberg,
            sample: "private/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let t: f64 = truth.parse().unwrap();
                format!("{}", (t * 0.6 + rng.random_range(0.0..0.4)).clamp(0.0, 1.0))
            },
        },
        Synthetic {
            case: Case {
                id: "learning-agency-lab-automated-essay-scoring-2",
                family: "kappa",
                id_column: "essay_id",
                targets: &["score"],
                answers: "private/answers.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: essay,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let t: i64 = truth.parse().unwrap();
                (t + rng.random_range(-1..=1)).clamp(1, 6).to_string()
            },
        },
        Synthetic {
            case: Case {
                id: "us-patent-phrase-to-phrase-matching",
                family: "pearson",
                id_column: "id",
                targets: &["score"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers: patent,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                format!(
                    "{}",
                    truth.parse::<f64>().unwrap() + rng.random_range(-0.3..0.3)
                )
            },
        },
        Synthetic {
            case: Case {
                id: "billion-word-imputation",
                family: "levenshtein",
                id_column: "id",
                targets: &["sentence"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 0.0,
            },
            answers: sentences,
            sample: "private/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let mut t: Vec<char> = truth.chars().collect();
                for _ in 0..rng.random_range(0..4) {
                    let at = rng.random_range(0..t.len());
                    t.remove(at);
                }
                t.into_iter().collect()
            },
        },
        Synthetic {
            case: Case {
                id: "chaii-hindi-and-tamil-question-answering",
                family: "jaccard",
                id_column: "id",
                targets: &["PredictionString"],
                answers: "private/test.csv",
                perfect: "",
                perfect_score: 1.0,
            },
            answers,
            sample: "public/sample_submission.csv",
            width: 2,
            predict: |rng, truth| {
                let mut w: Vec<&str> = truth.split(' ').collect();
                if rng.random_bool(0.5) {
                    w.pop();
                }
                w.join(" ").to_uppercase()
            },
        },
    ]
}

fn write_csv(path: &Path, records: &[Vec<String>]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = csv::Writer::from_path(path).unwrap();
    for r in records {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

#[tokio::test]
async fn text_and_ranking_metrics_score_as_the_reference_does_on_synthetic_competitions() {
    let Some(python) = python_reference() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(99);
    let cases = synthetic_cases(&mut rng);
    for c in &cases {
        let root = data.path().join(c.case.id).join("prepared");
        write_csv(&root.join(c.case.answers), &c.answers);
        // The sample submission: the id and the target columns.
        let sample: Vec<Vec<String>> = c.answers.iter().map(|r| r[..c.width].to_vec()).collect();
        write_csv(&root.join(c.sample), &sample);
        std::fs::create_dir_all(root.join("public")).unwrap();
    }
    let s = Setup {
        data: data.path().to_path_buf(),
        python,
        grader: SophonConfig::defaults()
            .grader(Some(data.path().to_path_buf()))
            .unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    for c in &cases {
        let case = &c.case;
        // The answers themselves.
        let perfect = s
            .agree(case, &s.file(case, case.answers), "the answers")
            .await;
        if case.perfect_score.is_finite() {
            assert_eq!(perfect.score, Some(case.perfect_score), "{}", case.id);
        } else {
            // ln(MAE 0) = −inf: valid and written as null (JSON has no infinity); it still
            // takes gold on a lower-is-better leaderboard, as in MLE-bench.
            assert!(
                perfect.valid_submission && perfect.score.is_none(),
                "{}",
                case.id
            );
        }
        // Noisy predictions, in shuffled order.
        let mut noisy = vec![c.answers[0][..c.width].to_vec()];
        for row in c.answers[1..].iter().rev() {
            let mut predicted = vec![row[0].clone()];
            for truth in &row[1..c.width] {
                predicted.push((c.predict)(&mut rng, truth));
            }
            noisy.push(predicted);
        }
        let path = s.write(&format!("{}-noisy.csv", case.id), &noisy);
        let r = s.agree(case, &path, "noisy predictions").await;
        assert!(r.valid_submission, "{}: {}", case.id, r.message);
        // A blank prediction, a wrong id, a missing row, constant predictions.
        let mut blank = noisy.clone();
        blank[5][1] = String::new();
        s.agree(
            case,
            &s.write(&format!("{}-blank.csv", case.id), &blank),
            "a blank prediction",
        )
        .await;
        let mut wrong = noisy.clone();
        wrong[7][0] = "not-an-id".into();
        let r = s
            .agree(
                case,
                &s.write(&format!("{}-wrong.csv", case.id), &wrong),
                "a wrong id",
            )
            .await;
        // The taxi grader pairs rows by position after sorting: a wrong key goes unnoticed
        // there, exactly as in MLE-bench.
        assert_eq!(
            r.valid_submission,
            case.family == "sorted-rmse",
            "{}",
            case.id
        );
        s.agree(
            case,
            &s.write(&format!("{}-short.csv", case.id), &noisy[..noisy.len() - 1]),
            "a missing row",
        )
        .await;
        let constant: Vec<Vec<String>> = noisy
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i == 0 {
                    r.clone()
                } else {
                    std::iter::once(r[0].clone())
                        .chain(c.answers[1][1..c.width].iter().cloned())
                        .collect()
                }
            })
            .collect();
        s.agree(
            case,
            &s.write(&format!("{}-constant.csv", case.id), &constant),
            "constant predictions",
        )
        .await;
    }
}

/// The data preview `describe` gives of the competition `toy` (accuracy on `y` by `id`)
/// prepared under `data`.
async fn toy_preview(data: &Path) -> String {
    let mut config = SophonConfig::defaults();
    config.mlebench.competitions.insert(
        "toy".into(),
        serde_json::from_str(
            r#"{"metric": "accuracy", "id-column": "id", "target-columns": ["y"]}"#,
        )
        .unwrap(),
    );
    let grader = config.grader(Some(data.to_path_buf())).unwrap();
    let prepared = grader.prepared("toy").unwrap();
    grader
        .describe("toy", &prepared)
        .await
        .unwrap()
        .data_preview
}

#[tokio::test]
async fn describe_previews_json_files_and_survives_hostile_ones() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = dir.path().join("toy/prepared");
    std::fs::create_dir_all(prepared.join("public")).unwrap();
    std::fs::create_dir_all(prepared.join("private")).unwrap();
    std::fs::write(prepared.join("private/test.csv"), "id,y\n1,a\n").unwrap();
    std::fs::write(prepared.join("public/sample_submission.csv"), "id,y\n1,a\n").unwrap();
    std::fs::write(
        prepared.join("public/train.json"),
        r#"[{"request_id": "t3_1", "requester_received_pizza": true, "votes": 3, "ratio": 0.5}]"#,
    )
    .unwrap();
    std::fs::write(
        prepared.join("public/meta.jsonl"),
        "{\"a\": [1, 2], \"b\": null}\n{\"a\": []}\n",
    )
    .unwrap();
    std::fs::write(
        prepared.join("public/deep.json"),
        "[".repeat(100_000) + &"]".repeat(100_000),
    )
    .unwrap();
    let preview = &toy_preview(dir.path()).await;
    assert!(
        preview.contains("train.json: JSON: array of 1 × {ratio: float, request_id: string (e.g. \"t3_1\"), requester_received_pizza: boolean, votes: integer}"),
        "{preview}"
    );
    assert!(
        preview.contains("meta.jsonl: JSON lines, each {a: array of 2 × integer, b: null}"),
        "{preview}"
    );
    assert!(
        preview.contains("deep.json: not readable as JSON (recursion limit"),
        "{preview}"
    );
}

/// Thousands of per-sample files are one line of the preview (their pattern, count, size and
/// two examples), not thousands of names; text columns carry their measured lengths.
#[tokio::test]
async fn describe_shows_many_files_as_their_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = dir.path().join("toy/prepared");
    let public = prepared.join("public");
    std::fs::create_dir_all(prepared.join("private")).unwrap();
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(prepared.join("private/test.csv"), "id,y\n1,a\n").unwrap();
    std::fs::write(public.join("sample_submission.csv"), "id,y\n1,a\n").unwrap();
    std::fs::write(
        public.join("train.csv"),
        "id,comment\n1,\"you are all wonderful people and I like this thread\"\n2,\"no\"\n",
    )
    .unwrap();
    for i in 0..700 {
        let sample = public.join(format!("test/{i}"));
        std::fs::create_dir_all(&sample).unwrap();
        std::fs::write(sample.join("geometry.xyz"), "3\nH 0 0 0\n").unwrap();
        std::fs::write(public.join(format!("img_{:08x}.jpg", i * 7919)), "x").unwrap();
    }
    let preview = &toy_preview(dir.path()).await;
    assert!(
        preview.contains("test/{n}/geometry.xyz (700 files, 6.8 KB in all, e.g. test/0/geometry.xyz, test/99/geometry.xyz)"),
        "{preview}"
    );
    assert!(preview.contains("img_{id}.jpg (700 files"), "{preview}");
    assert_eq!(preview.matches("geometry.xyz").count(), 3, "{preview}");
    assert!(preview.len() < 4096, "{} bytes: {preview}", preview.len());
    assert!(
        preview.contains("comment: text, 2 distinct, 0 missing, mean 26 chars / 5.5 words"),
        "{preview}"
    );
}

#[tokio::test]
async fn angular_error_scores_as_the_reference_does() {
    let Some(python) = python_reference() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let case = Case {
        id: "icecube-neutrinos-in-deep-ice",
        family: "angular",
        id_column: "event_id",
        targets: &["azimuth", "zenith"],
        answers: "private/test.csv",
        perfect: "",
        perfect_score: 0.0,
    };
    let answers: Vec<Vec<String>> =
        std::iter::once(vec!["event_id".into(), "azimuth".into(), "zenith".into()])
            .chain((0..50).map(|i| {
                vec![
                    (1000 + i).to_string(),
                    format!("{}", rng.random_range(0.0..std::f64::consts::TAU)),
                    format!("{}", rng.random_range(0.0..std::f64::consts::PI)),
                ]
            }))
            .collect();
    let root = data.path().join(case.id).join("prepared");
    write_csv(&root.join(case.answers), &answers);
    write_csv(&root.join("public/sample_submission.csv"), &answers);
    let s = Setup {
        data: data.path().to_path_buf(),
        python,
        grader: SophonConfig::defaults()
            .grader(Some(data.path().to_path_buf()))
            .unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let perfect = s
        .agree(&case, &s.file(&case, case.answers), "the answers")
        .await;
    assert_eq!(perfect.score, Some(0.0));
    let mut noisy = answers.clone();
    for row in noisy.iter_mut().skip(1).rev() {
        row[1] = format!(
            "{}",
            row[1].parse::<f64>().unwrap() + rng.random_range(-0.5..0.5)
        );
        row[2] = format!(
            "{}",
            row[2].parse::<f64>().unwrap() + rng.random_range(-0.5..0.5)
        );
    }
    noisy[1..].reverse();
    let r = s
        .agree(&case, &s.write("noisy.csv", &noisy), "noisy angles")
        .await;
    assert!(r.valid_submission && r.score.unwrap() > 0.0);
    let mut infinite = noisy.clone();
    infinite[4][1] = "inf".into();
    assert!(
        !s.agree(&case, &s.write("inf.csv", &infinite), "an infinite angle")
            .await
            .valid_submission
    );
    let mut extra = noisy.clone();
    for row in extra.iter_mut() {
        row.push("0".into());
    }
    assert!(
        !s.agree(&case, &s.write("extra.csv", &extra), "an extra column")
            .await
            .valid_submission
    );
}

#[tokio::test]
async fn the_adapter_sees_the_submission_alone_not_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = dir.path().join("data/toy/prepared");
    std::fs::create_dir_all(prepared.join("public")).unwrap();
    std::fs::create_dir_all(prepared.join("private")).unwrap();
    std::fs::write(prepared.join("private/answers.csv"), "id,y\n1,a\n").unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("mine.csv"), "id,y\n1,a\n").unwrap();
    std::fs::write(runs.join("secret-notes.txt"), "not for plugins").unwrap();
    let config_path = dir.path().join("sophon.toml");
    std::fs::write(
        &config_path,
        format!(
            "[mlebench]\nadapter = \"probe\"\n[mlebench.competitions.toy]\nmetric = \"accuracy\"\nid-column = \"id\"\n\
             target-columns = [\"y\"]\nanswers = \"private/answers.csv\"\n\
             [plugins.probe]\nsource = {:?}\n[plugins.probe.grants]\ntask = {{ private-data = true }}\n",
            sophon_tests::fixture("adapter-probe").display().to_string()
        ),
    )
    .unwrap();
    let config = SophonConfig::load(&config_path).unwrap();
    let grader = config.grader(Some(dir.path().join("data"))).unwrap();
    let prepared = grader.prepared("toy").unwrap();
    let report = grader
        .grade("toy", &prepared, &runs.join("mine.csv"), "mine.csv")
        .await;
    assert_eq!(report.score, Some(1.0), "{}", report.message);
    assert!(
        report.message.starts_with("visible: submission.csv;")
            || report.message == "visible: submission.csv",
        "{}",
        report.message
    );
    assert!(!report.message.contains("secret"));
}
