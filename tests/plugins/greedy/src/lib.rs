//! Asks the host for too much, one attack per `run` config (`<attack>:<args>`). Each attack
//! reports what the host answered, one line per try (`<try>: <ms> ms: <answer>`), so a test can
//! check every refusal is typed and names its limit, and that the host still serves afterwards.

use sophon_sdk::futures::future::join_all;
use sophon_sdk::llm::{self, ChatRequest, Message, ResponseFormat, Role, ToolDef};
use sophon_sdk::run::{self, LogLevel, NodeReport};
use sophon_sdk::{Outcome, Strategy, hcc, jobs, rt};
use std::time::Instant;

struct Greedy;

fn outcome(summary: String) -> Outcome {
    Outcome {
        best_node: None,
        nodes: 0,
        summary,
    }
}

/// `name: <ms> ms: <ok value or error>`.
fn attempt<T: std::fmt::Debug>(
    lines: &mut Vec<String>,
    name: &str,
    f: impl FnOnce() -> sophon_sdk::Result<T>,
) {
    let start = Instant::now();
    let result = f();
    let ms = start.elapsed().as_millis();
    lines.push(match result {
        Ok(value) => format!("{name}: {ms} ms: GOT {value:?}"),
        Err(e) => format!("{name}: {ms} ms: {e}"),
    });
}

fn node(id: &str) -> NodeReport {
    NodeReport {
        id: id.to_string(),
        parent: None,
        operator: "draft".into(),
        worker: Some(0),
        plan: "a plan".into(),
        code: Some("print(1)".into()),
        metric: Some(0.5),
        buggy: false,
        valid_submission: true,
        summary: "fine".into(),
    }
}

fn user(text: String) -> ChatRequest {
    ChatRequest::new(vec![Message::new(Role::User, text)])
}

const MB: usize = 1 << 20;

/// Makes one field of a node report too large.
type Grow = fn(&mut NodeReport);

