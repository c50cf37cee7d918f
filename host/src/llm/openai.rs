//! A client for OpenAI's chat-completions protocol, as DeepSeek, OpenAI, vLLM, Ollama and
//! llama.cpp servers speak it: chat (plain or streamed), JSON-schema response formats, tools,
//! reasoning content, assistant prefill (four ways, see [`PrefillMode`]) and embeddings.
//!
//! Failure behaviour: transport errors, timeouts, 429 and 5xx are retried per [`RetryPolicy`];
//! what is left becomes a [`CapabilityError`] naming the provider and the HTTP status. A reply
//! that is not the protocol's JSON, lacks its choices, or a stream that ends before its final
//! chunk, is `malformed-reply` — never a panic. Replies are read with a size cap.

use super::config::{PrefillMode, ProviderConfig};
use super::provider::{Delta, DeltaSink, Provider};
use super::retry::{RetryPolicy, is_retryable_status};
use super::template::{ChatTemplate, TemplateError};
use super::types::*;
use crate::capability::{CapResult, CapabilityError};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Largest reply body read from a provider.
const MAX_REPLY_BYTES: usize = 32 << 20;

/// Why a provider cannot be built from its configuration (the message names the provider and
/// includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum OpenAiSetupError {
    #[error(
        "provider `{name}` has no model: set `model` under [llm.providers.{name}] (or $OPENAI_MODEL)"
    )]
    NoModel { name: String },
    #[error("provider `{name}`: base-url {base_url:?} is not a URL: {error}")]
    NotAUrl {
        name: String,
        base_url: String,
        error: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error("provider `{name}`: base-url must be http or https, not {scheme}")]
    Scheme { name: String, scheme: String },
    #[error("provider `{name}`: cannot build an HTTP client: {error}")]
    HttpClient { name: String, error: reqwest::Error },
    #[error("provider `{name}`: {error}")]
    Template { name: String, error: TemplateError },
}

/// An OpenAI-compatible endpoint and the model used there.
pub struct OpenAiProvider {
    name: String,
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
    embedding_model: String,
    prefill: PrefillMode,
    template: Option<ChatTemplate>,
    stream: bool,
    retry: RetryPolicy,
    info: ModelInfo,
}

