//! `sophon run` end to end, in process: the `recipes` strategy on real data, with the
//! embedded local model or a loopback LLM that answers nonsense, and runs that go wrong
//! (unknown competitions, unprepared data, a strategy that fails, jobs that never write a
//! submission) — each a clear error or a failed node recorded while the run goes on.

use sophon::config::SophonConfig;
use sophon::run::events::{RunEvent, RunObserver};
use sophon::run::execute::{RunError, RunRequest, RunSummary, execute};
use sophon_tests::mlebench::mlebench_dir;
use sophon_tests::openai_server::{OpenAiServer, Reply};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Collects every event the run emits.
#[derive(Default)]
struct Recorder(Mutex<Vec<serde_json::Value>>);

impl RunObserver for Recorder {
    fn on_event(&self, event: &RunEvent) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_value(event).unwrap());
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A configuration in `dir`: a private HCC store and runs directory, plus `extra` TOML.
/// A configuration with the HCC store and runs under `dir`. Promotion is off (its model
/// calls would change the counts these tests check) except where a test turns it on.
fn config(dir: &Path, extra: &str) -> SophonConfig {
    config_with_policy(dir, "none", extra)
}

fn config_with_policy(dir: &Path, policy: &str, extra: &str) -> SophonConfig {
    let path = dir.join("sophon.toml");
    std::fs::write(
        &path,
        format!(
            "[hcc]\nstore = \"hcc.sqlite\"\n[run]\nruns-dir = \"runs\"\npolicy = \"{policy}\"\n{extra}"
        ),
    )
    .unwrap();
    SophonConfig::load(&path).unwrap()
}

/// A configuration whose only model is the loopback `server`.
fn config_with_llm(dir: &Path, server: &OpenAiServer, extra: &str) -> SophonConfig {
    config(
        dir,
        &format!(
            "[llm]\ndefault = \"fake\"\ncache = false\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n{extra}",
            server.base_url()
        ),
    )
}

