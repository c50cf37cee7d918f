//! The `sophon` binary, end to end: the quick start's main job and `plugin inspect`.
//! (Declared as a test of the `sophon` package so it can run the built binary.)

use std::process::Command;

fn sophon(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sophon"))
        .args(args)
        .current_dir(dir)
        .env("SOPHON_LOG", "warn")
        .output()
        .expect("running sophon");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspect_reports_world_imports_exports_manifest_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = sophon(
        &["plugin", "inspect", "--json", "builtin:hello"],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["world"], "strategy");
    assert_eq!(json["manifest"]["plugin"]["name"], "hello");
    assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
    assert!(json["size"].as_u64().unwrap() > 1000);
    let imports: Vec<&str> = json["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"sophon:host/artifacts@0.1.0"),
        "{imports:?}"
    );
    assert_eq!(json["exports"][0], "sophon:plugin/strategy-api@0.1.0");

    std::fs::write(dir.path().join("bad.wasm"), b"definitely not wasm").unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "inspect", "bad.wasm"], dir.path());
    assert!(!ok);
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
}

#[test]
fn the_quick_start_main_job_runs_the_hello_strategy_in_its_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = sophon(&["plugin", "run", "builtin:hello", "--json"], dir.path());
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(json["best"]["node"], "node-1");
    assert_eq!(json["best"]["metric"], 1.0);
    let run_dir = dir.path().join(json["run_dir"].as_str().unwrap());
    let blobs = std::fs::read_dir(run_dir.join("artifacts/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 3, "one stored submission per node");

    // Bad plugin settings are the plugin's clear error, and a non-zero exit.
    let (ok, _, stderr) = sophon(
        &[
            "plugin",
            "run",
            "builtin:hello",
            "--plugin-config",
            "{\"nodes\": 0}",
        ],
        dir.path(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("config.nodes must be an integer in 1..=100"),
        "{stderr}"
    );
}

#[test]
fn an_operator_config_can_withhold_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sophon.toml"),
        "[plugins.hello]\nsource = 'builtin:hello'\n",
    )
    .unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "run", "builtin:hello"], dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("asks for capability `artifacts`")
            && stderr.contains("[plugins.hello.grants.artifacts]"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("sophon.toml"),
        "[runtime]\nno-such-setting = 1\n",
    )
    .unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "list"], dir.path());
    assert!(!ok);
    assert!(stderr.contains("no-such-setting"), "{stderr}");
}

/// Answers every HTTP request on loopback with one canned chat completion.
fn canned_openai_server() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let reply = r#"{"model":"canned","choices":[{"index":0,"message":{"role":"assistant","content":"Gradient boosting."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    addr
}