impl OpenAiProvider {
    /// A provider named `name` from its configuration. `env` reads environment variables
    /// (`OPENAI_BASE_URL`, `OPENAI_API_KEY` or the configured key variable).
    pub fn from_config(
        name: &str,
        config: &ProviderConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OpenAiProvider, OpenAiSetupError> {
        let base_url = config
            .base_url
            .clone()
            .or_else(|| env("OPENAI_BASE_URL"))
            .unwrap_or_else(|| "https://api.openai.com/v1".to_string());
        let key_var = config.api_key_env.as_deref().unwrap_or("OPENAI_API_KEY");
        let api_key = env(key_var).filter(|k| !k.is_empty());
        let model = config
            .model
            .clone()
            .or_else(|| env("OPENAI_MODEL"))
            .ok_or_else(|| OpenAiSetupError::NoModel {
                name: name.to_string(),
            })?;
        Self::new(name, &base_url, api_key, &model, config)
    }

    /// A provider at `base_url` serving `model`.
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        config: &ProviderConfig,
    ) -> Result<OpenAiProvider, OpenAiSetupError> {
        let url = reqwest::Url::parse(base_url).map_err(|error| OpenAiSetupError::NotAUrl {
            name: name.to_string(),
            base_url: base_url.to_string(),
            error,
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OpenAiSetupError::Scheme {
                name: name.to_string(),
                scheme: url.scheme().to_string(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(
                config.connect_timeout_secs.unwrap_or(10),
            ))
            .read_timeout(Duration::from_secs(config.read_timeout_secs.unwrap_or(300)))
            .user_agent(concat!("sophon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| OpenAiSetupError::HttpClient {
                name: name.to_string(),
                error,
            })?;
        let prefill = config.prefill.unwrap_or_default();
        let template = match (&config.chat_template, prefill) {
            (Some(spec), _) => {
                Some(
                    ChatTemplate::load(spec).map_err(|error| OpenAiSetupError::Template {
                        name: name.to_string(),
                        error,
                    })?,
                )
            }
            (None, PrefillMode::Completions) => Some(ChatTemplate::ChatMl),
            (None, _) => None,
        };
        let retry = RetryPolicy {
            max_retries: config
                .max_retries
                .unwrap_or(RetryPolicy::default().max_retries),
            base: config
                .retry_base_ms
                .map(Duration::from_millis)
                .unwrap_or(RetryPolicy::default().base),
        };
        Ok(OpenAiProvider {
            name: name.to_string(),
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model: model.to_string(),
            embedding_model: config
                .embedding_model
                .clone()
                .unwrap_or_else(|| model.to_string()),
            prefill,
            template,
            stream: config.stream.unwrap_or(false),
            retry,
            info: ModelInfo {
                alias: name.to_string(),
                name: model.to_string(),
                context_window: config.context_window.unwrap_or(8192),
                supports_prefill: prefill != PrefillMode::Unsupported,
                supports_json_schema: config.supports_json_schema.unwrap_or(true),
                supports_tools: config.supports_tools.unwrap_or(true),
                reasoning: config.reasoning.unwrap_or(false),
            },
        })
    }

    /// POST `body` to `path`, retrying per the policy; returns the successful response.
    async fn post(&self, path: &str, body: &Value) -> CapResult<reqwest::Response> {
        let url = format!("{}/{path}", self.base_url);
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(&url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let detail = snippet(&read_capped(response, 4096).await.unwrap_or_default());
                    if is_retryable_status(status) && attempt < self.retry.max_retries {
                        Some((format!("HTTP {status}: {detail}"), retry_after))
                    } else {
                        return Err(self.status_error(status, &detail, attempt));
                    }
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                    if attempt < self.retry.max_retries {
                        Some((e.to_string(), None))
                    } else {
                        return Err(self.transport_error(&e, attempt));
                    }
                }
                Err(e) => return Err(self.transport_error(&e, attempt)),
            };
            let (why, retry_after) = failure.expect("set above");
            let delay = self.retry.delay(attempt, retry_after.as_deref());
            tracing::warn!(provider = %self.name, attempt = attempt + 1, "retrying in {delay:?}: {why}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn status_error(&self, status: u16, detail: &str, retries: u32) -> CapabilityError {
        let name = &self.name;
        let after = if retries > 0 {
            format!(" after {retries} retries")
        } else {
            String::new()
        };
        match status {
            429 => CapabilityError::RateLimited(format!(
                "provider `{name}` answered 429 Too Many Requests{after}: {detail}"
            )),
            400 | 413 | 422 => CapabilityError::InvalidArgument(format!(
                "provider `{name}` rejected the request (HTTP {status}): {detail}"
            )),
            401 | 403 => CapabilityError::Upstream(format!(
                "provider `{name}` refused the credentials (HTTP {status}): check its API key variable (api-key-env) — {detail}"
            )),
            _ => CapabilityError::Upstream(format!(
                "provider `{name}` answered HTTP {status}{after}: {detail}"
            )),
        }
    }

    fn transport_error(&self, e: &reqwest::Error, retries: u32) -> CapabilityError {
        let after = if retries > 0 {
            format!(" after {retries} retries")
        } else {
            String::new()
        };
        if e.is_timeout() {
            CapabilityError::Timeout(format!(
                "provider `{}` did not answer in time{after}: {e}",
                self.name
            ))
        } else {
            CapabilityError::Unavailable(format!(
                "cannot reach provider `{}` at {}{after}: {e}",
                self.name, self.base_url
            ))
        }
    }

    fn malformed(&self, what: impl std::fmt::Display) -> CapabilityError {
        CapabilityError::MalformedReply(format!("provider `{}`: {what}", self.name))
    }

    /// The endpoint and body for `request`: `completions` with a rendered prompt for a
    /// completions prefill, else `chat/completions`. Invalid JSON in a schema or a tool's
    /// parameters, or a prefill this provider cannot do, is `invalid-argument`.
    fn chat_body(&self, request: &ChatRequest, stream: bool) -> CapResult<(&'static str, Value)> {
        let mut body = json!({ "model": self.model });
        let map = body.as_object_mut().expect("object");
        insert_sampling(map, request);
        if stream {
            map.insert("stream".into(), json!(true));
            map.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        if let Some(prefill) = &request.prefill
            && self.prefill == PrefillMode::Completions
        {
            let template = self
                .template
                .as_ref()
                .expect("completions prefill has a template");
            map.insert(
                "prompt".into(),
                json!(template.render(&request.messages, prefill)?),
            );
            return Ok(("completions", body));
        }
        if let Some(format) = response_format_json(&request.response_format)? {
            map.insert("response_format".into(), format);
        }
        if !request.tools.is_empty() {
            map.insert("tools".into(), tools_json(&request.tools)?);
        }
        if let Some(choice) = &request.tool_choice {
            map.insert("tool_choice".into(), tool_choice_json(choice));
        }
        let mut messages: Vec<Value> = request.messages.iter().map(message_json).collect();
        if let Some(prefill) = &request.prefill {
            self.add_prefill(map, &mut messages, prefill)?;
        }
        map.insert("messages".into(), Value::Array(messages));
        Ok(("chat/completions", body))
    }

    /// End `messages` with the assistant's `prefill`, the way this provider continues one
    /// (for vLLM, with the flags in `map` that make it continue). Not for completions prefill.
    fn add_prefill(
        &self,
        map: &mut serde_json::Map<String, Value>,
        messages: &mut Vec<Value>,
        prefill: &str,
    ) -> CapResult<()> {
        match self.prefill {
            PrefillMode::AssistantMessage => {
                messages.push(json!({ "role": "assistant", "content": prefill }))
            }
            PrefillMode::DeepseekPrefix => {
                messages.push(json!({ "role": "assistant", "content": prefill, "prefix": true }))
            }
            PrefillMode::VllmContinue => {
                messages.push(json!({ "role": "assistant", "content": prefill }));
                map.insert("continue_final_message".into(), json!(true));
                map.insert("add_generation_prompt".into(), json!(false));
            }
            PrefillMode::Unsupported => {
                return Err(CapabilityError::InvalidArgument(format!(
                    "provider `{}` cannot prefill an assistant message (models() says supports-prefill = false)",
                    self.name
                )));
            }
            PrefillMode::Completions => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Parse a non-streamed reply.
    fn parse_reply(&self, bytes: &[u8], endpoint: &str) -> CapResult<Completion> {
        let reply: Value = serde_json::from_slice(bytes).map_err(|e| {
            self.malformed(format_args!("reply is not JSON ({e}): {}", snippet(bytes)))
        })?;
        let choice = reply.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
            self.malformed(format_args!("reply has no choices: {}", snippet(bytes)))
        })?;
        let mut out = Accumulated::default();
        if endpoint == "completions" {
            out.text = string_at(choice, "text");
        } else {
            let message = choice.get("message").ok_or_else(|| {
                self.malformed(format_args!("choice has no message: {}", snippet(bytes)))
            })?;
            out.text = string_at(message, "content");
            out.reasoning = reasoning_of(message);
            for call in message
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.tool_calls.push(ToolCall {
                    id: string_at(call, "id"),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: call
                        .pointer("/function/arguments")
                        .map(arguments_text)
                        .unwrap_or_default(),
                });
            }
        }
        out.finish = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.model = reply
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.usage = reply.get("usage").cloned();
        Ok(self.complete(out))
    }

    /// Read a server-sent-event stream to its end, passing text to `on_delta`.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion> {
        let mut out = Accumulated::default();
        let mut body = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut done = false;
        while !done {
            let Some(chunk) = body.next().await else {
                break;
            };
            let chunk =
                chunk.map_err(|e| self.malformed(format_args!("the stream broke off: {e}")))?;
            total += chunk.len();
            if total > MAX_REPLY_BYTES {
                return Err(
                    self.malformed(format_args!("the stream exceeded {MAX_REPLY_BYTES} bytes"))
                );
            }
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim_start();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let event: Value = serde_json::from_str(data).map_err(|e| {
                    self.malformed(format_args!(
                        "a stream event is not JSON ({e}): {}",
                        snippet(data.as_bytes())
                    ))
                })?;
                self.apply_event(&event, &mut out, on_delta);
            }
        }
        if out.finish.is_none() {
            return Err(
                self.malformed("the stream ended before the reply was complete (no finish reason)")
            );
        }
        Ok(self.complete(out))
    }

    fn apply_event(&self, event: &Value, out: &mut Accumulated, on_delta: Option<DeltaSink<'_>>) {
        if let Some(usage) = event.get("usage").filter(|u| !u.is_null()) {
            out.usage = Some(usage.clone());
        }
        if let Some(model) = event.get("model").and_then(Value::as_str) {
            out.model = Some(model.to_string());
        }
        let Some(choice) = event.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        if let Some(finish) = choice.get("finish_reason").and_then(Value::as_str) {
            out.finish = Some(finish.to_string());
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out.text.push_str(text);
            if let Some(sink) = on_delta {
                sink(Delta::Text(text));
            }
        }
        let Some(delta) = choice.get("delta") else {
            return;
        };
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            out.text.push_str(text);
            if let Some(sink) = on_delta {
                sink(Delta::Text(text));
            }
        }
        if let Some(reasoning) = reasoning_of(delta) {
            out.reasoning
                .get_or_insert_with(String::new)
                .push_str(&reasoning);
            if let Some(sink) = on_delta {
                sink(Delta::Reasoning(&reasoning));
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            while out.tool_calls.len() <= index {
                out.tool_calls.push(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            }
            let slot = &mut out.tool_calls[index];
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                slot.id = id.to_string();
            }
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                slot.name.push_str(name);
            }
            if let Some(arguments) = call.pointer("/function/arguments").and_then(Value::as_str) {
                slot.arguments.push_str(arguments);
            }
        }
    }