fn request(competition: &str, data_dir: &Path, steps: u32) -> RunRequest {
    RunRequest {
        competition_id: competition.to_string(),
        data_dir: Some(data_dir.to_path_buf()),
        time_limit: Some(Duration::from_secs(240)),
        max_steps: Some(steps),
        ..RunRequest::default()
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run directory holds what the issue asks for, consistent with the summary.
fn check_run_dir(summary: &RunSummary) {
    let dir = &summary.run_dir;
    for file in [
        "run.json",
        "events.jsonl",
        "nodes.jsonl",
        "grade.json",
        "summary.json",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
    let nodes = std::fs::read_to_string(dir.join("nodes.jsonl")).unwrap();
    assert_eq!(nodes.lines().count() as u32, summary.nodes);
    let grade = read_json(&dir.join("grade.json"));
    assert_eq!(grade["total_runs"], 1);
    let report = &grade["competition_reports"][0];
    assert_eq!(report["competition_id"], summary.competition_id.as_str());
    assert_eq!(report["valid_submission"], summary.grade.valid_submission);
    if let Some(best) = &summary.best {
        // The submission in the run directory is the adopted best node's artifact.
        let best_json = read_json(&dir.join("best.json"));
        assert_eq!(best_json["node"], best.node.as_str());
        let kept = std::fs::read(dir.join("submission/submission.csv")).unwrap();
        let meta = read_json(&dir.join(format!("artifacts/meta/{}.json", best.submission)));
        let blob = std::fs::read(dir.join(format!(
            "artifacts/blobs/{}",
            meta["sha256"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(kept, blob);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_answers_nonsense_still_yields_a_graded_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    server.always(Reply::text(
        "Sure! Here is my plan: ```python\nimport os; os.system('rm -rf /')\n```",
    ));
    let config = config_with_llm(dir.path(), &server, "");
    let recorder = Arc::new(Recorder::default());
    let summary = execute(
        &config,
        request("sophon-demo-breast-cancer", &dir.path().join("data"), 3),
        vec![recorder.clone()],
    )
    .await
    .unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 3);
    assert_eq!(summary.buggy_nodes, 0);
    // Every choice fell back to the heuristic order, and the plan says why.
    let nodes = std::fs::read_to_string(summary.run_dir.join("nodes.jsonl")).unwrap();
    for line in nodes.lines() {
        let node: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            node["plan"]
                .as_str()
                .unwrap()
                .contains("the model's reply was not a recipe"),
            "{node}"
        );
    }
    assert_eq!(server.received().len(), 3);
    // The demo's answers are real: a working recipe scores far above chance on the test set.
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    assert!(summary.grade.score.unwrap() > 0.95, "{:?}", summary.grade);
    check_run_dir(&summary);
    let kinds = recorder.kinds();
    assert_eq!(kinds.first().map(String::as_str), Some("started"));
    assert_eq!(kinds.last().map(String::as_str), Some("graded"));
    assert!(kinds.iter().any(|k| k == "best"), "{kinds:?}");
    let llm = summary.llm.unwrap();
    assert_eq!(llm.calls, 3);
}

/// A two-row prepared competition `name` under `<dir>/data` (AUC on `y`) with `train` as its
/// training table.
fn toy_competition(dir: &Path, name: &str, train: &str) {
    let prepared = dir.join("data").join(name).join("prepared");
    std::fs::create_dir_all(prepared.join("public")).unwrap();
    std::fs::create_dir_all(prepared.join("private")).unwrap();
    std::fs::write(prepared.join("public/train.csv"), train).unwrap();
    std::fs::write(prepared.join("public/test.csv"), "id,x\n100,1\n101,2\n").unwrap();
    std::fs::write(
        prepared.join("public/sample_submission.csv"),
        "id,y\n100,0.5\n101,0.5\n",
    )
    .unwrap();
    std::fs::write(prepared.join("private/answers.csv"), "id,y\n100,1\n101,0\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_never_write_a_submission_are_failed_nodes_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // A competition whose training targets are all missing: the task profiles, but every
    // recipe fails inside its job.
    let mut train = String::from("id,x,y\n");
    for i in 0..40 {
        train.push_str(&format!("{i},{},\n", i % 7));
    }
    toy_competition(dir.path(), "broken", &train);
    let config = config(
        dir.path(),
        "[mlebench.competitions.broken]\nmetric = \"auc\"\nid-column = \"id\"\ntarget-columns = [\"y\"]\nanswers = \"private/answers.csv\"\n[run.strategies.recipes]\nuse-llm = false\n",
    );
    let summary = execute(
        &config,
        request("broken", &dir.path().join("data"), 2),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 2);
    assert_eq!(summary.buggy_nodes, 2);
    assert!(summary.best.is_none());
    // No node was valid: the run still ends with an answer, the host's baseline in the
    // sample's format (the training target is all missing, so the sample's own values).
    let baseline = summary.baseline.as_deref().expect("a baseline");
    assert!(baseline.contains("the sample's own values"), "{baseline}");
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    assert!(
        summary
            .grade
            .message
            .starts_with("a baseline written by Sophon"),
        "{}",
        summary.grade.message
    );
    let nodes = std::fs::read_to_string(summary.run_dir.join("nodes.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(nodes.lines().next().unwrap()).unwrap();
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains("the job failed"),
        "{first}"
    );
    check_run_dir(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_strategy_is_recorded_and_the_run_still_grades() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 2);
    req.strategy_config = Some(serde_json::json!({"max-nodez": 3}));
    let summary = execute(&config, req, vec![]).await.unwrap();
    let error = summary.error.clone().unwrap();
    assert!(error.contains("unknown config key `max-nodez`"), "{error}");
    assert_eq!(summary.nodes, 0);
    // The strategy failed before any node: the host's baseline is graded, and says so.
    assert!(summary.baseline.is_some());
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    assert!(
        summary
            .grade
            .message
            .starts_with("a baseline written by Sophon"),
        "{}",
        summary.grade.message
    );
    check_run_dir(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_runs_stop_before_starting_with_an_error_that_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let data = dir.path().join("data");
    let message = |r: Result<RunSummary, RunError>| r.err().unwrap().to_string();

    let unknown = message(execute(&config, request("no-such-competition", &data, 1), vec![]).await);
    assert!(
        unknown.contains("is not an MLE-bench competition"),
        "{unknown}"
    );

    let unprepared =
        message(execute(&config, request("spaceship-titanic", &data, 1), vec![]).await);
    assert!(unprepared.contains("is not prepared"), "{unprepared}");
    assert!(unprepared.contains("mlebench prepare"), "{unprepared}");

    let mut not_a_strategy = request("sophon-demo-breast-cancer", &data, 1);
    not_a_strategy.strategy = Some("mlebench".into());
    let error = message(execute(&config, not_a_strategy, vec![]).await);
    assert!(error.contains("not a strategy"), "{error}");

    let mut missing = request("sophon-demo-breast-cancer", &data, 1);
    missing.strategy = Some("no-such-strategy".into());
    let error = message(execute(&config, missing, vec![]).await);
    assert!(
        error.contains("no embedded plugin `no-such-strategy`"),
        "{error}"
    );

    // A run directory that holds a run is never overwritten.
    let taken = dir.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("run.json"), "{}").unwrap();
    let mut reuse = request("sophon-demo-breast-cancer", &data, 1);
    reuse.run_dir = Some(taken.clone());
    let error = message(execute(&config, reuse, vec![]).await);
    assert!(error.contains("already holds a run"), "{error}");
    assert_eq!(
        std::fs::read_to_string(taken.join("run.json")).unwrap(),
        "{}"
    );
}

/// The issue's bar for the small-model strategy: above the leaderboard median on each of the
/// four prepared MLE-bench competitions, within minutes, with the embedded local model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_strategy_beats_the_median_on_the_prepared_competitions() {
    let Some(mlebench) = mlebench_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    for competition in [
        "spaceship-titanic",
        "playground-series-s3e18",
        "detecting-insults-in-social-commentary",
        "leaf-classification",
    ] {
        let summary = execute(
            &config,
            request(competition, &mlebench.join("data"), 4),
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(summary.error, None, "{competition}");
        assert!(
            summary.grade.above_median,
            "{competition}: {:?} vs median {:?}",
            summary.grade.score, summary.grade.median_threshold
        );
        check_run_dir(&summary);
    }
}

/// The table shapes the four real competitions lack (`tests/support/shapes.py`: JSON tables,
/// 30 continuous targets in [0, 1], a text span, labels and ids in other files, 1,000 classes):
/// the embedded `recipes` strategy answers each with a submission of its own (not the host's
/// baseline), valid under the built-in grader, and better than the sample's constant answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_strategy_answers_every_table_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    let made = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/shapes.py"))
        .arg(&data)
        .arg("1500")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = config(dir.path(), "");
    // (competition, score the data's signal clears and a constant answer does not)
    for (competition, bar) in [
        ("random-acts-of-pizza", 0.6),
        ("google-quest-challenge", 0.5),
        ("tweet-sentiment-extraction", 0.75),
        ("tabular-playground-series-may-2022", 0.75),
        ("herbarium-2021-fgvc8", 0.5),
    ] {
        let summary = execute(&config, request(competition, &data, 2), vec![])
            .await
            .unwrap();
        assert_eq!(summary.error, None, "{competition}");
        assert_eq!(
            summary.baseline, None,
            "{competition}: the strategy found no answer"
        );
        assert!(
            summary.grade.valid_submission,
            "{competition}: {:?}",
            summary.grade
        );
        let score = summary.grade.score.unwrap();
        assert!(score > bar, "{competition}: {score} <= {bar}");
        check_run_dir(&summary);
    }
}

/// A reply every prompt of every strategy and policy can use: a research plan that builds on
/// node-0, a titled plan, and a script that submits the sample submission (no braces, so the
/// plan's JSON object is the only one in the reply).
const ANY_PROMPT_REPLY: &str = "{\"directions\": [{\"title\": \"sample-copy\", \"suggestion\": \"start from node-0 and keep its validation\"}]}\nTitle: copy the sample submission\nPlan: write the sample submission as the answer.\n```python\nimport glob, shutil\nsample = sorted(glob.glob('/data/*ample*ubmission*.csv'))[0]\nshutil.copy(sample, 'submission.csv')\nprint('VALIDATION_METRIC: 0.5')\n```\n";

/// Every strategy's and policy's prompts, as a model receives them over HTTP, on each prepared
/// competition (the four real ones when `../shared/mlebench` is there, and the demo): the task
/// text and the data preview appear at most once in any prompt, every prompt fits the budget,
/// every prompt that asks for a script states the job's time limit, and prompts about earlier
/// nodes name them by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prompt_says_the_task_once_within_budget_with_limits_and_node_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    server.always(Reply::ByPath {
        chat: Box::new(Reply::text(ANY_PROMPT_REPLY)),
        embeddings: Box::new(Reply::Embeddings),
    });
    let mut competitions = vec![(
        "sophon-demo-breast-cancer".to_string(),
        dir.path().join("data"),
    )];
    if let Some(mlebench) = mlebench_dir() {
        for c in [
            "spaceship-titanic",
            "playground-series-s3e18",
            "detecting-insults-in-social-commentary",
            "leaf-classification",
        ] {
            competitions.push((c.to_string(), mlebench.join("data")));
        }
    }
    let counter = sophon::hcc::tokens::TokenCounter::for_model(None);
    const BUDGET_TOKENS: u32 = 12_000;
    for (strategy, policy) in [
        ("ml-master-hcc", "hcc"),
        ("ml-master", "none"),
        ("aide", "none"),
        ("recipes", "top-k"),
    ] {
        let run_dir = dir.path().join(strategy);
        std::fs::create_dir_all(&run_dir).unwrap();
        let config = config_with_policy(
            &run_dir,
            policy,
            &format!(
                "[llm]\ndefault = \"fake\"\ncache = false\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n[run.strategies.ml-master-hcc]\nworkers = 1\nphases = 2\ndirections = 1\nmax-nodes = 3\ndebug-retries = 0\ncontext-tokens = 4000\njob-timeout-secs = 120\n[run.strategies.ml-master]\nworkers = 1\nnum-drafts = 1\nmax-nodes = 3\njob-timeout-secs = 120\n[run.strategies.aide]\njob-timeout-secs = 120\n",
                server.base_url()
            ),
        );
        for (competition, data) in &competitions {
            let before = server.received().len();
            let mut req = request(competition, data, 3);
            req.strategy = Some(strategy.into());
            let summary = execute(&config, req, vec![]).await.unwrap();
            assert_eq!(summary.error, None, "{strategy} on {competition}");
            let public = data.join(competition).join("prepared/public");
            let description = std::fs::read_to_string(public.join("description.md")).unwrap();
            // A stretch of the description no prompt needs twice.
            let probe: String = description.trim().chars().take(120).collect();
            let prompts: Vec<String> = server.received()[before..]
                .iter()
                .filter(|r| r.path.ends_with("/chat/completions"))
                .map(|r| {
                    r.body["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m["content"].as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            assert!(
                !prompts.is_empty(),
                "{strategy} on {competition} asked the model nothing"
            );
            let (mut workers, mut plans, mut summaries) = (0, 0, 0);
            for prompt in &prompts {
                let what = format!("{strategy} on {competition}:\n{prompt}");
                assert!(
                    prompt.matches(probe.as_str()).count() <= 1,
                    "the task twice in {what}"
                );
                let preview = prompt.matches("Files ({id} and {n} mark").count();
                assert!(preview <= 1, "the data preview twice in {what}");
                let headings = prompt.matches("# Task\n").count();
                assert!(headings <= 1, "two task headings in {what}");
                let tokens = counter.count(prompt);
                assert!(tokens <= BUDGET_TOKENS, "{tokens} tokens in {what}");
                if prompt.contains("# Instructions") {
                    workers += 1;
                    assert!(prompt.contains(probe.as_str()), "no task in {what}");
                    assert_eq!(preview, 1, "no data preview in {what}");
                    assert!(
                        prompt.contains("killed after 2.0 min of wall time"),
                        "no time limit in {what}"
                    );
                }
                if prompt.contains("## The solution to improve")
                    || prompt.contains("## The failed solution")
                {
                    assert!(prompt.contains("### node-"), "no node id in {what}");
                }
                if prompt.contains("Write the research plan for phase 2") {
                    plans += 1;
                    assert!(
                        prompt.contains("- node-0 \"copy the sample submission\""),
                        "no node list in {what}"
                    );
                    assert!(
                        prompt.contains("killed after 2.0 min"),
                        "no limits for the planner in {what}"
                    );
                }
                if prompt.contains("Nodes (best first") {
                    summaries += 1;
                    assert!(
                        prompt.contains("output:") && prompt.contains("[ran "),
                        "no outputs for the summariser in {what}"
                    );
                    assert!(
                        prompt.contains(" rows (order "),
                        "no measured size in {what}"
                    );
                }
            }
            if strategy != "recipes" {
                assert!(workers > 0, "{strategy} on {competition}: no worker prompt");
            }
            if strategy == "ml-master-hcc" {
                assert!(
                    plans > 0 && summaries > 0,
                    "{competition}: {plans} plans after nodes, {summaries} phase summaries"
                );
            }
        }
    }
}

/// The `sophon` binary cargo built for these tests.
fn sophon_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_sophon"))
}

/// Start `sophon run` with `args`, returning the child and its stdout lines as they come.
fn spawn_sophon(
    dir: &Path,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(sophon_binary())
        .args(args)
        .current_dir(dir)
        .env("SOPHON_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    (child, receive)
}

fn plans_and_metrics(run_dir: &Path) -> Vec<(String, String, Option<f64>)> {
    std::fs::read_to_string(run_dir.join("nodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let n: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                n["id"].as_str().unwrap().to_string(),
                n["plan"].as_str().unwrap().to_string(),
                n["metric"].as_f64(),
            )
        })
        .collect()
}

/// Kill -9 a run at random points (after a seeded-random number of events, plus a random
/// delay, so mid-job and mid-LLM-call too), resume it, and check that it ends exactly as an
/// uninterrupted run with the same seed, with no finished job and no answered LLM call repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_from_the_journal_without_repeating_work() {
    const STEPS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    server.always(Reply::text(
        r#"{"family": "linear", "learning_rate": 0.05, "num_leaves": 31, "n_estimators": 400, "C": 4.0, "split_compound": true, "reason": "small numeric data"}"#,
    ));
    let cfg = |jobs: &str| {
        let path = dir.path().join(format!("{jobs}.toml"));
        std::fs::write(
            &path,
            format!(
                "[hcc]\nstore = \"hcc.sqlite\"\n[run]\npolicy = \"none\"\n[jobs.local]\njobs-dir = \"{jobs}\"\n[llm]\ndefault = \"fake\"\ncache = false\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n",
                server.base_url()
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let steps = STEPS.to_string();
    let run_args = |config: &str, run_dir: &str| -> Vec<String> {
        [
            "run",
            "--config",
            config,
            "--competition",
            "sophon-demo-breast-cancer",
            "--data-dir",
            "data",
            "--max-steps",
            &steps,
            "--time-limit",
            "5m",
            "--seed",
            "7",
            "--run-dir",
            run_dir,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let as_strs = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{1}")
    };

    // The uninterrupted reference.
    let config = cfg("jobs-reference");
    let args = run_args(&config, "reference");
    let (mut child, _lines) = spawn_sophon(
        dir.path(),
        &as_strs(&args).split('\u{1}').collect::<Vec<_>>(),
    );
    assert!(child.wait().unwrap().success());
    let reference = plans_and_metrics(&dir.path().join("reference"));
    assert_eq!(reference.len(), STEPS);
    // One model call per node (the reply cache is off, so each call reaches the server), and
    // one job per node plus the task profile.
    assert_eq!(server.received().len(), STEPS);
    let reference_jobs = std::fs::read_dir(dir.path().join("jobs-reference"))
        .unwrap()
        .count();
    assert_eq!(reference_jobs, STEPS + 1);

    let mut random = 0x2545_f491_4f6c_dd1du64;
    let mut replayed = Vec::new();
    for attempt in 0..3 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let events_before_kill = 1 + (random % 9) as usize;
        let extra_delay = Duration::from_millis(random % 700);
        let jobs = format!("jobs-{attempt}");
        let config = cfg(&jobs);
        let run_dir = format!("killed-{attempt}");
        let before = server.received().len();
        let args = run_args(&config, &run_dir);
        let (mut child, lines) = spawn_sophon(
            dir.path(),
            &as_strs(&args).split('\u{1}').collect::<Vec<_>>(),
        );
        let mut seen = 0;
        while seen < events_before_kill && lines.recv_timeout(Duration::from_secs(120)).is_ok() {
            seen += 1;
        }
        std::thread::sleep(extra_delay);
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        // The crashed run's report: what was recorded, and that it did not finish.
        let killed = dir.path().join(&run_dir);
        let view = sophon::report::RunView::load(&killed, None).unwrap();
        let page = sophon::report::html::render(&view);
        assert!(
            page.contains("did not finish (no summary.json)")
                && page.contains("not graded (the run did not finish)"),
            "attempt {attempt}"
        );
        // Every node recorded whole before the kill is in it (a torn last line is not).
        let nodes = std::fs::read_to_string(killed.join("nodes.jsonl")).unwrap_or_default();
        let recorded: Vec<serde_json::Value> = nodes
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(
            recorded.len() < STEPS,
            "attempt {attempt}: killed after the end"
        );
        assert_eq!(view.nodes.len(), recorded.len(), "attempt {attempt}");
        for node in &recorded {
            let id = node["id"].as_str().unwrap();
            assert!(
                page.contains(id),
                "attempt {attempt}: node {id} missing from the report"
            );
        }

        let (mut resumed, lines) = spawn_sophon(
            dir.path(),
            &["run", "--config", &config, "--resume", &run_dir, "--json"],
        );
        let output: Vec<String> = lines.iter().collect();
        assert!(
            resumed.wait().unwrap().success(),
            "attempt {attempt}: resume failed: {output:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(output.last().unwrap()).unwrap();
        let summary = &summary["summary"];
        assert!(
            summary["grade"]["valid_submission"].as_bool().unwrap(),
            "attempt {attempt}: {summary}"
        );
        // Same search as the uninterrupted run: same nodes, plans and metrics, each once.
        let after = plans_and_metrics(&dir.path().join(&run_dir));
        assert_eq!(
            after, reference,
            "attempt {attempt} (killed after {seen} events)"
        );
        // At most the LLM call in flight at the kill was made again.
        let calls = server.received().len() - before;
        assert!(
            calls <= STEPS + 1,
            "attempt {attempt}: {calls} LLM calls for {STEPS} steps"
        );
        // Jobs: the profile and one per node, plus at most the one in flight at the kill.
        let jobs_run = std::fs::read_dir(dir.path().join(&jobs)).unwrap().count();
        assert!(
            jobs_run <= STEPS + 2,
            "attempt {attempt}: {jobs_run} jobs for {STEPS} nodes and a profile"
        );
        let replay = &summary["replay"];
        assert_eq!(
            replay["replayed"], replay["recorded"],
            "attempt {attempt}: {replay}"
        );
        eprintln!(
            "attempt {attempt}: killed after {seen} events + {extra_delay:?}; {replay}; {calls} LLM calls, {jobs_run} jobs"
        );
        replayed.push(replay["replayed"].as_u64().unwrap());
    }
    // The kills landed mid-run: the resumed runs had work to replay.
    assert!(replayed.iter().all(|&n| n > 0), "{replayed:?}");
}

/// Debian's headless Chromium, if installed (`tests/run` installs it and then requires it).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SOPHON_REQUIRE_CHROMIUM").is_none(),
            "SOPHON_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("skipped: no chromium (apt-get install chromium)");
    }
    found
}

/// The run report opens in real headless Chromium: the page renders its sections, the search
/// tree and the chart, and text a model wrote (here a script injection) stays inert text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_report_renders_in_headless_chromium_and_escapes_model_text() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    let attack =
        "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">";
    server.always(Reply::text(&format!(
        r#"{{"family": "linear", "learning_rate": 0.05, "num_leaves": 31, "n_estimators": 400, "C": 4.0, "split_compound": true, "reason": {}}}"#,
        serde_json::to_string(attack).unwrap()
    )));
    let config = config_with_llm(dir.path(), &server, "");
    let summary = execute(
        &config,
        request("sophon-demo-breast-cancer", &dir.path().join("data"), 3),
        vec![],
    )
    .await
    .unwrap();
    let first_plan = std::fs::read_to_string(summary.run_dir.join("nodes.jsonl")).unwrap();
    assert!(
        first_plan.contains("<script>"),
        "the attack reached the plan"
    );

    let view =
        sophon::report::RunView::load(&summary.run_dir, Some(&dir.path().join("hcc.sqlite")))
            .unwrap();
    let page = summary.run_dir.join("report.html");
    std::fs::write(&page, sophon::report::html::render(&view)).unwrap();
    let json = view.summary_json();
    assert_eq!(json["nodes"], 3);
    assert_eq!(json["hcc"]["events_by_kind"]["code"], 3);

    let url = format!("file://{}", page.display());
    let dom = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    assert!(dom.status.success());
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains(&format!("<title>Sophon run {}</title>", summary.run_id)),
        "{dom}"
    );
    assert_eq!(
        dom.matches("class=\"node\"").count(),
        3 + 3,
        "three tree nodes and three chart dots"
    );
    assert!(
        dom.contains("<svg") && dom.contains("class=\"best\""),
        "the chart rendered"
    );
    assert!(dom.contains("id=\"score\""));
    // The injected markup is text, not elements: no script ran and no image was created.
    assert!(
        !dom.contains("<script"),
        "a script element made it into the DOM"
    );
    assert!(!dom.contains("<img"), "an img element made it into the DOM");
    assert!(!dom.contains("pwned</title>"));
    assert!(dom.contains("&lt;script&gt;document.title"));

    let png = dir.path().join("report.png");
    let shot = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1100,1400",
            &format!("--screenshot={}", png.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(shot.status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // A page with text, tables and a chart compresses to far more than a blank one (~5 KB).
    assert!(bytes.len() > 30_000, "{} bytes", bytes.len());
}

/// A script that solves the demo competition, as a capable model would write it.
const DEMO_SOLUTION: &str = r#"import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

train = pd.read_csv("/data/train.csv")
test = pd.read_csv("/data/test.csv")
X, y = train.drop(columns=["id", "malignant"]), train["malignant"]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=C))
print("VALIDATION_METRIC:", cross_val_score(model, X, y, cv=5, scoring="roc_auc").mean())
model.fit(X, y)
proba = model.predict_proba(test.drop(columns=["id"]))[:, 1]
pd.DataFrame({"id": test["id"], "malignant": proba}).to_csv("submission.csv", index=False)
"#;

/// [`DEMO_SOLUTION`] without `{` or `}`, so that a JSON object after it in a reply is the
/// first one there (the reviewer's verdict).
fn demo_solution_without_braces() -> String {
    let script = DEMO_SOLUTION.replace(
        "pd.DataFrame({\"id\": test[\"id\"], \"malignant\": proba})",
        "pd.DataFrame(dict(id=test[\"id\"], malignant=proba))",
    );
    assert!(!script.contains('{') && !script.contains('}'));
    script
}

/// The nodes a run reported, from its `nodes.jsonl`.
fn read_nodes(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("nodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// AIDE's policy on a scripted model: a buggy draft is debugged (the error reaches the debug
/// prompt), the fixed node is then improved, and the best valid node is graded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aide_drafts_debugs_a_buggy_leaf_and_improves_the_best_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    let reply = |plan: &str, c: &str| {
        Reply::text(&format!(
            "{plan}\n\n```python\nC = {c}\n{DEMO_SOLUTION}```\n"
        ))
    };
    server.push([
        Reply::text("A first try.\n```python\nimport pandas as pd\nprint(1 / 0)\n```"),
        reply("Fix the division.", "1.0"),
    ]);
    server.always(reply("Regularise less.", "10.0"));
    let config = config_with_llm(
        dir.path(),
        &server,
        "[run.strategies.aide]\nnum-drafts = 1\ndebug-prob = 1.0\n",
    );
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 3);
    req.strategy = Some("aide".into());
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    let nodes = read_nodes(&summary.run_dir);
    let shape: Vec<(&str, Option<&str>, bool)> = nodes
        .iter()
        .map(|n| {
            (
                n["operator"].as_str().unwrap(),
                n["parent"].as_str(),
                n["buggy"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("draft", None, true),
            ("debug", Some("node-0"), false),
            ("improve", Some("node-1"), false),
        ]
    );
    // The debug prompt carried the failure; the improve prompt the parent's code.
    let prompts = server.received();
    let debug_prompt = prompts[1].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(debug_prompt.contains("ZeroDivisionError"), "{debug_prompt}");
    let improve_prompt = prompts[2].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(improve_prompt.contains("C = 1.0"), "{improve_prompt}");
    assert!(summary.best.is_some());
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    assert!(summary.grade.score.unwrap() > 0.95, "{:?}", summary.grade);
    check_run_dir(&summary);
}

/// The token budget stops a run: the strategy sees `should-stop` once the LLM ledger passes
/// it, and the run is graded with what it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_token_budget_stops_the_run_and_it_is_still_graded() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    server.always(Reply::text("not a recipe"));
    let config = config_with_llm(dir.path(), &server, "");
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 10);
    req.max_tokens = Some(1);
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 1, "one step, then the budget is spent");
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
}

/// The run's dollar limit (`--max-cost`) stops it like its token limit: the model's calls are
/// priced from `[llm.prices]`, the call that would pass the limit is refused, the strategy ends
/// its search and the run is graded; the spend passes the limit by at most the call in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_cost_budget_stops_the_run_and_it_is_still_graded() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    server.always(Reply::text("not a recipe"));
    // 11 prompt and 7 completion tokens a reply: $0.025 a call.
    let config = config_with_llm(
        dir.path(),
        &server,
        "[llm.prices.fake-model]\ninput = 1000.0\noutput = 2000.0\n",
    );
    let per_call = (11.0 * 1000.0 + 7.0 * 2000.0) / 1e6;
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 10);
    req.max_cost_usd = Some(0.06);
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    let llm = summary.llm.as_ref().expect("the run used the model");
    assert!(
        llm.cost_usd > 0.06 - per_call && llm.cost_usd <= 0.06 + per_call,
        "spent ${} against $0.06",
        llm.cost_usd
    );
    assert_eq!(
        server.received().len() as u64,
        llm.calls,
        "a refused call is never sent"
    );
    assert!(
        summary.nodes < 10,
        "the cost limit ended the search: {} nodes",
        summary.nodes
    );
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
}