/// Every call that parses or counts plugin text, each given far too much.
fn oversized() -> Vec<String> {
    let mut lines = Vec::new();
    // What the host holds before the attack.
    attempt(&mut lines, "before-record", || {
        hcc::record(hcc::EventKind::Insight, Some("n0"), "keep me", None)
    });
    attempt(&mut lines, "before-node", || run::report_node(&node("n0")));

    {
        // One 50 MB piece: the worst case for the tokenizer.
        let text = "a".repeat(50 * MB);
        attempt(&mut lines, "count-tokens-50mb", || {
            llm::count_tokens(&text, None)
        });
    }
    attempt(&mut lines, "count-tokens-model", || {
        llm::count_tokens("hi", Some(&"m".repeat(1024)))
    });
    attempt(&mut lines, "embed-5mb", || {
        llm::embed(&["e".repeat(5 * MB)], None).map(|v| v.len())
    });
    attempt(&mut lines, "embed-3000-inputs", || {
        llm::embed(&vec!["x".to_string(); 3000], None).map(|v| v.len())
    });
    attempt(&mut lines, "chat-5mb-message", || {
        llm::chat(&user("c".repeat(5 * MB))).map(|c| c.text)
    });
    attempt(&mut lines, "start-chat-5mb-message", || {
        llm::start_chat(&user("c".repeat(5 * MB))).map(|_| "pending")
    });
    attempt(&mut lines, "chat-5000-messages", || {
        let messages = vec![Message::new(Role::User, "hi".to_string()); 5000];
        llm::chat(&ChatRequest::new(messages)).map(|c| c.text)
    });
    attempt(&mut lines, "chat-5mb-tool", || {
        let request = user("hi".into()).tool(ToolDef {
            name: "t".into(),
            description: "d".repeat(5 * MB),
            parameters: "{}".into(),
        });
        llm::chat(&request).map(|c| c.text)
    });
    attempt(&mut lines, "chat-5mb-schema", || {
        let mut request = user("hi".into());
        request.response_format = ResponseFormat::JsonSchema(llm::JsonSchema {
            name: "s".into(),
            schema: format!("{{\"description\": \"{}\"}}", "s".repeat(5 * MB)),
            strict: false,
        });
        llm::chat(&request).map(|c| c.text)
    });
    attempt(&mut lines, "chat-long-purpose", || {
        llm::chat(&user("hi".into()).purpose("p".repeat(1024))).map(|c| c.text)
    });
    attempt(&mut lines, "hcc-record-2mb", || {
        hcc::record(hcc::EventKind::Execution, None, &"r".repeat(2 * MB), None)
    });
    attempt(&mut lines, "hcc-record-node-1kb", || {
        hcc::record(hcc::EventKind::Code, Some(&"n".repeat(1024)), "x", None)
    });
    attempt(&mut lines, "hcc-record-kind-1kb", || {
        hcc::record(hcc::EventKind::Other("k".repeat(1024)), None, "x", None)
    });
    attempt(&mut lines, "hcc-begin-phase-2mb", || {
        hcc::begin_phase(&"p".repeat(2 * MB))
    });
    attempt(&mut lines, "hcc-context-query-1mb", || {
        hcc::context(1000, Some(&"q".repeat(MB))).map(|c| c.tokens)
    });
    attempt(&mut lines, "hcc-search-query-1mb", || {
        hcc::search(hcc::Layer::Experience, &"q".repeat(MB), 5).map(|h| h.len())
    });
    let fields: [(&str, Grow); 6] = [
        ("node-plan-1mb", |n| n.plan = "p".repeat(MB)),
        ("node-code-2mb", |n| n.code = Some("c".repeat(2 * MB))),
        ("node-summary-100kb", |n| n.summary = "s".repeat(100 << 10)),
        ("node-id-1kb", |n| n.id = "i".repeat(1024)),
        ("node-parent-1kb", |n| n.parent = Some("i".repeat(1024))),
        ("node-operator-1kb", |n| n.operator = "o".repeat(1024)),
    ];
    for (name, grow) in fields {
        let mut report = node("big");
        grow(&mut report);
        attempt(&mut lines, name, || run::report_node(&report));
    }
    {
        // Not refused: cut to the host's line limit.
        let line = "l".repeat(50 * MB);
        attempt(&mut lines, "log-50mb", || {
            run::log(LogLevel::Info, &line);
            Ok("logged")
        });
    }
    // The host still serves this plugin.
    attempt(&mut lines, "after-count", || {
        llm::count_tokens("hello world", None)
    });
    attempt(&mut lines, "after-record", || {
        hcc::record(hcc::EventKind::Insight, Some("n1"), "still here", None)
    });
    attempt(&mut lines, "after-node", || run::report_node(&node("n1")));
    lines
}

/// Start `n` chats at once (each asking for `max_tokens`, none when 0) and sum what came back.
fn chats(n: usize, max_tokens: u32) -> String {
    let calls = (0..n).map(|i| {
        let mut request = user(format!("hi {i}"));
        if max_tokens > 0 {
            request = request.max_tokens(max_tokens);
        }
        llm::chat_async(request)
    });
    let replies = rt::block_on(join_all(calls));
    let (mut ok, mut refused, mut other, mut tokens) = (0, 0, Vec::new(), 0u64);
    for reply in replies {
        match reply {
            Ok(c) => {
                ok += 1;
                tokens += u64::from(c.usage.prompt_tokens) + u64::from(c.usage.completion_tokens);
            }
            Err(e) if e.kind == sophon_sdk::ErrorKind::BudgetExhausted => refused += 1,
            Err(e) => other.push(e.to_string()),
        }
    }
    format!("ok={ok} budget-exhausted={refused} tokens={tokens} other={other:?}")
}

/// Tally `n` tries of `f`: how many succeeded, were refused for budget, failed otherwise.
fn tally<T>(n: usize, mut f: impl FnMut(usize) -> sophon_sdk::Result<T>) -> String {
    let (mut ok, mut refused, mut first) = (0, 0, None);
    let mut other = Vec::new();
    for i in 0..n {
        match f(i) {
            Ok(_) => ok += 1,
            Err(e) if e.kind == sophon_sdk::ErrorKind::BudgetExhausted => {
                refused += 1;
                first.get_or_insert(e.message);
            }
            Err(e) => other.push(e.to_string()),
        }
    }
    format!(
        "ok={ok} budget-exhausted={refused} other={other:?} first-refusal={}",
        first.unwrap_or_default()
    )
}

