//! A small OpenAI-protocol server on loopback, scripted per request: normal replies, HTTP
//! errors with `Retry-After`, slow replies, malformed JSON, streamed chunks, broken streams.
//! It records every request body so tests can check what the client sent.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal completion.
    Text {
        text: String,
        reasoning: Option<String>,
        finish: &'static str,
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    /// A completion with tool calls.
    ToolCall { name: String, arguments: String },
    /// An HTTP error, optionally with `Retry-After`.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// A 200 whose body is this text (not necessarily JSON).
    Raw(String),
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
    /// Server-sent events: text pieces (and reasoning pieces first), then the final chunk
    /// unless `truncated`, in which case the connection breaks off mid-stream.
    Stream {
        reasoning: Vec<String>,
        pieces: Vec<String>,
        truncated: bool,
    },
    /// Embeddings, one vector per input (`[index, len(input)]`), sent in reverse order.
    Embeddings,
    /// Embeddings that carry meaning a test can predict: each input's 26 letter counts
    /// (texts with similar letters get similar vectors).
    LetterEmbeddings,
    /// A completion metered as OpenAI meters it: `prompt_tokens` counted from the messages
    /// with `o200k_base` and OpenAI's chat framing (4 per message, 3 to prime the reply), and
    /// a model that talks until `max_tokens` stops it (`completion_tokens` = `max_tokens`, or
    /// `unbounded` without one).
    Metered { unbounded: u32 },
    /// `chat` to chat and completion requests, `embeddings` to embedding requests.
    ByPath {
        chat: Box<Reply>,
        embeddings: Box<Reply>,
    },
}