/// Ctrl-C (SIGINT) ends a run gracefully: the strategy stops after its step, the best
/// submission is graded, the exit status is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_run_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sophon.toml"),
        "[hcc]\nstore = \"hcc.sqlite\"\n[run]\npolicy = \"none\"\n[run.strategies.recipes]\nuse-llm = false\n",
    )
    .unwrap();
    let (mut child, lines) = spawn_sophon(
        dir.path(),
        &[
            "run",
            "--config",
            "sophon.toml",
            "--competition",
            "sophon-demo-breast-cancer",
            "--data-dir",
            "data",
            "--max-steps",
            "50",
            "--run-dir",
            "run",
            "--json",
        ],
    );
    // Wait for the second node, then interrupt.
    let mut nodes = 0;
    while nodes < 2 {
        let line = lines.recv_timeout(Duration::from_secs(120)).unwrap();
        nodes += usize::from(line.contains("\"event\":\"node\""));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.iter().collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    let summary: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    let summary = &summary["summary"];
    let n = summary["nodes"].as_u64().unwrap();
    assert!((2..50).contains(&n), "{summary}");
    assert_eq!(summary["grade"]["valid_submission"], true, "{summary}");
}

/// ML-Master on a scripted model whose every reply holds a plan, a script (without braces)
/// and a review verdict: two workers draft, then extend their trajectories; the reviewer's
/// verdict is read; the metric the script printed is preferred to the reviewer's reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_master_workers_draft_extend_trajectories_and_read_the_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    let script = demo_solution_without_braces();
    server.always(Reply::text(&format!(
        "Scale and fit a logistic regression.\n```python\nC = 1.0\n{script}```\n{{\"is_bug\": false, \"has_submission\": true, \"summary\": \"reviewer-was-here\", \"metric\": 0.5, \"lower_is_better\": false}}"
    )));
    let config = config_with_llm(
        dir.path(),
        &server,
        "[run.strategies.ml-master]\nworkers = 2\nnum-drafts = 2\nmax-nodes = 4\n",
    );
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 10);
    req.strategy = Some("ml-master".into());
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 4);
    let nodes = read_nodes(&summary.run_dir);
    let drafts = nodes.iter().filter(|n| n["parent"].is_null()).count();
    assert_eq!(drafts, 2, "{nodes:?}");
    for node in &nodes {
        assert_eq!(node["buggy"], false, "{node}");
        assert!(
            node["summary"]
                .as_str()
                .unwrap()
                .contains("reviewer-was-here"),
            "{node}"
        );
        let metric = node["metric"].as_f64().unwrap();
        assert!(
            metric > 0.9,
            "the script's own metric, not the reviewer's 0.5: {node}"
        );
        if node["parent"].is_string() {
            assert_eq!(node["operator"], "improve", "{node}");
        }
    }
    let workers: std::collections::BTreeSet<u64> = nodes
        .iter()
        .map(|n| n["worker"].as_u64().unwrap())
        .collect();
    assert_eq!(workers.len(), 2, "both workers made nodes: {workers:?}");
    // Each node costs a generation and a review.
    assert_eq!(server.received().len(), 8);
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    assert!(summary.grade.score.unwrap() > 0.95, "{:?}", summary.grade);
    check_run_dir(&summary);
}

