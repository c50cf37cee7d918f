//! A well-behaved strategy exercising each host capability, one per `run` config.

use sophon_sdk::futures::future::join_all;
use sophon_sdk::{Outcome, Strategy, artifacts, hcc, jobs, llm, rt, run, task};

struct Worker;

fn outcome(summary: String) -> Outcome {
    Outcome {
        best_node: None,
        nodes: 0,
        summary,
    }
}

impl Strategy for Worker {
    fn run(config: String) -> Result<Outcome, String> {
        // In `sophon run` the config arrives as JSON: a JSON string is the same mode.
        let config = config.trim_matches('"');
        let (mode, arg) = config.split_once(':').unwrap_or((config, ""));
        match mode {
            // One job that sleeps `secs` and is waited for, whatever the run's clock says.
            "wait-job" => {
                let secs: u32 = arg.parse().map_err(|_| "wait-job:<secs>")?;
                let result = jobs::run(&jobs::JobSpec::new(
                    "sleeper",
                    &["sleep", &secs.to_string()],
                ))?;
                Ok(outcome(format!("{:?}: {}", result.state, result.message)))
            }
            "parallel-chat" => {
                let n: usize = arg.parse().map_err(|_| "parallel-chat:<n>")?;
                let calls =
                    (0..n).map(|i| llm::chat_async(llm::ChatRequest::user(format!("worker {i}"))));
                let replies = rt::block_on(join_all(calls));
                let texts: Result<Vec<String>, _> =
                    replies.into_iter().map(|r| r.map(|c| c.text)).collect();
                Ok(outcome(texts?.join("|")))
            }
            "cancel-chat" => {
                let pending = llm::start_chat(&llm::ChatRequest::user("take your time"))?;
                // Let the request reach the provider before changing our mind.
                std::thread::sleep(std::time::Duration::from_millis(300));
                pending.cancel();
                match rt::block_on(llm::wait_completion(&pending)) {
                    Ok(c) => Ok(outcome(format!("GOT {}", c.text))),
                    Err(e) => Ok(outcome(e.to_string())),
                }
            }
            // One agent step, `n` times: ask the model, run a job, store and validate a
            // submission, remember, report the node and claim it (the step benchmark).
            "steps" => {
                let n: u32 = arg.parse().map_err(|_| "steps:<n>")?;
                let mut done = 0;
                for i in 0..n {
                    if run::should_stop() {
                        break;
                    }
                    let id = format!("node-{i}");
                    let reply = llm::chat(&llm::ChatRequest::user(format!("step {i}")))?;
                    let result = jobs::run(&jobs::JobSpec::new(
                        &id,
                        &["python", "main.py", &reply.text],
                    ))?;
                    let csv = format!("id,target\n1,{i}\n");
                    let submission = artifacts::create("submission.csv", csv.as_bytes())?;
                    let check = task::validate(&submission.id)?;
                    hcc::record(
                        hcc::EventKind::Execution,
                        Some(&id),
                        &result.stdout.head,
                        Some(f64::from(i)),
                    )?;
                    run::report_node(&run::NodeReport {
                        id: id.clone(),
                        parent: None,
                        operator: "draft".into(),
                        worker: Some(0),
                        plan: reply.text,
                        code: None,
                        metric: Some(f64::from(i)),
                        buggy: false,
                        valid_submission: check.valid,
                        summary: check.message,
                    })?;
                    run::report_best(&id, &submission.id, f64::from(i))?;
                    done += 1;
                }
                Ok(outcome(format!("{done} steps")))
            }
            "chat" => Ok(outcome(
                llm::chat(&llm::ChatRequest::user(arg).purpose("test"))?.text,
            )),
            "artifacts" => {
                let created = artifacts::create("submission.csv", b"id,target\n1,0.5\n")?;
                let back = artifacts::read_all(&created.id, 1 << 20)?;
                run::report_node(&run::NodeReport {
                    id: "n1".into(),
                    parent: None,
                    operator: "draft".into(),
                    worker: Some(0),
                    plan: "constant baseline".into(),
                    code: None,
                    metric: Some(0.5),
                    buggy: false,
                    valid_submission: true,
                    summary: "a constant".into(),
                })?;
                let adopted = run::report_best("n1", &created.id, 0.5)?;
                sophon_sdk::info!("stored {} bytes as {}", back.len(), created.id);
                Ok(Outcome {
                    best_node: Some("n1".into()),
                    nodes: 1,
                    summary: format!(
                        "{}|{}|{adopted}",
                        String::from_utf8_lossy(&back),
                        created.sha256
                    ),
                })
            }
            // `jobs:N` submits N jobs that echo their index, then waits on all of them at once;
            // `slow-jobs:N` does the same with jobs that sleep half a second first.
            "jobs" | "slow-jobs" => {
                let n: usize = arg.parse().map_err(|_| "jobs:<n>")?;
                let submitted: Result<Vec<jobs::Job>, _> = (0..n)
                    .map(|i| {
                        let echo = format!("echo {i}");
                        let slow = format!("sleep 0.5; echo {i}");
                        let command: &[&str] = if mode == "jobs" {
                            &["echo", &echo[5..]]
                        } else {
                            &["sh", "-c", &slow]
                        };
                        jobs::submit(&jobs::JobSpec::new(format!("job{i}"), command))
                    })
                    .collect();
                let submitted = submitted?;
                let results = rt::block_on(join_all(submitted.iter().map(jobs::wait_async)));
                Ok(outcome(
                    results
                        .into_iter()
                        .map(|r| r.stdout.head)
                        .collect::<Vec<_>>()
                        .join("|"),
                ))
            }
            "task" => {
                let info = task::describe()?;
                let sub = artifacts::create("submission.csv", b"id,target\n")?;
                let validation = task::validate(&sub.id)?;
                Ok(outcome(format!(
                    "{}|{}|{}",
                    info.competition_id, validation.valid, validation.message
                )))
            }
            "hcc" => {
                hcc::begin_phase("try a baseline")?;
                hcc::record(hcc::EventKind::Code, Some("n1"), "print(1)", None)?;
                let context = hcc::context(1000, None)?;
                Ok(outcome(context.text))
            }
            // `run.best` (since sophon:host 0.2.0): what the host holds as the best.
            "best" => Ok(outcome(match run::best() {
                Some(best) => format!("{}|{}|{}", best.node, best.submission, best.metric),
                None => "none".into(),
            })),
            "info" => {
                let info = run::info();
                Ok(outcome(format!(
                    "{}|{}|{}",
                    info.run_id,
                    info.seed,
                    run::should_stop()
                )))
            }
            other => Err(format!("unknown mode {other:?}")),
        }
    }
}

sophon_sdk::export_strategy!(Worker);