impl Reply {
    pub fn text(text: &str) -> Reply {
        Reply::Text {
            text: text.into(),
            reasoning: None,
            finish: "stop",
            prompt_tokens: 11,
            completion_tokens: 7,
        }
    }
    pub fn status(code: u16) -> Reply {
        Reply::Status {
            code,
            retry_after: None,
            body: format!("{{\"error\":{{\"message\":\"status {code}\"}}}}"),
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    queue: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
    /// Handlers dropped before they finished (the client went away).
    abandoned: AtomicUsize,
    /// Requests being answered now, and the most there were at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// The running server; stops when dropped.
pub struct OpenAiServer {
    pub addr: SocketAddr,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl OpenAiServer {
    /// Start on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> OpenAiServer {
        let script = Arc::new(Script::default());
        let router = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/completions", post(handle))
            .route("/v1/embeddings", post(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        OpenAiServer { addr, script, task }
    }

    /// The API base for clients: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Answer the next requests with `replies`, in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.queue.lock().unwrap().extend(replies);
    }

    /// Answer with `reply` whenever the queue is empty.
    pub fn always(&self, reply: Reply) {
        *self.script.fallback.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    pub fn abandoned(&self) -> usize {
        self.script.abandoned.load(Ordering::SeqCst)
    }

    /// The most requests this server was answering at one time.
    pub fn most_in_flight(&self) -> usize {
        self.script.most_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for OpenAiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts the handler in flight while it lives, and as abandoned unless it finished.
struct Finish<'a>(&'a Script, bool);

impl<'a> Finish<'a> {
    fn start(script: &'a Script) -> Self {
        let now = script.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        script.most_in_flight.fetch_max(now, Ordering::SeqCst);
        Finish(script, false)
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.1 {
            self.0.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    script.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        body: body.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: Instant::now(),
    });
    let next = script.queue.lock().unwrap().pop_front();
    let reply = next
        .or_else(|| script.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::text("no reply scripted"));
    let reply = match reply {
        Reply::ByPath { embeddings, .. } if uri.path().ends_with("/embeddings") => *embeddings,
        Reply::ByPath { chat, .. } => *chat,
        other => other,
    };
    let mut finish = Finish::start(&script);
    let response = respond(reply, &body).await;
    finish.1 = true;
    response
}

fn respond(
    reply: Reply,
    request: &Value,
) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send + '_>> {
    Box::pin(async move {
        match reply {
            Reply::Text { text, reasoning, finish, prompt_tokens, completion_tokens } => {
                let mut message = json!({ "role": "assistant", "content": text });
                if let Some(reasoning) = reasoning {
                    message["reasoning_content"] = json!(reasoning);
                }
                axum::Json(json!({
                    "id": "chatcmpl-test",
                    "model": request.get("model").cloned().unwrap_or(json!("test-model")),
                    "choices": [{ "index": 0, "message": message, "text": text, "finish_reason": finish }],
                    "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "completion_tokens_details": { "reasoning_tokens": 3 } }
                }))
                .into_response()
            }
            Reply::ToolCall { name, arguments } => axum::Json(json!({
                "model": "test-model",
                "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
                    "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": name, "arguments": arguments } }] } }],
                "usage": { "prompt_tokens": 5, "completion_tokens": 5 }
            }))
            .into_response(),
            Reply::Status { code, retry_after, body } => {
                let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
                if let Some(after) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, after.parse().unwrap());
                }
                response
            }
            Reply::Raw(text) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Reply::Slow(delay, then) => {
                tokio::time::sleep(delay).await;
                respond(*then, request).await
            }
            Reply::Stream { reasoning, pieces, truncated } => {
                let mut events: Vec<Result<Bytes, std::io::Error>> = Vec::new();
                let event = |delta: Value, finish: Value| {
                    Ok(Bytes::from(format!(
                        "data: {}\n\n",
                        json!({ "model": "test-model", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
                    )))
                };
                events.push(event(json!({ "role": "assistant" }), Value::Null));
                for piece in reasoning {
                    events.push(event(json!({ "reasoning_content": piece }), Value::Null));
                }
                for piece in pieces {
                    events.push(event(json!({ "content": piece }), Value::Null));
                }
                if truncated {
                    events.push(Err(std::io::Error::other("connection lost")));
                } else {
                    events.push(event(json!({}), json!("stop")));
                    events.push(Ok(Bytes::from(format!(
                        "data: {}\n\ndata: [DONE]\n\n",
                        json!({ "model": "test-model", "choices": [], "usage": { "prompt_tokens": 9, "completion_tokens": 4 } })
                    ))));
                }
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from_stream(futures_util::stream::iter(events)))
                    .unwrap()
            }
            Reply::Embeddings => {
                let inputs: Vec<String> = request["input"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, s)| json!({ "index": i, "embedding": [i as f32, s.len() as f32] }))
                    .collect();
                axum::Json(json!({ "data": data, "model": "embed-model" })).into_response()
            }
            Reply::ByPath { chat, .. } => respond(*chat, request).await,
            Reply::Metered { unbounded } => {
                let bpe = tiktoken_rs::o200k_base_singleton();
                let messages = request["messages"].as_array().cloned().unwrap_or_default();
                let prompt_tokens: usize = 3 + messages
                    .iter()
                    .map(|m| 4 + bpe.encode_ordinary(m["content"].as_str().unwrap_or_default()).len())
                    .sum::<usize>();
                let completion_tokens = request["max_tokens"].as_u64().map_or(unbounded, |m| m as u32);
                axum::Json(json!({
                    "model": "test-model",
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": "word ".repeat(completion_tokens as usize) },
                                  "finish_reason": "length" }],
                    "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens }
                }))
                .into_response()
            }
            Reply::LetterEmbeddings => {
                let data: Vec<Value> = request["input"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut counts = [0f32; 26];
                        for c in s.as_str().unwrap_or_default().chars() {
                            if c.is_ascii_alphabetic() {
                                counts[(c.to_ascii_lowercase() as u8 - b'a') as usize] += 1.0;
                            }
                        }
                        json!({ "index": i, "embedding": counts.to_vec() })
                    })
                    .collect();
                axum::Json(json!({ "data": data, "model": "embed-model" })).into_response()
            }
        }
    })
}

/// A server answering `reply` to everything, on a runtime of its own (another thread, as a
/// remote server would be), for benchmarks. Keep the runtime alive as long as the server.
pub fn serve_on_own_thread(reply: Reply) -> (tokio::runtime::Runtime, OpenAiServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(OpenAiServer::start());
    server.always(reply);
    (runtime, server)
}

/// An LLM hub whose only provider, `bench`, is `server`, with `run_limits` over all calls.
pub fn loopback_hub(
    server: &OpenAiServer,
    run_limits: sophon::llm::budget::Limits,
) -> Arc<sophon::llm::hub::LlmHub> {
    use sophon::llm::provider::Provider;
    let provider = sophon::llm::openai::OpenAiProvider::new(
        "bench",
        &server.base_url(),
        Some("sk".into()),
        "m",
        &sophon::llm::config::ProviderConfig::default(),
    )
    .unwrap();
    let providers: std::collections::BTreeMap<String, Arc<dyn Provider>> =
        [("bench".to_string(), Arc::new(provider) as Arc<dyn Provider>)].into();
    Arc::new(sophon::llm::hub::LlmHub::new(
        providers,
        "bench".into(),
        run_limits,
    ))
}