/// A run of ML-Master's two concurrent workers, killed mid-run and resumed: the journal
/// replays which concurrent operations had finished when the strategy looked, so the resumed
/// strategy retraces its steps exactly (every recorded answer is used) and asks the model
/// again only what was in flight at the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_resume_exactly_from_the_journal() {
    const NODES: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    let script = demo_solution_without_braces();
    server.always(Reply::text(&format!(
        "Fit a regularised logistic regression.\n```python\nC = 1.0\n{script}```\n{{\"is_bug\": false, \"has_submission\": true, \"summary\": \"ok\", \"metric\": null, \"lower_is_better\": false}}"
    )));
    std::fs::write(
        dir.path().join("sophon.toml"),
        format!(
            "[hcc]\nstore = \"hcc.sqlite\"\n[run]\npolicy = \"none\"\n[llm]\ndefault = \"fake\"\ncache = false\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n[run.strategies.ml-master]\nworkers = 2\nnum-drafts = 2\nmax-nodes = {NODES}\n",
            server.base_url()
        ),
    )
    .unwrap();
    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    for attempt in 0..2 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let events_before_kill = 2 + ((random >> 7) % 4) as usize;
        let run_dir = format!("ml-{attempt}");
        let before = server.received().len();
        let (mut child, lines) = spawn_sophon(
            dir.path(),
            &[
                "run",
                "--config",
                "sophon.toml",
                "--competition",
                "sophon-demo-breast-cancer",
                "--strategy",
                "ml-master",
                "--data-dir",
                "data",
                "--run-dir",
                &run_dir,
                "--json",
            ],
        );
        let mut seen = 0;
        while seen < events_before_kill && lines.recv_timeout(Duration::from_secs(120)).is_ok() {
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(random % 500));
        let _ = child.kill();
        child.wait().unwrap();
        let (mut resumed, lines) = spawn_sophon(
            dir.path(),
            &[
                "run",
                "--config",
                "sophon.toml",
                "--resume",
                &run_dir,
                "--json",
            ],
        );
        let output: Vec<String> = lines.iter().collect();
        assert!(resumed.wait().unwrap().success(), "{output:?}");
        let summary: serde_json::Value = serde_json::from_str(output.last().unwrap()).unwrap();
        let summary = &summary["summary"];
        assert_eq!(summary["nodes"], NODES, "attempt {attempt}: {summary}");
        let ids: std::collections::BTreeSet<String> = plans_and_metrics(&dir.path().join(&run_dir))
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        assert_eq!(ids.len(), NODES, "attempt {attempt}: each node once");
        let replay = &summary["replay"];
        assert_eq!(
            replay["replayed"], replay["recorded"],
            "attempt {attempt} (killed after {seen} events): every recorded answer replayed: {replay}"
        );
        // A generation and a review per node; at most one call per worker was in flight.
        let calls = server.received().len() - before;
        assert!(
            calls <= 2 * NODES + 2,
            "attempt {attempt}: {calls} model calls for {NODES} nodes"
        );
        eprintln!("attempt {attempt}: killed after {seen} events; {replay}; {calls} model calls");
    }
}

