use super::MockHost;
use crate::hcc::{EventKind, KnowledgeUnit, Layer, WisdomEntry};
use crate::jobs::{JobSpec, JobState};
use crate::llm::ChatRequest;
use crate::{ErrorKind, Outcome, Strategy, artifacts, hcc, jobs, llm, rt, run, task};

fn unit(summary: &str) -> KnowledgeUnit {
    KnowledgeUnit {
        phase: 0,
        summary: summary.into(),
        verdicts: Vec::new(),
        failure_causes: Vec::new(),
        insights: Vec::new(),
        best_approach: None,
        best_metric: None,
    }
}

#[test]
fn replies_come_from_the_script_then_the_handler_then_a_clear_error() {
    let host = MockHost::new()
        .reply("first")
        .reply_error(ErrorKind::RateLimited, "slow down");
    host.within(|| {
        assert_eq!(llm::chat(&ChatRequest::user("a")).unwrap().text, "first");
        let err = llm::chat(&ChatRequest::user("b")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RateLimited);
        let err = llm::chat(&ChatRequest::user("c")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.message.contains("MockHost::reply"), "{err}");
    });
    let host = host.on_chat(|request| Ok(format!("echo {}", request.messages[0].content)));
    let reply = host.within(|| llm::chat(&ChatRequest::user("d")).unwrap());
    assert_eq!(reply.text, "echo d");
    assert_eq!(reply.usage.prompt_tokens, 1);
    let seen: Vec<String> = host
        .requests()
        .iter()
        .map(|r| r.messages[0].content.clone())
        .collect();
    assert_eq!(seen, ["a", "b", "c", "d"]);
    assert_eq!(host.within(llm::budget).requests_used, 4);
}

#[test]
fn concurrent_calls_under_block_on_complete() {
    let host = MockHost::new()
        .on_chat(|r| Ok(r.messages[0].content.to_uppercase()))
        .on_job(|spec| MockHost::job_printing(&spec.name));
    let (replies, results) = host.within(|| {
        rt::block_on(async {
            let replies = futures::future::join_all(
                ["x", "y"].map(|p| llm::chat_async(ChatRequest::user(p))),
            )
            .await;
            let submitted: Vec<jobs::Job> = (0..3)
                .map(|i| jobs::submit(&JobSpec::new(format!("j{i}"), &["true"])).unwrap())
                .collect();
            let results = futures::future::join_all(submitted.iter().map(jobs::wait_async)).await;
            (replies, results)
        })
    });
    let replies: Vec<String> = replies.into_iter().map(|r| r.unwrap().text).collect();
    assert_eq!(replies, ["X", "Y"]);
    let names: Vec<String> = results.into_iter().map(|r| r.stdout.head).collect();
    assert_eq!(names, ["j0", "j1", "j2"]);

    host.within(|| {
        let pending = llm::start_chat(&ChatRequest::user("z")).unwrap();
        pending.cancel();
        let err = rt::block_on(llm::wait_completion(&pending)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled);
        let again = pending.get().unwrap().unwrap_err();
        assert_eq!(again.kind, ErrorKind::InvalidArgument);
    });
}

struct Constants;

impl Strategy for Constants {
    fn run(config: String) -> Result<Outcome, String> {
        let guesses: Vec<f64> = crate::json::from_str(&config).map_err(|e| e.to_string())?;
        let mut best = None;
        for (i, guess) in guesses.iter().enumerate() {
            if run::should_stop() {
                break;
            }
            let id = format!("node-{i}");
            let csv = if *guess < 0.0 {
                String::new()
            } else {
                format!("id,target\n1,{guess}\n")
            };
            let file = artifacts::create(&format!("{id}.csv"), csv.as_bytes())?;
            let metric = -(guess - 0.5).abs();
            run::node(&id, "draft").metric(metric).report()?;
            if run::report_best(&id, &file.id, metric)? {
                best = Some(id);
            }
        }
        Ok(Outcome {
            best_node: best,
            nodes: guesses.len() as u32,
            summary: String::new(),
        })
    }
}

#[test]
fn the_best_follows_the_metric_direction_validation_and_the_step_budget() {
    let host = MockHost::new();
    // node-2 is empty (invalid); node-1 is the closest valid guess.
    let outcome = host.run::<Constants>("[0.1, 0.45, -1, 0.3]").unwrap();
    assert_eq!(outcome.best_node.as_deref(), Some("node-1"));
    let best = host.best().unwrap();
    assert_eq!(
        (best.node.as_str(), best.metric),
        ("node-1", -0.04999999999999999)
    );
    assert_eq!(host.best_submission().unwrap(), b"id,target\n1,0.45\n");
    assert_eq!(host.nodes().len(), 4);
    // What the plugin reads back through `run::best` is what the host adopted.
    let seen = host.within(run::best).unwrap();
    assert_eq!((seen.node, seen.metric), (best.node.clone(), best.metric));
    assert_eq!(seen.submission, best.submission);
    assert!(MockHost::new().within(run::best).is_none());

    let host = MockHost::new().steps(2);
    host.run::<Constants>("[0.1, 0.2, 0.3]").unwrap();
    assert_eq!(host.nodes().len(), 2, "should_stop after the step budget");
    let err = host
        .within(|| run::node("extra", "draft").report())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BudgetExhausted);

    let host = MockHost::new().validate_with(|csv| task::Validation {
        valid: csv.starts_with(b"id,target"),
        message: String::new(),
    });
    let valid = host.within(|| {
        let bad = artifacts::create("bad.csv", b"x").unwrap();
        task::validate(&bad.id).unwrap().valid
    });
    assert!(!valid);
}

