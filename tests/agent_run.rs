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
fn config(dir: &Path, extra: &str) -> SophonConfig {
    let path = dir.join("sophon.toml");
    std::fs::write(
        &path,
        format!("[hcc]\nstore = \"hcc.sqlite\"\n[run]\nruns-dir = \"runs\"\n{extra}"),
    )
    .unwrap();
    SophonConfig::load(&path).unwrap()
}

/// A configuration whose only model is the loopback `server`.
fn config_with_llm(dir: &Path, server: &OpenAiServer, extra: &str) -> SophonConfig {
    config(
        dir,
        &format!(
            "[llm]\ndefault = \"fake\"\n[llm.providers.fake]\nkind = \"openai\"\nbase-url = \"{}\"\nmodel = \"fake-model\"\nsupports-json-schema = true\n{extra}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_never_write_a_submission_are_failed_nodes_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // A competition whose training targets are all missing: the task profiles, but every
    // recipe fails inside its job.
    let prepared = dir.path().join("data/broken/prepared");
    std::fs::create_dir_all(prepared.join("public")).unwrap();
    std::fs::create_dir_all(prepared.join("private")).unwrap();
    let mut train = String::from("id,x,y\n");
    for i in 0..40 {
        train.push_str(&format!("{i},{},\n", i % 7));
    }
    std::fs::write(prepared.join("public/train.csv"), train).unwrap();
    std::fs::write(prepared.join("public/test.csv"), "id,x\n100,1\n101,2\n").unwrap();
    std::fs::write(
        prepared.join("public/sample_submission.csv"),
        "id,y\n100,0.5\n101,0.5\n",
    )
    .unwrap();
    std::fs::write(prepared.join("private/answers.csv"), "id,y\n100,1\n101,0\n").unwrap();
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
    assert!(!summary.grade.submission_exists);
    assert!(!summary.grade.valid_submission);
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
    assert!(!summary.grade.submission_exists);
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