/// Wisdom across tasks with the embedded local model and the default `hcc` policy: a run on
/// one competition leaves wisdom, a later run on a similar one prefetches it (its report shows
/// it), and a run on the first competition never gets its own task's wisdom back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisdom_from_one_competition_is_prefetched_by_a_similar_one_never_by_itself() {
    let Some(mlebench) = mlebench_dir() else {
        return;
    };
    let data = mlebench.join("data");
    // The small model on a loaded CI machine is slow, and the wisdom is written by the run's
    // last promotion, which must end within the run's time: give it time whatever the load.
    let request = |competition: &str, data: &Path, steps: u32| RunRequest {
        time_limit: Some(Duration::from_secs(600)),
        ..request(competition, data, steps)
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_policy(dir.path(), "hcc", "");
    let events = |summary: &RunSummary| -> Vec<serde_json::Value> {
        std::fs::read_to_string(summary.run_dir.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let of_kind = |events: &[serde_json::Value], kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    };

    let first = execute(&config, request("spaceship-titanic", &data, 3), vec![])
        .await
        .unwrap();
    assert_eq!(first.error, None);
    let first_events = events(&first);
    let promoted = of_kind(&first_events, "promoted");
    assert_eq!(promoted.len(), 1, "{first_events:?}");
    assert_eq!(promoted[0]["policy"], "hcc");
    let left = promoted[0]["wisdom"].as_array().unwrap();
    assert!(!left.is_empty(), "the policy left wisdom: {promoted:?}");
    assert!(
        left.iter()
            .all(|w| w["from_competition"] == "spaceship-titanic")
    );
    assert!(
        of_kind(&first_events, "wisdom-prefetched").is_empty(),
        "nothing to prefetch yet"
    );

    let second = execute(
        &config,
        request("playground-series-s3e18", &data, 2),
        vec![],
    )
    .await
    .unwrap();
    let prefetched = of_kind(&events(&second), "wisdom-prefetched");
    assert_eq!(prefetched.len(), 1, "the similar task prefetches");
    let entries = prefetched[0]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|w| w["from_competition"] == "spaceship-titanic"
                && w["similarity"].as_f64().unwrap() >= 0.2),
        "{entries:?}"
    );
    let view =
        sophon::report::RunView::load(&second.run_dir, Some(&config.hcc.store_path())).unwrap();
    assert_eq!(view.wisdom.prefetched.len(), entries.len());
    let page = sophon::report::html::render(&view);
    assert!(page.contains("id=\"wisdom-prefetched\""));
    assert!(page.contains("<td>spaceship-titanic</td>"));

    // The leakage guard: spaceship-titanic's own wisdom never comes back to it, though the
    // store holds it and it is the closest match there is (its own task's descriptor).
    let store = sophon::hcc::store::HccStore::open(&config.hcc.store_path()).unwrap();
    let own = store.wisdom(Some("spaceship-titanic")).unwrap();
    assert!(!own.is_empty(), "the first run's wisdom is there to leak");
    let third = execute(&config, request("spaceship-titanic", &data, 1), vec![])
        .await
        .unwrap();
    let third_events = events(&third);
    let mut seen = 0;
    for event in of_kind(&third_events, "wisdom-prefetched") {
        for w in event["entries"].as_array().unwrap() {
            assert_ne!(w["from_competition"], "spaceship-titanic", "{w}");
            seen += 1;
        }
    }
    // What was prefetched (if anything) came from the other competition, and the report's
    // count agrees with the events.
    let view =
        sophon::report::RunView::load(&third.run_dir, Some(&config.hcc.store_path())).unwrap();
    assert_eq!(view.wisdom.prefetched.len(), seen);
}

