//! `sophon plugin new` makes crates whose own tests pass natively (`cargo test`, against the
//! SDK's mock host) and that build for wasm32-wasip2 and load.

use sophon::runtime::{HostServices, PluginGrants, PluginSource, World, inspect};
use sophon::task::TaskRequest;
use sophon_tests::services::SlowEcho;
use sophon_tests::test_runtime;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Build the scaffolded crate in `dir` as its author would, sharing compiled dependencies with
/// the fixture plugins (same profile settings).
fn build(dir: &Path) -> PluginSource {
    let target_dir = plugins_target_dir();
    let output = cargo(dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
    PluginSource::from_file(
        &target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{name}.wasm")),
    )
    .unwrap()
}

/// The fixture plugins' target directory, shared so dependencies compile once.
fn plugins_target_dir() -> std::path::PathBuf {
    Path::new(sophon_tests::FIXTURE_LISTING)
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .unwrap()
        .join("plugins")
}

/// `cargo ARGS` in the scaffolded crate `dir`, as its author would run it.
fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(args)
        .arg("--target-dir")
        .arg(plugins_target_dir())
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

/// The crate's own tests, run natively with plain `cargo test`: they pass, and there are some.
fn author_tests_pass(dir: &Path) {
    let output = cargo(dir, &["test"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 1, "no test ran: {stdout}");
}

fn sdk_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// `cargo package` passes as its author would run it before `cargo publish`: the crate asks
/// for `sophon-sdk` by version, and its `.cargo/config.toml` points that at the SDK copy in
/// `vendor/` (part of the folder a teammate clones, not of the package).
fn packages(dir: &Path) {
    let output = cargo(dir, &["package", "--offline"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let sdk_manifest = std::fs::read_to_string(sdk_dir().join("Cargo.toml")).unwrap();
    let sdk_version = sdk_manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap();
    assert!(
        manifest.contains(&format!("sophon-sdk = {sdk_version}\n")),
        "a version dependency, no path: {manifest}"
    );
    let listed = cargo(dir, &["package", "--offline", "--list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l == "src/lib.rs"), "{listed}");
    assert!(
        !listed.contains("vendor"),
        "the vendored SDK is not packaged: {listed}"
    );
}

/// Load with exactly the grants the manifest asks for.
fn requested_grants(source: &PluginSource) -> PluginGrants {
    let manifest = inspect::describe(source)
        .unwrap()
        .manifest
        .unwrap()
        .unwrap();
    PluginGrants {
        grants: manifest.capabilities,
        memory_mb: manifest.limits.memory_mb,
        sha256: None,
    }
}

#[tokio::test]
async fn scaffolded_plugins_of_every_world_build_and_load() {
    let parent = tempfile::tempdir().unwrap();
    let runtime = test_runtime();

    let dir =
        sophon::cli::scaffold_plugin(World::Strategy, "my-strategy", parent.path(), None).unwrap();
    author_tests_pass(&dir);
    packages(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    let services = HostServices {
        llm: Some(SlowEcho::new(Duration::ZERO)),
        ..HostServices::default()
    };
    let outcome = plugin
        .strategy(services)
        .await
        .unwrap()
        .run("{}", T)
        .await
        .unwrap();
    assert_eq!(outcome.summary, "echo: Name one model for tabular data.");

    let dir = sophon::cli::scaffold_plugin(World::TaskAdapter, "my-adapter", parent.path(), None)
        .unwrap();
    author_tests_pass(&dir);
    packages(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("train.csv"), "a,b\n").unwrap();
    let files = sophon::runtime::AdapterFiles {
        public: Some(data.path().to_path_buf()),
        ..Default::default()
    };
    let mut adapter = plugin
        .task_adapter(HostServices::default(), &files)
        .await
        .unwrap();
    let request = TaskRequest {
        competition_id: "demo".into(),
        options: "{}".into(),
    };
    assert_eq!(
        adapter.describe(&request, T).await.unwrap().public_files,
        vec!["train.csv".to_string()]
    );

    let dir =
        sophon::cli::scaffold_plugin(World::PromotionPolicy, "my-policy", parent.path(), None)
            .unwrap();
    author_tests_pass(&dir);
    packages(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    plugin
        .promotion_policy(HostServices::default())
        .await
        .unwrap();

    // The SDK itself packages (its WIT is vendored in the crate).
    let output = cargo(&sdk_dir(), &["package", "--offline", "--allow-dirty"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let err = sophon::cli::scaffold_plugin(World::Strategy, "my-strategy", parent.path(), None)
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err =
        sophon::cli::scaffold_plugin(World::Strategy, "Bad_Name", parent.path(), None).unwrap_err();
    assert!(err.to_string().contains("lower-case"), "{err}");
}

/// Serves `body` to every HTTP request on loopback; its URL.
fn serve(body: Vec<u8>) -> String {
    serve_with(move |stream| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)
    })
}

/// Answers every HTTP request on loopback with `respond` (after reading the request head).
fn serve_with(
    respond: impl Fn(&mut std::net::TcpStream) -> std::io::Result<()> + Send + 'static,
) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = respond(&mut stream);
        }
    });
    format!("http://{addr}/plugin.wasm")
}

fn install_request<'a>(
    source: &'a str,
    config: &'a Path,
) -> sophon::cli::install::InstallRequest<'a> {
    sophon::cli::install::InstallRequest {
        source,
        sha256: None,
        grant_requested: false,
        force: false,
        config,
    }
}

/// `sophon plugin install`: the file lands beside the configuration, pinned by hash, the
/// operator's comments kept; grants only when asked for; a URL only with its hash; a wrong
/// hash, a missing manifest or another build of the same version change nothing.
#[tokio::test]
async fn installed_plugins_are_pinned_and_granted_only_on_request() {
    use sophon::cli::install::install;
    use sophon::config::SophonConfig;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sophon.toml");
    std::fs::write(
        &config,
        "# the operator's notes\n[run]\nstrategy = \"recipes\"\n",
    )
    .unwrap();
    let greedy = sophon_tests::fixture("greedy").display().to_string();
    let runtime = test_runtime();

    let installed = install(&install_request(&greedy, &config)).await.unwrap();
    assert!(!installed.granted);
    let expected = PluginSource::from_file(Path::new(&greedy))
        .unwrap()
        .sha256();
    assert_eq!(installed.sha256, expected);
    assert_eq!(installed.path, dir.path().join("plugins/greedy-0.1.0.wasm"));
    {
        // Readable by any account that runs Sophon (root may install, a user may run).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&installed.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{mode:o}");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# the operator's notes\n[run]"), "{text}");
    let loaded = SophonConfig::load(&config).unwrap();
    let entry = &loaded.plugins["greedy"];
    assert_eq!(entry.sha256.as_deref(), Some(expected.as_str()));
    assert_eq!(entry.memory_mb, Some(128));
    let source = PluginSource::from_file(Path::new(entry.source.as_ref().unwrap())).unwrap();
    let Err(err) = runtime.load(&source, &loaded.grants_for("greedy")) else {
        panic!("no grants, no load");
    };
    assert!(err.to_string().contains("llm"), "{err}");

    let mut request = install_request(&greedy, &config);
    request.grant_requested = true;
    assert!(install(&request).await.unwrap().granted);
    let loaded = SophonConfig::load(&config).unwrap();
    assert!(loaded.plugins["greedy"].grants.llm.is_some());
    runtime.load(&source, &loaded.grants_for("greedy")).unwrap();

    // Another build under the same name and version is refused without --force.
    let echo = sophon_tests::fixture("echo").display().to_string();
    let copy = dir.path().join("greedy-imposter.wasm");
    let mut bytes = std::fs::read(&greedy).unwrap();
    bytes.extend_from_slice(&[0, 2, 1, b'x']); // a trailing empty custom section "x"
    std::fs::write(&copy, &bytes).unwrap();
    let copy = copy.display().to_string();
    let before = std::fs::read_to_string(&config).unwrap();
    let err = install(&install_request(&copy, &config)).await.unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    let mut request = install_request(&copy, &config);
    request.force = true;
    install(&request).await.unwrap();

    // From a URL: only pinned, and only with the pinned bytes.
    let url = serve(std::fs::read(&echo).unwrap());
    let before = std::fs::read_to_string(&config).unwrap();
    let err = install(&install_request(&url, &config)).await.unwrap_err();
    assert!(err.to_string().contains("--sha256"), "{err}");
    let mut request = install_request(&url, &config);
    request.sha256 = Some(&expected); // greedy's hash, not echo's
    let err = install(&request).await.unwrap_err();
    assert!(err.to_string().contains("not the one published"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert!(!dir.path().join("plugins/echo-0.1.0.wasm").exists());
    let echo_sha = PluginSource::from_file(Path::new(&echo)).unwrap().sha256();
    request.sha256 = Some(&echo_sha);
    let installed = install(&request).await.unwrap();
    assert!(!installed.granted, "echo asks for nothing");
    let loaded = SophonConfig::load(&config).unwrap();
    let source = PluginSource::from_file(&installed.path).unwrap();
    runtime.load(&source, &loaded.grants_for("echo")).unwrap();

    // No manifest, no install; an unparsable configuration is reported, not overwritten.
    let wasm = std::fs::read(&echo).unwrap();
    let at = wasm
        .windows(b"sophon-manifest".len())
        .position(|w| w == b"sophon-manifest")
        .unwrap();
    let mut stripped = wasm.clone();
    stripped[at] = b'X';
    let bare = dir.path().join("bare.wasm");
    std::fs::write(&bare, stripped).unwrap();
    let bare = bare.display().to_string();
    let err = install(&install_request(&bare, &config)).await.unwrap_err();
    assert!(err.to_string().contains("sophon plugin build"), "{err}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[plugins\n").unwrap();
    let err = install(&install_request(&echo, &broken)).await.unwrap_err();
    assert!(format!("{err:#}").contains("not valid TOML"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "[plugins\n");
}

/// A download past the plugin size cap is refused, whether the server says so up front
/// (content-length) or streams without end (chunked); nothing is installed either way.
#[tokio::test]
async fn oversized_downloads_are_refused_and_change_nothing() {
    use sophon::cli::install::{MAX_PLUGIN_BYTES, install};
    let announced = serve_with(|stream| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            MAX_PLUGIN_BYTES + 1
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(b"\0asm")
    });
    // Chunks of 1 MiB with no length: bounded here only so a broken client cannot hang the
    // test (twice the cap).
    let endless = serve_with(|stream| {
        stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..2 * (MAX_PLUGIN_BYTES >> 20) {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            stream.write_all(&chunk)?;
            stream.write_all(b"\r\n")?;
        }
        stream.write_all(b"0\r\n\r\n")
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sophon.toml");
    std::fs::write(&config, "[run]\n").unwrap();
    let pin = "0".repeat(64);
    for url in [announced, endless] {
        let mut request = install_request(&url, &config);
        request.sha256 = Some(&pin);
        let err = install(&request).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("over the {MAX_PLUGIN_BYTES}-byte limit")),
            "{url}: {err:#}"
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "[run]\n");
        assert!(!dir.path().join("plugins").exists());
    }
}