    fn complete(&self, out: Accumulated) -> Completion {
        let usage = out.usage.unwrap_or(Value::Null);
        let count =
            |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0) as u32;
        Completion {
            text: out.text,
            reasoning: out.reasoning,
            tool_calls: out.tool_calls,
            finish: match out.finish.as_deref() {
                Some("stop") | Some("eos") => FinishReason::Stop,
                Some("length") => FinishReason::Length,
                Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
                Some("content_filter") => FinishReason::ContentFilter,
                _ => FinishReason::Other,
            },
            usage: Usage {
                model: out.model.unwrap_or_else(|| self.model.clone()),
                prompt_tokens: count("/prompt_tokens"),
                completion_tokens: count("/completion_tokens"),
                reasoning_tokens: count("/completion_tokens_details/reasoning_tokens"),
                ..Usage::default()
            },
        }
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    fn model_info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn cache_identity(&self) -> String {
        format!("{}#{}", self.base_url, self.model)
    }

    fn embedding_identity(&self) -> String {
        format!("{}#{}", self.base_url, self.embedding_model)
    }

    fn embedding_model(&self) -> String {
        self.embedding_model.clone()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion> {
        let started = Instant::now();
        let (endpoint, body) = self.chat_body(request, self.stream)?;
        let response = self.post(endpoint, &body).await?;
        let mut completion = if self.stream {
            let mut completion = self.read_stream(response, on_delta).await?;
            strip_prefill(&mut completion, request);
            completion
        } else {
            let bytes = read_capped(response, MAX_REPLY_BYTES)
                .await
                .map_err(|e| self.malformed(format_args!("the reply broke off: {e}")))?;
            let mut completion = self.parse_reply(&bytes, endpoint)?;
            strip_prefill(&mut completion, request);
            if let Some(sink) = on_delta {
                sink(Delta::Text(&completion.text));
            }
            completion
        };
        completion.usage.latency_ms =
            started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        Ok(completion)
    }

    async fn embed(&self, inputs: &[String]) -> CapResult<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({ "model": self.embedding_model, "input": inputs });
        let response = self.post("embeddings", &body).await?;
        let bytes = read_capped(response, MAX_REPLY_BYTES)
            .await
            .map_err(|e| self.malformed(format_args!("the reply broke off: {e}")))?;
        let reply: Value = serde_json::from_slice(&bytes).map_err(|e| {
            self.malformed(format_args!("reply is not JSON ({e}): {}", snippet(&bytes)))
        })?;
        let data = reply.get("data").and_then(Value::as_array).ok_or_else(|| {
            self.malformed(format_args!(
                "embedding reply has no data: {}",
                snippet(&bytes)
            ))
        })?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        for (position, item) in data.iter().enumerate() {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .map_or(position, |i| i as usize);
            let vector = item
                .get("embedding")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect::<Vec<f32>>()
                })
                .ok_or_else(|| self.malformed("an embedding is not a list of numbers"))?;
            match vectors.get_mut(index) {
                Some(slot) => *slot = Some(vector),
                None => {
                    return Err(
                        self.malformed(format_args!("embedding index {index} is out of range"))
                    );
                }
            }
        }
        vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                self.malformed(format_args!(
                    "expected {} embeddings, got {}",
                    inputs.len(),
                    data.len()
                ))
            })
    }
}