/// ML-Master 2.0's loop on a scripted model: each phase's plan comes from an HCC context that
/// holds the earlier phases as plan + knowledge (distilled by the `top-k` policy), workers
/// implement the plan's directions — drafts first, then improvements of the best.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_master_hcc_plans_phases_from_the_knowledge_of_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = OpenAiServer::start().await;
    let script = demo_solution_without_braces();
    server.always(Reply::text(&format!(
        "{{\"directions\": [{{\"title\": \"scaled-logistic\", \"suggestion\": \"standardise, then logistic regression\"}}, {{\"title\": \"stronger-regularisation\", \"suggestion\": \"C = 0.1\"}}]}}\nScale and fit a logistic regression.\n```python\nC = 1.0\n{script}```\n"
    )));
    let config = config_with_policy(
        dir.path(),
        "top-k",
        &format!(
            "[llm]\ndefault = \"fake\"\ncache = false\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n[run.strategies.ml-master-hcc]\nworkers = 2\nphases = 2\ndirections = 2\nmax-nodes = 4\ndebug-retries = 0\n",
            server.base_url()
        ),
    );
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 10);
    req.strategy = Some("ml-master-hcc".into());
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 4);
    let nodes = read_nodes(&summary.run_dir);
    assert!(nodes.iter().all(|n| n["buggy"] == false), "{nodes:?}");
    let drafts = nodes.iter().filter(|n| n["operator"] == "draft").count();
    let improves = nodes.iter().filter(|n| n["operator"] == "improve").count();
    assert_eq!(
        (drafts, improves),
        (2, 2),
        "phase 1 drafts, phase 2 improves: {nodes:?}"
    );
    assert!(
        nodes
            .iter()
            .filter(|n| n["operator"] == "improve")
            .all(|n| n["parent"].is_string()),
        "{nodes:?}"
    );

    // Two phases, each a plan from the model and a knowledge unit from the policy.
    let store = sophon::hcc::HccStore::open(&dir.path().join("hcc.sqlite")).unwrap();
    let run_id = &summary.run_id;
    let knowledge = store
        .knowledge(sophon::hcc::store::KnowledgeScope::Run(run_id))
        .unwrap();
    assert_eq!(knowledge.len(), 2, "{knowledge:?}");
    let plans: Vec<String> = store
        .events(run_id, None, 0, None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == sophon::hcc::EventKind::Plan)
        .map(|e| e.event.content)
        .collect();
    assert_eq!(plans.len(), 2, "{plans:?}");
    assert!(
        plans[0].starts_with("1. scaled-logistic — "),
        "{}",
        plans[0]
    );
    // The second plan was asked for with the first phase's plan and knowledge in context.
    let asks: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains("Write the research plan for phase 2"))
        .collect();
    assert_eq!(asks.len(), 1);
    assert!(
        asks[0].contains("1. scaled-logistic — standardise, then logistic regression"),
        "{}",
        asks[0]
    );
    assert!(
        asks[0].contains(&knowledge[0].1.summary.replace('"', "\\\"")[..20]),
        "{}",
        asks[0]
    );
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
    check_run_dir(&summary);
}