#[test]
fn the_hcc_keeps_phases_events_and_scripted_knowledge() {
    let host = MockHost::new()
        .knowledge_unit(unit("trees beat linear models"))
        .wisdom(WisdomEntry {
            category: "tabular".into(),
            content: "start from gradient boosting".into(),
            applies_when: "tabular data".into(),
        });
    host.within(|| {
        assert_eq!(hcc::begin_phase("try trees").unwrap(), 1);
        hcc::record(EventKind::Plan, Some("node-1"), "fit a random forest", None).unwrap();
        // The second phase ends the first, which returns the scripted unit.
        assert_eq!(hcc::begin_phase("tune").unwrap(), 2);
        assert_eq!(hcc::knowledge().unwrap()[0].phase, 1);
        hcc::record(EventKind::Execution, Some("node-2"), "auc 0.91", Some(0.91)).unwrap();
        let context = hcc::context(1000, None).unwrap();
        assert!(context.text.contains("trees beat linear models"));
        assert!(context.text.contains("gradient boosting"));
        assert!(context.text.contains("auc 0.91"));
        assert!(
            !context.text.contains("random forest"),
            "an old phase's events"
        );
        assert!(hcc::context(3, None).unwrap().tokens <= 3);
        let hits = hcc::search(Layer::Wisdom, "gradient boosting please", 5).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hcc::events(Some(1), 0, 10).unwrap().len(), 1);
        assert_eq!(hcc::end_phase().unwrap(), None);
    });
    assert_eq!(host.phases(), ["try trees", "tune"]);
    assert_eq!(host.events().len(), 2);
}

#[test]
fn local_jobs_run_for_real_with_files_data_outputs_and_timeouts() {
    let data = std::env::temp_dir().join(format!("sophon-mock-data-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("train.csv"), "a,b\n1,2\n").unwrap();
    let host = MockHost::new().local_jobs(Some(data.clone()));
    host.within(|| {
        let spec = JobSpec::new(
            "count",
            &[
                "sh",
                "-c",
                "wc -l < data/train.csv; echo $GREETING >&2; echo out > result.txt; cat in.txt",
            ],
        )
        .file("in.txt", "from a file")
        .env("GREETING", "hello")
        .mount_task_data("/data")
        .output("result.txt");
        let result = jobs::run(&spec).unwrap();
        assert_eq!(result.state, JobState::Succeeded, "{}", result.message);
        assert_eq!(result.stdout.head, "2\nfrom a file");
        assert_eq!(result.stderr.head, "hello\n");
        let id = result.artifact("result.txt").unwrap();
        assert_eq!(artifacts::read_all(&id, 100).unwrap(), b"out\n");

        let slow = jobs::run(&JobSpec::new("slow", &["sleep", "5"]).timeout_ms(100)).unwrap();
        assert_eq!(slow.state, JobState::TimedOut);
        let failing = jobs::run(&JobSpec::new("fail", &["sh", "-c", "exit 3"])).unwrap();
        assert_eq!(failing.state, JobState::Failed);
        assert_eq!(failing.message, "exit code 3");
        let missing = jobs::run(&JobSpec::new("nope", &["no-such-program-here"])).unwrap();
        assert!(missing.message.contains("starting"), "{}", missing.message);
        let escape = jobs::run(&JobSpec::new("esc", &["true"]).file("../x", "")).unwrap();
        assert!(
            escape.message.contains("inside the job"),
            "{}",
            escape.message
        );
    });
    let without_data = MockHost::new().local_jobs(None);
    let result = without_data
        .within(|| jobs::run(&JobSpec::new("d", &["true"]).mount_task_data("/data")))
        .unwrap();
    assert!(
        result.message.contains("MockHost::local_jobs(Some"),
        "{}",
        result.message
    );
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn jobs_without_a_runner_and_denied_capabilities_say_what_to_do() {
    let host = MockHost::new().deny("llm");
    host.within(|| {
        let err = jobs::submit(&JobSpec::new("x", &["true"])).err().unwrap();
        assert!(err.message.contains("MockHost::on_job"), "{err}");
        let err = llm::chat(&ChatRequest::user("hi")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotGranted);
        assert!(llm::models().is_empty());
    });
}

#[test]
fn within_restores_the_outer_mock() {
    let outer = MockHost::new().seed(1);
    let inner = MockHost::new().seed(2);
    outer.within(|| {
        assert_eq!(run::info().seed, 1);
        inner.within(|| assert_eq!(run::info().seed, 2));
        assert_eq!(run::info().seed, 1);
    });
}

#[test]
#[should_panic(expected = "no mock host installed")]
fn a_host_call_without_a_mock_says_how_to_install_one() {
    run::info();
}