impl Strategy for Greedy {
    fn run(config: String) -> Result<Outcome, String> {
        let mut parts = config.split(':');
        let attack = parts.next().unwrap_or_default();
        let mut arg = |default: usize| -> usize {
            parts.next().and_then(|a| a.parse().ok()).unwrap_or(default)
        };
        match attack {
            "oversized" => Ok(outcome(oversized().join("\n"))),
            // Count `n` bytes of text: one piece ("single") or words ("words").
            "count" => {
                let n = arg(1 << 20);
                let words = parts.next() == Some("words");
                let text = if words {
                    "word ".repeat(n / 5)
                } else {
                    "a".repeat(n)
                };
                let mut lines = Vec::new();
                attempt(&mut lines, "count", || llm::count_tokens(&text, None));
                Ok(outcome(lines.join("\n")))
            }
            "chats" => {
                let n = arg(8);
                let max_tokens = arg(0) as u32;
                Ok(outcome(chats(n, max_tokens)))
            }
            // `n` chats one after another.
            "seq-chats" => {
                let n = arg(4);
                Ok(outcome(tally(n, |i| llm::chat(&user(format!("turn {i}"))))))
            }
            "embeds" => {
                let n = arg(30);
                Ok(outcome(tally(n, |i| {
                    llm::embed(&[format!("text number {i}")], None)
                })))
            }
            "nodes" => {
                let n = arg(40);
                Ok(outcome(tally(n, |i| {
                    run::report_node(&node(&format!("n{i}")))
                })))
            }
            // Claims a (made-up) submission of each listed node as the best.
            "claim" => {
                let mut lines = Vec::new();
                for id in parts.by_ref() {
                    attempt(&mut lines, id, || {
                        run::report_best(id, "no-such-artifact", 1.0)
                    });
                }
                Ok(outcome(lines.join("\n")))
            }
            // `n` nodes, each with `kb` KiB of code (within the size limits).
            "big-nodes" => {
                let n = arg(100);
                let kb = arg(1000);
                let code = "c".repeat(kb << 10);
                Ok(outcome(tally(n, |i| {
                    let mut report = node(&format!("big{i}"));
                    report.code = Some(code.clone());
                    report.plan = "p".repeat(60 << 10);
                    run::report_node(&report)
                })))
            }
            "chat" => {
                let mut lines = Vec::new();
                attempt(&mut lines, "chat", || {
                    llm::chat(&user("hi".into())).map(|c| c.text)
                });
                Ok(outcome(lines.join("\n")))
            }
            "start-chat" => {
                let mut lines = Vec::new();
                attempt(&mut lines, "start-chat", || {
                    let pending = llm::start_chat(&user("hi".into()))?;
                    rt::block_on(llm::wait_completion(&pending)).map(|c| c.text)
                });
                Ok(outcome(lines.join("\n")))
            }
            "end-phase" => {
                let mut lines = Vec::new();
                attempt(&mut lines, "begin-phase", || {
                    hcc::begin_phase("try a baseline")
                });
                attempt(&mut lines, "record", || {
                    hcc::record(hcc::EventKind::Execution, Some("n1"), "loss 0.3", Some(0.3))
                });
                attempt(&mut lines, "end-phase", || {
                    hcc::end_phase().map(|k| k.is_some())
                });
                Ok(outcome(lines.join("\n")))
            }
            // Submit `n` jobs that sleep, then cancel those accepted.
            "jobs" => {
                let n = arg(3000);
                let mut accepted = Vec::new();
                let summary = tally(n, |i| {
                    jobs::submit(&jobs::JobSpec::new(format!("j{i}"), &["sleep", "30"]))
                        .map(|job| accepted.push(job))
                });
                for job in &accepted {
                    job.cancel();
                }
                Ok(outcome(summary))
            }
            other => Err(format!("unknown attack {other:?}")),
        }
    }
}

sophon_sdk::export_strategy!(Greedy);