/// Phase promotion end to end with the embedded local model: `ml-master-hcc` ends two phases
/// and the `hcc` policy distils each into a knowledge unit (from the model's reply or, when the
/// small model's JSON is unusable, from the log — the unit says which).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_model_promotes_each_phase_into_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_policy(
        dir.path(),
        "hcc",
        "[run.strategies.ml-master-hcc]\nworkers = 1\nphases = 2\ndirections = 1\nmax-nodes = 2\ndebug-retries = 0\nmax-tokens = 300\n",
    );
    let mut req = request("sophon-demo-breast-cancer", &dir.path().join("data"), 10);
    req.strategy = Some("ml-master-hcc".into());
    // The small model on a loaded CI machine is slow; the test is about what each phase
    // leaves, so it gets time for two phases whatever the load.
    req.time_limit = Some(Duration::from_secs(600));
    let summary = execute(&config, req, vec![]).await.unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.nodes, 2);
    let store = sophon::hcc::HccStore::open(&dir.path().join("hcc.sqlite")).unwrap();
    let knowledge = store
        .knowledge(sophon::hcc::store::KnowledgeScope::Run(&summary.run_id))
        .unwrap();
    let phases: Vec<u32> = knowledge.iter().map(|(_, k)| k.phase).collect();
    assert_eq!(phases, [1, 2], "{knowledge:?}");
    for (_, unit) in &knowledge {
        assert!(
            !unit.summary.is_empty() && !unit.verdicts.is_empty(),
            "{unit:?}"
        );
    }
    let events = std::fs::read_to_string(summary.run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"promoted\""), "{events}");
}

/// A configuration under `dir` for the toy competition `competition` (AUC on `y`) whose
/// `worker` strategy is the test plugin at `worker`, granted what it asks; jobs get a 1 s
/// grace.
fn worker_config(dir: &Path, competition: &str, worker: &Path) -> SophonConfig {
    config(
        dir,
        &format!(
            "managed-python = false\n\
             [mlebench.competitions.{competition}]\nmetric = \"auc\"\nid-column = \"id\"\ntarget-columns = [\"y\"]\nanswers = \"private/answers.csv\"\n\
             [plugins.worker]\nsource = {:?}\n\
             [plugins.worker.grants]\njobs = {{ max-concurrent = 4 }}\nllm = {{ max-concurrent = 8 }}\n\
             hcc = {{ scopes = [\"experience:write\", \"knowledge:read\", \"wisdom:read\"] }}\ntask = {{}}\nartifacts = {{}}\n\
             [jobs.local]\ngrace-secs = 1\n",
            worker.display().to_string()
        ),
    )
}

/// Issue 14, class 8: a run ends, graded, within a small grace of its time limit even when its
/// strategy waits on a job that would run for ten minutes: the job is cancelled at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ends_at_its_time_limit_with_a_long_job_running() {
    let dir = tempfile::tempdir().unwrap();
    toy_competition(dir.path(), "slow", "id,x,y\n1,1,0\n2,2,1\n");
    let config = worker_config(dir.path(), "slow", &sophon_tests::fixture("worker"));
    let mut request = request("slow", &dir.path().join("data"), 5);
    request.strategy = Some("worker".into());
    request.strategy_config = Some(serde_json::json!("wait-job:600"));
    request.time_limit = Some(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let summary = execute(&config, request, vec![]).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "the run took {took:?}");
    let outcome = summary.outcome.expect("the strategy returned");
    assert!(
        outcome.summary.contains("Cancelled") || outcome.summary.contains("TimedOut"),
        "{}",
        outcome.summary
    );
    assert!(summary.run_dir.join("grade.json").is_file());
    // The cancelled job left nothing: the host's baseline (the training target's mean) is graded.
    assert!(summary.best.is_none());
    let baseline = summary.baseline.as_deref().expect("a baseline");
    assert!(
        baseline.contains("y: mean of the training target"),
        "{baseline}"
    );
    assert!(summary.grade.valid_submission, "{:?}", summary.grade);
}