#[test]
fn llm_chat_talks_to_an_openai_compatible_server_from_the_environment() {
    let addr = canned_openai_server();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sophon"))
        .args([
            "llm",
            "chat",
            "--provider",
            "openai",
            "--model",
            "m1",
            "--verbose",
            "Name a model.",
        ])
        .current_dir(dir.path())
        .env("OPENAI_BASE_URL", format!("http://{addr}/v1"))
        .env("OPENAI_API_KEY", "sk-test")
        .env("SOPHON_LOG", "warn")
        .env("XDG_CACHE_HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "Gradient boosting.");
    assert!(
        stderr.contains("model canned | prompt 9 + completion 3 tokens"),
        "{stderr}"
    );

    let (ok, _, stderr) = sophon(&["llm", "chat", "--provider", "opneai", "hi"], dir.path());
    assert!(!ok);
    assert!(stderr.contains("no provider `opneai`"), "{stderr}");
}

#[test]
fn job_run_streams_output_and_exits_with_the_jobs_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sophon.toml"),
        format!(
            "[jobs.local]\njobs-dir = {:?}\ngrace-secs = 1\n",
            dir.path().join("jobs")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train.csv"), "a,b\n").unwrap();
    let (ok, stdout, stderr) = sophon(
        &[
            "job",
            "run",
            "--data",
            "data",
            "--",
            "sh",
            "-c",
            "cat /data/train.csv; echo err >&2",
        ],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "a,b\n");
    assert!(
        stderr.contains("err\n") && stderr.contains("succeeded"),
        "{stderr}"
    );
    let (ok, _, stderr) = sophon(
        &["job", "run", "--timeout", "1", "--", "sleep", "30"],
        dir.path(),
    );
    assert!(!ok);
    assert!(stderr.contains("timed-out"), "{stderr}");
    let (ok, _, _) = sophon(&["job", "run", "--", "sh", "-c", "exit 7"], dir.path());
    assert!(!ok);

    // Another process cancels a running job.
    let mut running = Command::new(env!("CARGO_BIN_EXE_sophon"))
        .args(["job", "run", "--", "sleep", "60"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = loop {
        let (_, listing, _) = sophon(&["job", "ls"], dir.path());
        if let Some(line) = listing
            .lines()
            .find(|l| l.contains("running") && l.contains("sleep 60"))
        {
            break line.split_whitespace().next().unwrap().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (ok, _, stderr) = sophon(&["job", "cancel", &id], dir.path());
    assert!(ok, "{stderr}");
    let status = running.wait().unwrap();
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut running.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("cancelled"), "{err}");
    let (_, listing, _) = sophon(&["job", "ls"], dir.path());
    assert!(
        listing.contains(&id)
            && listing
                .lines()
                .any(|l| l.starts_with(&id) && l.contains("cancelled")),
        "{listing}"
    );
    let (ok, _, stderr) = sophon(&["job", "logs", "../etc"], dir.path());
    assert!(!ok && stderr.contains("not a job id"), "{stderr}");
}

#[test]
fn hcc_simulate_keeps_every_context_within_budget_while_the_naive_history_grows() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = sophon(
        &[
            "hcc",
            "simulate",
            "--steps",
            "60",
            "--budget-tokens",
            "4000",
            "--phase-every",
            "20",
            "--store",
            "sim.sqlite",
            "--json",
        ],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 60);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i as u64 + 1);
        let context = s["context_tokens"].as_u64().unwrap();
        assert!(
            context > 0 && context <= 4000,
            "step {}: {context} tokens",
            i + 1
        );
    }
    let naive: Vec<u64> = steps
        .iter()
        .map(|s| s["naive_tokens"].as_u64().unwrap())
        .collect();
    assert!(
        naive.windows(2).all(|w| w[0] <= w[1]),
        "the full history only grows"
    );
    assert!(
        naive[59] > 10 * 4000,
        "60 steps of code and output: {}",
        naive[59]
    );

    // The simulated run is a real run in the store: it can be shown, and its wisdom moves
    // to another store through export/import.
    let (ok, runs, stderr) = sophon(
        &["hcc", "show", "--store", "sim.sqlite", "--json"],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let (ok, events, stderr) = sophon(
        &["hcc", "show", "--store", "sim.sqlite", "--run", &run_id],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    assert!(events.contains(&format!("run {run_id} on ")), "{events}");
    let (ok, _, stderr) = sophon(
        &[
            "hcc",
            "export",
            "--store",
            "sim.sqlite",
            "-o",
            "wisdom.jsonl",
        ],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let exported = std::fs::read_to_string(dir.path().join("wisdom.jsonl")).unwrap();
    let lines = exported.lines().count();
    assert!(
        lines > 0,
        "the scripted promotion stores wisdom at task end"
    );
    assert!(
        stderr.contains(&format!("exported {lines} wisdom entries")),
        "{stderr}"
    );
    let (ok, imported, stderr) = sophon(
        &["hcc", "import", "wisdom.jsonl", "--store", "team.sqlite"],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    assert!(
        imported.contains(&format!(
            "imported {lines} wisdom entries (0 already present)"
        )),
        "{imported}"
    );
    let (ok, stats, stderr) = sophon(
        &["hcc", "stats", "--store", "team.sqlite", "--json"],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["wisdom_entries"], lines as u64);
    assert_eq!(
        stats["runs"], 0,
        "wisdom travels without the runs that made it"
    );

    // Bad input: a clear error naming the problem.
    let (ok, _, stderr) = sophon(
        &["hcc", "import", "missing.jsonl", "--store", "team.sqlite"],
        dir.path(),
    );
    assert!(!ok && stderr.contains("missing.jsonl"), "{stderr}");
    let (ok, _, stderr) = sophon(&["hcc", "simulate", "--steps", "0"], dir.path());
    assert!(!ok && stderr.contains("must be positive"), "{stderr}");
}