/// Servers that continue a prefilled assistant message may return the prefill with the reply;
/// the completion holds only what the model added.
fn strip_prefill(completion: &mut Completion, request: &ChatRequest) {
    if let Some(prefill) = &request.prefill
        && let Some(rest) = completion.text.strip_prefix(prefill.as_str())
    {
        completion.text = rest.to_string();
    }
}

/// What a reply is made of, before it becomes a [`Completion`].
#[derive(Default)]
struct Accumulated {
    text: String,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCall>,
    finish: Option<String>,
    model: Option<String>,
    usage: Option<Value>,
}

fn message_json(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut value = json!({ "role": role, "content": m.content });
    if !m.tool_calls.is_empty() {
        value["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        value["tool_call_id"] = json!(id);
    }
    value
}

fn string_at(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// DeepSeek and llama.cpp say `reasoning_content`; vLLM and OpenRouter say `reasoning`.
fn reasoning_of(value: &Value) -> Option<String> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| value.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The sampling settings `request` sets (temperature, top-p, max tokens, stop, seed) into a
/// request body.
fn insert_sampling(map: &mut serde_json::Map<String, Value>, request: &ChatRequest) {
    if let Some(t) = request.temperature {
        map.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        map.insert("top_p".into(), json!(p));
    }
    if let Some(n) = request.max_tokens {
        map.insert("max_tokens".into(), json!(n));
    }
    if !request.stop.is_empty() {
        map.insert("stop".into(), json!(request.stop));
    }
    if let Some(seed) = request.seed {
        map.insert("seed".into(), json!(seed));
    }
}

/// The body's `response_format`; `None` for plain text. A schema that is not JSON is
/// `invalid-argument`.
fn response_format_json(format: &ResponseFormat) -> CapResult<Option<Value>> {
    Ok(match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(json!({ "type": "json_object" })),
        ResponseFormat::JsonSchema(schema) => {
            let parsed: Value = serde_json::from_str(&schema.schema).map_err(|e| {
                CapabilityError::InvalidArgument(format!(
                    "json-schema `{}` is not valid JSON: {e}",
                    schema.name
                ))
            })?;
            Some(json!({ "type": "json_schema", "json_schema": {
                "name": schema.name, "schema": parsed, "strict": schema.strict
            }}))
        }
    })
}

/// The body's `tools`; parameters that are not JSON are `invalid-argument`.
fn tools_json(tools: &[ToolDef]) -> CapResult<Value> {
    let tools: CapResult<Vec<Value>> = tools
        .iter()
        .map(|tool| {
            let parameters: Value = serde_json::from_str(&tool.parameters).map_err(|e| {
                CapabilityError::InvalidArgument(format!(
                    "parameters of tool `{}` are not valid JSON: {e}",
                    tool.name
                ))
            })?;
            Ok(json!({ "type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": parameters
            }}))
        })
        .collect();
    Ok(Value::Array(tools?))
}

/// The body's `tool_choice`.
fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Named(name) => json!({ "type": "function", "function": { "name": name } }),
    }
}

/// Tool arguments arrive as a JSON string (OpenAI) or an object (some servers).
fn arguments_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a reply body could not be read whole.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Body(reqwest::Error),
    #[error("the reply is over {cap} bytes")]
    TooLarge { cap: usize },
}

/// Read a response body, refusing more than `cap` bytes.
async fn read_capped(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(ReadError::Body)?;
        if out.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge { cap });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The start of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
    let text = text.trim();
    if bytes.len() > 300 {
        format!("{text}…")
    } else {
        text.to_string()
    }
}