/// Killing and resuming never extends a run: the resumed run counts the time its killed
/// process spent — even waiting silently on a job, with no event written since it started —
/// and ends, graded, at the original time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_counts_the_time_its_killed_process_spent() {
    const LIMIT_MS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    toy_competition(dir.path(), "slow", "id,x,y\n1,1,0\n2,2,1\n");
    worker_config(dir.path(), "slow", &sophon_tests::fixture("worker"));
    let limit = format!("{}s", LIMIT_MS / 1000);
    let (mut child, lines) = spawn_sophon(
        dir.path(),
        &[
            "run",
            "--config",
            "sophon.toml",
            "--competition",
            "slow",
            "--data-dir",
            "data",
            "--strategy",
            "worker",
            "--strategy-config",
            "\"wait-job:600\"",
            "--time-limit",
            &limit,
            "--run-dir",
            "r",
            "--json",
        ],
    );
    let started: serde_json::Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(120)).unwrap()).unwrap();
    assert_eq!(started["event"], "started", "{started}");
    // Let the run wait on its job until its clock shows a third of the limit spent, then kill.
    let clock = dir.path().join("r/clock.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let spent = loop {
        let spent = std::fs::read_to_string(&clock)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|c| c["elapsed_ms"].as_u64())
            .unwrap_or(0);
        if spent >= LIMIT_MS / 3 {
            break spent;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run's clock never reached {spent} ms"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let events = std::fs::read_to_string(dir.path().join("r/events.jsonl")).unwrap();
    assert_eq!(
        events.lines().count(),
        1,
        "only `started` was written: {events}"
    );

    let (mut resumed, lines) = spawn_sophon(
        dir.path(),
        &["run", "--config", "sophon.toml", "--resume", "r", "--json"],
    );
    let output: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    assert!(resumed.wait().unwrap().success(), "{output:?}");
    let restarted = &output[0];
    assert_eq!(restarted["event"], "started");
    assert_eq!(restarted["resumed"], true);
    assert!(
        restarted["elapsed_ms"].as_u64().unwrap() >= spent,
        "the resumed run starts its clock at the {spent} ms already spent: {restarted}"
    );
    let summary = &output.last().unwrap()["summary"];
    let total = summary["elapsed_ms"].as_u64().unwrap();
    assert!(
        (LIMIT_MS..LIMIT_MS + 15_000).contains(&total),
        "the run ends at its {LIMIT_MS} ms limit in all, not a fresh limit after the resume: {total} ms"
    );
    assert!(
        summary["grade"]["valid_submission"].as_bool().unwrap(),
        "{summary}"
    );
}

/// A resume is refused, with nothing changed, for a run that finished and for a run whose
/// strategy file is now another build (its replies would not match the journal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_or_a_changed_strategy_build_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    toy_competition(dir.path(), "toy", "id,x,y\n1,1,0\n2,2,1\n");
    let plugin = dir.path().join("worker.wasm");
    std::fs::copy(sophon_tests::fixture("worker"), &plugin).unwrap();
    let config = worker_config(dir.path(), "toy", &plugin);
    let mut first = request("toy", &dir.path().join("data"), 5);
    first.strategy = Some("worker".into());
    first.strategy_config = Some(serde_json::json!("jobs:1"));
    let summary = execute(&config, first, vec![]).await.unwrap();
    let run_dir = summary.run_dir.clone();
    let resume = || RunRequest {
        resume: Some(run_dir.clone()),
        ..RunRequest::default()
    };

    let err = execute(&config, resume(), vec![])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has finished") && err.contains("nothing to resume"),
        "{err}"
    );

    // As a crash leaves it (no summary), but the strategy file replaced by another build.
    std::fs::remove_file(run_dir.join("summary.json")).unwrap();
    let mut other = std::fs::read(sophon_tests::fixture("worker")).unwrap();
    other.extend_from_slice(&[0, 2, 1, b'x']); // a trailing empty custom section: new bytes
    std::fs::write(&plugin, other).unwrap();
    let before = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let err = execute(&config, resume(), vec![])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not the build the run started with")
            && err.contains("resumes only with the same strategy"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap(),
        before,
        "a refused resume writes nothing"
    );
    // The same build again: it resumes and finishes.
    std::fs::copy(sophon_tests::fixture("worker"), &plugin).unwrap();
    let resumed = execute(&config, resume(), vec![]).await.unwrap();
    assert!(resumed.grade.valid_submission, "{:?}", resumed.grade);
}

/// A run whose jobs backend cannot take jobs stops before anything of it is written, with an
/// error naming the setting: unknown, not configured, misconfigured, not answering — from the
/// flag, from `[run]` and from the competition's route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_backend_that_cannot_take_jobs_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shared = dir.path().join("shared");
    let shared = shared.display();
    let cases: Vec<(String, Option<&str>, Vec<&str>)> = vec![
        (
            String::new(),
            Some("kubernetes"),
            vec!["unknown job backend `kubernetes`", "local, slurm, ray"],
        ),
        (
            "jobs-backend = \"slurm\"\n".into(),
            None,
            vec!["`slurm` is not configured", "add a [jobs.slurm] table"],
        ),
        (
            "[run.competitions.sophon-demo-breast-cancer]\njobs-backend = \"ray\"\n".into(),
            None,
            vec!["`ray` is not configured", "[jobs.ray]"],
        ),
        (
            format!("[jobs.ray]\nurl = \"http://127.0.0.1:9\"\nshared-dir = \"{shared}\"\n"),
            Some("ray"),
            vec!["`ray` does not answer", "[jobs.ray]"],
        ),
        (
            format!(
                "[jobs.slurm]\nurl = \"http://127.0.0.1:9\"\ntoken-env = \"SOPHON_NO_SUCH_TOKEN\"\nshared-dir = \"{shared}\"\n"
            ),
            Some("slurm"),
            vec!["$SOPHON_NO_SUCH_TOKEN holds no JWT", "fix [jobs.slurm]"],
        ),
        (
            "[jobs.ray]\nurl = \"http://127.0.0.1:9\"\n".into(),
            Some("ray"),
            vec!["needs `shared-dir`", "fix [jobs.ray]"],
        ),
    ];
    for (extra, flag, expected) in cases {
        let config = config(dir.path(), &extra);
        let mut req = request("sophon-demo-breast-cancer", &data, 1);
        req.jobs_backend = flag.map(str::to_string);
        let error = execute(&config, req, vec![])
            .await
            .err()
            .unwrap()
            .to_string();
        for part in expected {
            assert!(error.contains(part), "{extra:?} {flag:?}: {error}");
        }
        let runs = std::fs::read_dir(dir.path().join("runs")).map_or(0, |d| d.count());
        assert_eq!(runs, 0, "{extra:?}: no run directory is written");
    }
}
