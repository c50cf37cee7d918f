//! Attacks on the host, one per `run` config. The tests check each is stopped with a clear
//! error (or, for the filesystem/network/environment probes, that nothing was reachable).

use sophon_sdk::{Outcome, Strategy, hcc};
use std::hint::black_box;

struct Hostile;

fn outcome(summary: String) -> Outcome {
    Outcome {
        best_node: None,
        nodes: 0,
        summary,
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let local = [depth; 16];
    black_box(&local);
    recurse(depth + 1) + black_box(local[3])
}

impl Strategy for Hostile {
    fn run(config: String) -> Result<Outcome, String> {
        match config.as_str() {
            "ok" => Ok(outcome("fine".into())),
            "infinite-loop" => {
                let mut i: u64 = 0;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 4 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => Ok(outcome(recurse(0).to_string())),
            "huge-return" => Ok(outcome("x".repeat(8 << 20))),
            "panic" => panic!("the plan has no metric: {}", 42),
            "huge-log" => {
                let line = "y".repeat(1023);
                for _ in 0..(16 * 1024) {
                    eprintln!("{line}");
                }
                Ok(outcome("logged".into()))
            }
            "probe-host" => {
                // Everything a sandboxed plugin must not reach; report what happened.
                let mut report = Vec::new();
                for path in [
                    "/etc/passwd",
                    "/proc/self/environ",
                    "../../../../etc/hostname",
                    ".",
                ] {
                    report.push(format!(
                        "read {path}: {}",
                        match std::fs::read(path) {
                            Ok(bytes) => format!("GOT {} bytes", bytes.len()),
                            Err(e) => format!("denied ({e})"),
                        }
                    ));
                }
                report.push(format!(
                    "list /: {}",
                    match std::fs::read_dir("/") {
                        Ok(entries) => format!("GOT {} entries", entries.count()),
                        Err(e) => format!("denied ({e})"),
                    }
                ));
                report.push(format!(
                    "write /tmp/x: {}",
                    match std::fs::write("/tmp/sophon-escape", b"x") {
                        Ok(()) => "GOT written".to_string(),
                        Err(e) => format!("denied ({e})"),
                    }
                ));
                report.push(format!("env: {} vars", std::env::vars().count()));
                report.push(format!("args: {} args", std::env::args().count()));
                report.push(format!(
                    "connect: {}",
                    match std::net::TcpStream::connect("127.0.0.1:22") {
                        Ok(_) => "GOT connected".to_string(),
                        Err(e) => format!("denied ({e})"),
                    }
                ));
                Ok(outcome(report.join("\n")))
            }
            "hcc-write" => {
                match hcc::record(hcc::EventKind::Insight, None, "forged memory", None) {
                    Ok(id) => Ok(outcome(format!("GOT recorded event {id}"))),
                    Err(e) => Err(e.to_string()),
                }
            }
            "too-many-chats" => {
                let mut pending = Vec::new();
                for _ in 0..3 {
                    match sophon_sdk::llm::start_chat(&sophon_sdk::llm::ChatRequest::user("hi")) {
                        Ok(p) => pending.push(p),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(outcome(format!("GOT {} pending calls", pending.len())))
            }
            other => Err(format!("unknown attack {other:?}")),
        }
    }
}

sophon_sdk::export_strategy!(Hostile);
