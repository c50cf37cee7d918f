//! The LLM capability over real HTTP on loopback, against a scripted OpenAI-protocol server:
//! the client (request shapes, retries, timeouts, streaming, malformed replies, prefill,
//! embeddings, cancellation), the hub (budgets, prices, cache, cassettes, ledger) and the
//! whole path from a sandboxed plugin.

use sophon::capability::CapabilityError;
use sophon::llm::budget::Limits;
use sophon::llm::cache::ReplyCache;
use sophon::llm::cassette::Cassette;
use sophon::llm::config::{CassetteMode, LlmConfig, PrefillMode, Price, ProviderConfig};
use sophon::llm::hub::LlmHub;
use sophon::llm::openai::OpenAiProvider;
use sophon::llm::provider::{Delta, Provider};
use sophon::llm::*;
use sophon::runtime::HostServices;
use sophon_tests::openai_server::{OpenAiServer, Reply};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A provider for `server` with fast retries.
fn provider(server: &OpenAiServer, tweak: impl FnOnce(&mut ProviderConfig)) -> OpenAiProvider {
    let mut config = ProviderConfig {
        model: Some("test-model".into()),
        max_retries: Some(3),
        retry_base_ms: Some(1),
        read_timeout_secs: Some(5),
        ..ProviderConfig::default()
    };
    tweak(&mut config);
    OpenAiProvider::new(
        "fake",
        &server.base_url(),
        Some("sk-test".into()),
        "test-model",
        &config,
    )
    .unwrap()
}

fn ask(prompt: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::new(Role::User, prompt)])
}

#[tokio::test]
async fn a_chat_call_sends_the_protocol_and_maps_the_reply() {
    let server = OpenAiServer::start().await;
    server.push([Reply::Text {
        text: "Paris".into(),
        reasoning: Some("France's capital".into()),
        finish: "stop",
        prompt_tokens: 12,
        completion_tokens: 2,
    }]);
    let mut request = ask("Capital of France?");
    request.max_tokens = Some(16);
    request.temperature = Some(0.0);
    request.seed = Some(7);
    request.stop = vec!["\n".into()];
    request.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "answer".into(),
        schema: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.into(),
        strict: true,
    });
    request.tools = vec![ToolDef {
        name: "lookup".into(),
        description: "d".into(),
        parameters: r#"{"type":"object"}"#.into(),
    }];
    request.tool_choice = Some(ToolChoice::Named("lookup".into()));
    let completion = provider(&server, |_| {})
        .chat(&request, None)
        .await
        .unwrap();
    assert_eq!(completion.text, "Paris");
    assert_eq!(completion.reasoning.as_deref(), Some("France's capital"));
    assert_eq!(completion.finish, FinishReason::Stop);
    assert_eq!(
        (
            completion.usage.prompt_tokens,
            completion.usage.completion_tokens,
            completion.usage.reasoning_tokens
        ),
        (12, 2, 3)
    );
    assert_eq!(completion.usage.model, "test-model");

    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk-test"));
    let body = &sent.body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["max_tokens"], 16);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["stop"][0], "\n");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(body["tools"][0]["function"]["name"], "lookup");
    assert_eq!(body["tool_choice"]["function"]["name"], "lookup");
}

#[tokio::test]
async fn tool_calls_come_back_as_calls() {
    let server = OpenAiServer::start().await;
    server.push([Reply::ToolCall {
        name: "run_code".into(),
        arguments: r#"{"code":"print(1)"}"#.into(),
    }]);
    let completion = provider(&server, |_| {})
        .chat(&ask("go"), None)
        .await
        .unwrap();
    assert_eq!(completion.finish, FinishReason::ToolCalls);
    assert_eq!(completion.tool_calls[0].name, "run_code");
    assert_eq!(completion.tool_calls[0].arguments, r#"{"code":"print(1)"}"#);
}

#[tokio::test]
async fn invalid_schemas_are_refused_before_sending() {
    let server = OpenAiServer::start().await;
    let mut request = ask("x");
    request.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "s".into(),
        schema: "{oops".into(),
        strict: true,
    });
    let err = provider(&server, |_| {})
        .chat(&request, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CapabilityError::InvalidArgument(ref m) if m.contains("json-schema `s`")),
        "{err}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server = OpenAiServer::start().await;
    server.push([
        Reply::Status {
            code: 429,
            retry_after: Some("1".into()),
            body: "slow down".into(),
        },
        Reply::text("ok"),
    ]);
    let completion = provider(&server, |_| {})
        .chat(&ask("x"), None)
        .await
        .unwrap();
    assert_eq!(completion.text, "ok");
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after only {waited:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = OpenAiServer::start().await;
    server.push([
        Reply::status(500),
        Reply::status(503),
        Reply::text("third time"),
    ]);
    assert_eq!(
        provider(&server, |_| {})
            .chat(&ask("x"), None)
            .await
            .unwrap()
            .text,
        "third time"
    );
    assert_eq!(server.received().len(), 3);

    let server = OpenAiServer::start().await;
    server.always(Reply::status(502));
    let err = provider(&server, |_| {})
        .chat(&ask("x"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CapabilityError::Upstream(ref m) if m.contains("HTTP 502 after 3 retries")),
        "{err}"
    );
    assert_eq!(server.received().len(), 4);

    let server = OpenAiServer::start().await;
    server.always(Reply::status(429));
    let err = provider(&server, |_| {})
        .chat(&ask("x"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CapabilityError::RateLimited(_)), "{err}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = OpenAiServer::start().await;
    server.push([Reply::Status {
        code: 400,
        retry_after: None,
        body: "bad max_tokens".into(),
    }]);
    let err = provider(&server, |_| {})
        .chat(&ask("x"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CapabilityError::InvalidArgument(ref m) if m.contains("bad max_tokens")),
        "{err}"
    );
    server.push([Reply::status(401)]);
    let err = provider(&server, |_| {})
        .chat(&ask("x"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("API key"), "{err}");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn malformed_and_truncated_replies_are_errors_not_crashes() {
    let server = OpenAiServer::start().await;
    server.push([
        Reply::Raw("{\"choices\": [".into()),
        Reply::Raw("{\"id\": \"x\"}".into()),
        Reply::Raw("<html>502 Bad Gateway</html>".into()),
    ]);
    let client = provider(&server, |_| {});
    for expected in ["not JSON", "no choices", "not JSON"] {
        let err = client.chat(&ask("x"), None).await.unwrap_err();
        assert!(
            matches!(err, CapabilityError::MalformedReply(ref m) if m.contains(expected)),
            "{err}"
        );
    }
    assert_eq!(
        server.received().len(),
        3,
        "malformed replies are not retried"
    );

    let streaming = provider(&server, |c| c.stream = Some(true));
    server.push([Reply::Stream {
        reasoning: vec![],
        pieces: vec!["Hel".into(), "lo".into()],
        truncated: true,
    }]);
    let err = streaming.chat(&ask("x"), None).await.unwrap_err();
    assert!(matches!(err, CapabilityError::MalformedReply(_)), "{err}");
}

#[tokio::test]
async fn slow_replies_time_out_and_unreachable_servers_are_unavailable() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Slow(
        Duration::from_secs(10),
        Box::new(Reply::text("late")),
    ));
    let client = provider(&server, |c| {
        c.read_timeout_secs = Some(1);
        c.max_retries = Some(1);
    });
    let err = client.chat(&ask("x"), None).await.unwrap_err();
    assert!(
        matches!(err, CapabilityError::Timeout(ref m) if m.contains("after 1 retries")),
        "{err}"
    );
    assert_eq!(server.received().len(), 2);

    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = ProviderConfig {
        max_retries: Some(2),
        retry_base_ms: Some(1),
        ..ProviderConfig::default()
    };
    let nowhere =
        OpenAiProvider::new("gone", &format!("http://{addr}/v1"), None, "m", &config).unwrap();
    let err = nowhere.chat(&ask("x"), None).await.unwrap_err();
    assert!(
        matches!(err, CapabilityError::Unavailable(ref m) if m.contains("cannot reach provider `gone`")),
        "{err}"
    );
}

#[tokio::test]
async fn streamed_replies_arrive_piece_by_piece() {
    let server = OpenAiServer::start().await;
    server.push([Reply::Stream {
        reasoning: vec!["Think".into(), "ing.".into()],
        pieces: vec!["Hel".into(), "lo".into(), "!".into()],
        truncated: false,
    }]);
    let pieces = Mutex::new(Vec::new());
    let sink = |d: Delta<'_>| pieces.lock().unwrap().push(format!("{d:?}"));
    let client = provider(&server, |c| c.stream = Some(true));
    let completion = client.chat(&ask("x"), Some(&sink)).await.unwrap();
    assert_eq!(completion.text, "Hello!");
    assert_eq!(completion.reasoning.as_deref(), Some("Thinking."));
    assert_eq!(completion.usage.prompt_tokens, 9);
    assert_eq!(completion.finish, FinishReason::Stop);
    assert_eq!(
        *pieces.lock().unwrap(),
        [
            "Reasoning(\"Think\")",
            "Reasoning(\"ing.\")",
            "Text(\"Hel\")",
            "Text(\"lo\")",
            "Text(\"!\")"
        ]
    );
    let body = &server.received()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn prefill_reaches_the_model_the_way_each_provider_needs() {
    let server = OpenAiServer::start().await;
    let mut request = ask("2+2?");
    request.prefill = Some("<think>I know ".into());

    server.push([Reply::text("<think>I know it is 4")]);
    let completion = provider(&server, |_| {})
        .chat(&request, None)
        .await
        .unwrap();
    assert_eq!(completion.text, "it is 4", "the echoed prefill is removed");
    let last = server.received()[0].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (last["role"].as_str(), last["content"].as_str()),
        (Some("assistant"), Some("<think>I know "))
    );

    server.push([Reply::text("it is 4")]);
    provider(&server, |c| c.prefill = Some(PrefillMode::DeepseekPrefix))
        .chat(&request, None)
        .await
        .unwrap();
    let last = server.received()[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["prefix"], true);

    server.push([Reply::text("it is 4")]);
    provider(&server, |c| c.prefill = Some(PrefillMode::VllmContinue))
        .chat(&request, None)
        .await
        .unwrap();
    let body = &server.received()[2].body;
    assert_eq!(
        (
            body["continue_final_message"].as_bool(),
            body["add_generation_prompt"].as_bool()
        ),
        (Some(true), Some(false))
    );

    server.push([Reply::text("it is 4")]);
    let completion = provider(&server, |c| c.prefill = Some(PrefillMode::Completions))
        .chat(&request, None)
        .await
        .unwrap();
    assert_eq!(completion.text, "it is 4");
    let sent = &server.received()[3];
    assert_eq!(sent.path, "/v1/completions");
    assert_eq!(
        sent.body["prompt"],
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>I know "
    );

    let err = provider(&server, |c| c.prefill = Some(PrefillMode::Unsupported))
        .chat(&request, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CapabilityError::InvalidArgument(_)), "{err}");
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn embeddings_come_back_in_input_order() {
    let server = OpenAiServer::start().await;
    server.push([Reply::Embeddings]);
    let inputs = vec!["a".to_string(), "bbb".into(), "cc".into()];
    let vectors = provider(&server, |_| {}).embed(&inputs).await.unwrap();
    assert_eq!(
        vectors,
        vec![vec![0.0, 1.0], vec![1.0, 3.0], vec![2.0, 2.0]]
    );
    assert_eq!(server.received()[0].path, "/v1/embeddings");
}

#[tokio::test]
async fn dropping_a_call_cancels_the_request() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Slow(
        Duration::from_secs(30),
        Box::new(Reply::text("never")),
    ));
    let client = provider(&server, |_| {});
    assert!(
        tokio::time::timeout(Duration::from_millis(200), client.chat(&ask("x"), None))
            .await
            .is_err()
    );
    for _ in 0..100 {
        if server.abandoned() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server never saw the client go away");
}

#[tokio::test]
async fn openai_environment_variables_configure_an_unconfigured_provider() {
    let server = OpenAiServer::start().await;
    server.push([Reply::text("from env")]);
    let base = server.base_url();
    let env = move |key: &str| match key {
        "OPENAI_BASE_URL" => Some(base.clone()),
        "OPENAI_API_KEY" => Some("sk-env".to_string()),
        "OPENAI_MODEL" => Some("env-model".to_string()),
        _ => None,
    };
    let client = OpenAiProvider::from_config("openai", &ProviderConfig::default(), &env).unwrap();
    assert_eq!(client.chat(&ask("x"), None).await.unwrap().text, "from env");
    let sent = &server.received()[0];
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk-env"));
    assert_eq!(sent.body["model"], "env-model");
    let err = OpenAiProvider::from_config("p", &ProviderConfig::default(), &|_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("has no model"), "{err}");
}

fn hub(server: &OpenAiServer, limits: Limits) -> LlmHub {
    let providers: BTreeMap<String, Arc<dyn Provider>> = [(
        "fake".to_string(),
        Arc::new(provider(server, |_| {})) as Arc<dyn Provider>,
    )]
    .into();
    LlmHub::new(providers, "fake".into(), limits)
}

#[tokio::test]
async fn budgets_refuse_with_a_typed_error_and_costs_come_from_the_price_table() {
    let server = OpenAiServer::start().await;
    server.always(Reply::text("ok"));
    let hub = Arc::new(
        hub(
            &server,
            Limits {
                cost_usd: Some(1.0),
                ..Limits::default()
            },
        )
        .with_prices(
            [(
                "test-model".to_string(),
                Price {
                    input: 1000.0,
                    output: 2000.0,
                },
            )]
            .into(),
        ),
    );
    let plugin = hub.scoped(
        "planner",
        Limits {
            requests: Some(2),
            ..Limits::default()
        },
    );
    let first = plugin.chat(ask("a")).await.unwrap();
    assert!((first.usage.cost_usd - (11.0 * 1000.0 + 7.0 * 2000.0) / 1e6).abs() < 1e-12);
    plugin.chat(ask("b")).await.unwrap();
    let err = plugin.chat(ask("c")).await.unwrap_err();
    assert!(
        matches!(err, CapabilityError::BudgetExhausted(ref m) if m.contains("plugin `planner` has used its 2 LLM requests")),
        "{err}"
    );
    assert_eq!(plugin.budget().requests_used, 2);
    assert_eq!(server.received().len(), 2);

    // The run's own limit applies across plugins: a plugin with no limit of its own is
    // refused once the run's $1 is spent (each call costs $0.025), and the overshoot is at
    // most the one call in flight when the limit was reached.
    let per_call = first.usage.cost_usd;
    let other = hub.scoped("reviewer", Limits::default());
    let mut refused = None;
    for call in 0..100 {
        if let Err(e) = other.chat(ask("d")).await {
            refused = Some((call, e));
            break;
        }
    }
    let (answered, err) = refused.expect("the run's cost limit refused a call");
    assert!(
        matches!(err, CapabilityError::BudgetExhausted(ref m) if m.contains("the run")),
        "{err}"
    );
    let used = hub.run_budget().cost_used_usd;
    assert!(
        (1.0 - per_call..=1.0 + per_call).contains(&used),
        "spent ${used} against a $1 limit ({answered} calls answered after the planner's 2)"
    );
    assert_eq!(
        server.received().len(),
        2 + answered,
        "a refused call reaches no provider"
    );
    let summary = hub.ledger().summary();
    assert_eq!(summary.by_plugin["planner"].calls, 2);
    assert_eq!(summary.by_plugin["reviewer"].calls as usize, answered);
    assert!((summary.total.cost_usd - used).abs() < 1e-9);
    // Every later call is refused too.
    assert!(other.chat(ask("e")).await.is_err());
}

#[tokio::test]
async fn deterministic_requests_are_answered_from_the_cache() {
    let server = OpenAiServer::start().await;
    server.always(Reply::text("cached answer"));
    let dir = tempfile::tempdir().unwrap();
    let hub =
        Arc::new(hub(&server, Limits::default()).with_cache(Some(ReplyCache::new(dir.path()))));
    let plugin = hub.scoped("p", Limits::default());
    let mut request = ask("deterministic");
    request.temperature = Some(0.0);
    let first = plugin.chat(request.clone()).await.unwrap();
    let second = plugin.chat(request.clone()).await.unwrap();
    assert!(!first.usage.cache_hit && second.usage.cache_hit);
    assert_eq!(second.text, "cached answer");
    assert_eq!(server.received().len(), 1);

    let mut sampled = ask("sampled");
    sampled.temperature = Some(0.8);
    plugin.chat(sampled.clone()).await.unwrap();
    plugin.chat(sampled.clone()).await.unwrap();
    assert_eq!(
        server.received().len(),
        3,
        "sampled requests are not cached by default"
    );
    sampled.cache = CachePolicy::Prefer;
    plugin.chat(sampled.clone()).await.unwrap();
    plugin.chat(sampled).await.unwrap();
    assert_eq!(
        server.received().len(),
        4,
        "unless the plugin prefers the cache"
    );
    assert_eq!(hub.ledger().summary().total.cache_hits, 2);
}

#[tokio::test]
async fn cassettes_record_then_replay_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.jsonl");
    let server = OpenAiServer::start().await;
    server.push([Reply::text("one"), Reply::text("two"), Reply::Embeddings]);
    let recorder = Arc::new(
        hub(&server, Limits::default())
            .with_cassette(Some(Cassette::open(&path, CassetteMode::Record).unwrap())),
    );
    let plugin = recorder.scoped("p", Limits::default());
    assert_eq!(plugin.chat(ask("q")).await.unwrap().text, "one");
    assert_eq!(plugin.chat(ask("q")).await.unwrap().text, "two");
    let vectors = plugin.embed(vec!["x".into()], None).await.unwrap().vectors;
    drop(server);

    // The server is gone; the cassette answers the same calls, in order.
    let config = LlmConfig {
        cassette: Some(path.clone()),
        cassette_mode: Some(CassetteMode::Replay),
        cache: Some(false),
        providers: [(
            "fake".to_string(),
            ProviderConfig {
                base_url: Some("http://127.0.0.1:9/v1".into()),
                model: Some("test-model".into()),
                ..ProviderConfig::default()
            },
        )]
        .into(),
        ..LlmConfig::default()
    };
    let player = Arc::new(LlmHub::from_config(&config, Limits::default(), &|_| None).unwrap());
    let plugin = player.scoped("p", Limits::default());
    let replayed = plugin.chat(ask("q")).await.unwrap();
    assert_eq!(replayed.text, "one");
    assert!(replayed.usage.cache_hit);
    assert_eq!(plugin.chat(ask("q")).await.unwrap().text, "two");
    assert_eq!(
        plugin.embed(vec!["x".into()], None).await.unwrap().vectors,
        vectors
    );
    let err = plugin.chat(ask("never recorded")).await.unwrap_err();
    assert!(
        matches!(err, CapabilityError::Unavailable(ref m) if m.contains("cassette")),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_aliases_name_the_available_ones() {
    let server = OpenAiServer::start().await;
    let hub = Arc::new(hub(&server, Limits::default()));
    let mut request = ask("x");
    request.model = Some("gpt-9".into());
    let err = hub
        .scoped("p", Limits::default())
        .chat(request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CapabilityError::NotFound(ref m) if m.contains("`gpt-9`") && m.contains("fake")),
        "{err}"
    );
}

/// A plugin cancels a call in flight: the HTTP request is abandoned and the plugin gets
/// `cancelled`.
#[tokio::test]
async fn a_plugin_can_cancel_a_call_in_flight() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Slow(
        Duration::from_secs(30),
        Box::new(Reply::text("too late")),
    ));
    let hub = Arc::new(hub(&server, Limits::default()));
    let runtime = sophon_tests::test_runtime();
    let grants = "[grants]\nllm = { max-concurrent = 8 }\njobs = {}\nhcc = { scopes = ['experience:write', 'knowledge:read', 'wisdom:read'] }\ntask = {}\nartifacts = {}";
    let plugin = sophon_tests::load(&runtime, "worker", grants);
    let services = HostServices {
        llm: Some(hub.scoped("worker", Limits::default())),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance
        .run("cancel-chat", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        outcome.summary.starts_with("cancelled:"),
        "{}",
        outcome.summary
    );
    assert_eq!(
        server.received().len(),
        1,
        "the call had reached the provider"
    );
    for _ in 0..100 {
        if server.abandoned() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the provider request was not abandoned");
}

/// From inside a sandboxed plugin: concurrent calls, budgets and typed errors.
#[tokio::test]
async fn a_plugin_reaches_the_provider_and_meets_its_budget() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Slow(
        Duration::from_millis(200),
        Box::new(Reply::text("pong")),
    ));
    let hub = Arc::new(hub(&server, Limits::default()));
    let runtime = sophon_tests::test_runtime();
    let grants = "[grants]\nllm = { max-concurrent = 8 }\njobs = {}\nhcc = { scopes = ['experience:write', 'knowledge:read', 'wisdom:read'] }\ntask = {}\nartifacts = {}";
    let plugin = sophon_tests::load(&runtime, "worker", grants);
    let services = |requests| HostServices {
        llm: Some(hub.scoped(
            "worker",
            Limits {
                requests: Some(requests),
                ..Limits::default()
            },
        )),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services(10)).await.unwrap();
    let outcome = instance
        .run("parallel-chat:3", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(outcome.summary, "pong|pong|pong");
    assert_eq!(
        server.most_in_flight(),
        3,
        "the three calls were at the provider together, not one after another"
    );

    let mut instance = plugin.strategy(services(0)).await.unwrap();
    let err = instance
        .run("chat:hi", Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("budget-exhausted") && err.contains("plugin `worker`"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Budgets against a plugin that races them (the `greedy` fixture).

const GREEDY: &str = r#"
[grants]
llm = { max-concurrent = 16 }
jobs = {}
hcc = { scopes = ["experience:write", "knowledge:read", "wisdom:read"] }
"#;

fn greedy() -> sophon::runtime::LoadedPlugin {
    sophon_tests::load(&sophon_tests::test_runtime(), "greedy", GREEDY)
}

fn tokens(limit: u64) -> Limits {
    Limits {
        tokens: Some(limit),
        ..Limits::default()
    }
}

/// Eight chats started at once against a 100-token budget (the plugin's or the run's), from a
/// model that talks until `max_tokens` stops it: tokens are held at admission, so together
/// they never use more than 100, whether the requests set `max_tokens` or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chats_never_overshoot_a_token_budget() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Slow(
        Duration::from_millis(200),
        Box::new(Reply::Metered { unbounded: 500 }),
    ));
    let plugin = greedy();
    for (holder, max_tokens) in [("plugin", 0), ("plugin", 20), ("run", 0), ("run", 20)] {
        let (run_limits, plugin_limits) = match holder {
            "plugin" => (Limits::default(), tokens(100)),
            _ => (tokens(100), Limits::default()),
        };
        let hub = Arc::new(hub(&server, run_limits));
        let before = server.received().len();
        let services = HostServices {
            llm: Some(hub.scoped("greedy", plugin_limits)),
            ..HostServices::default()
        };
        let mut instance = plugin.strategy(services).await.unwrap();
        let summary = instance
            .run(&format!("chats:8:{max_tokens}"), Duration::from_secs(60))
            .await
            .unwrap()
            .summary;
        let total = hub.ledger().summary().total;
        let used = total.prompt_tokens + total.completion_tokens;
        eprintln!("{holder} budget of 100, max_tokens {max_tokens}: {summary}; {used} tokens used");
        assert!(
            used <= 100,
            "{holder}, max_tokens {max_tokens}: {used} tokens"
        );
        assert!(summary.contains("budget-exhausted=") && !summary.starts_with("ok=0"));
        assert!(summary.ends_with("other=[]"), "{summary}");
        // Every request that went out asked for no more than was left.
        for sent in &server.received()[before..] {
            assert!(
                sent.body["max_tokens"].as_u64().unwrap() <= 100,
                "{}",
                sent.body
            );
        }
    }
}

/// Embeddings are admitted, charged and ledgered like chats: 30 calls under `max-requests = 2`
/// send 2; and chats and embeddings of two plugins racing one run budget send no more than it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_are_admitted_charged_and_ledgered_like_chats() {
    let server = OpenAiServer::start().await;
    server.always(Reply::Embeddings);
    let shared = Arc::new(hub(&server, Limits::default()));
    let llm = shared.scoped(
        "greedy",
        Limits {
            requests: Some(2),
            ..Limits::default()
        },
    );
    let plugin = greedy();
    let services = HostServices {
        llm: Some(llm.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let summary = instance
        .run("embeds:30", Duration::from_secs(60))
        .await
        .unwrap()
        .summary;
    assert!(
        summary.starts_with("ok=2 budget-exhausted=28")
            && summary.contains("plugin `greedy` has used its 2 LLM requests"),
        "{summary}"
    );
    assert_eq!(server.received().len(), 2);
    let calls = shared.ledger().calls();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|c| c.purpose.as_deref() == Some("embedding") && c.prompt_tokens == 4),
        "{calls:?}"
    );
    let budget = llm.budget();
    assert_eq!((budget.requests_used, budget.tokens_used), (2, 8));

    // Two plugins race one run budget of 5 requests: one with chats, one with embeddings.
    let server = OpenAiServer::start().await;
    let slow = |reply| Box::new(Reply::Slow(Duration::from_millis(100), Box::new(reply)));
    server.always(Reply::ByPath {
        chat: slow(Reply::text("fine")),
        embeddings: slow(Reply::Embeddings),
    });
    let hub = Arc::new(hub(
        &server,
        Limits {
            requests: Some(5),
            ..Limits::default()
        },
    ));
    let services = |name: &str| HostServices {
        llm: Some(hub.scoped(name, Limits::default())),
        ..HostServices::default()
    };
    let mut chatter = plugin.strategy(services("chatter")).await.unwrap();
    let mut embedder = plugin.strategy(services("embedder")).await.unwrap();
    let (chats, embeds) = tokio::join!(
        chatter.run("chats:8:10", Duration::from_secs(60)),
        embedder.run("embeds:8", Duration::from_secs(60)),
    );
    let (chats, embeds) = (chats.unwrap().summary, embeds.unwrap().summary);
    eprintln!("chats: {chats}; embeds: {embeds}");
    assert!(chats.ends_with("other=[]") && embeds.contains("other=[]"));
    assert_eq!(server.received().len(), 5);
    assert_eq!(hub.run_budget().requests_used, 5);
}

/// A run killed and resumed replays its recorded LLM answers from the journal; their usage
/// counts against the budgets before the run goes live, so `max-requests = 2` still means 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_counts_its_replayed_calls_against_its_budgets() {
    use sophon::journal::Journal;
    use sophon::run::services::journaled;
    let dir = tempfile::tempdir().unwrap();
    let plugin = greedy();
    let limits = Limits {
        requests: Some(2),
        ..Limits::default()
    };
    for (attack, reply) in [
        ("seq-chats", Reply::text("fine")),
        ("embeds", Reply::Embeddings),
    ] {
        let journal_dir = dir.path().join(attack);
        std::fs::create_dir_all(&journal_dir).unwrap();
        let server = OpenAiServer::start().await;
        server.always(reply);
        // The first process: two calls, journaled; then it dies.
        {
            let hub = Arc::new(hub(&server, Limits::default()));
            let journal = Arc::new(Journal::open(&journal_dir).unwrap());
            let services = journaled(
                HostServices {
                    llm: Some(hub.scoped("greedy", limits)),
                    ..HostServices::default()
                },
                journal,
            );
            let mut instance = plugin.strategy(services).await.unwrap();
            let summary = instance
                .run(&format!("{attack}:2"), Duration::from_secs(30))
                .await
                .unwrap()
                .summary;
            assert!(summary.starts_with("ok=2 budget-exhausted=0"), "{summary}");
        }
        // The resumed process: the two answers replay, and the budget is already spent.
        let hub = Arc::new(hub(&server, Limits::default()));
        let journal = Arc::new(Journal::open(&journal_dir).unwrap());
        let llm = hub.scoped("greedy", limits);
        let services = journaled(
            HostServices {
                llm: Some(llm.clone()),
                ..HostServices::default()
            },
            journal.clone(),
        );
        let mut instance = plugin.strategy(services).await.unwrap();
        let summary = instance
            .run(&format!("{attack}:4"), Duration::from_secs(30))
            .await
            .unwrap()
            .summary;
        assert!(
            summary.starts_with("ok=2 budget-exhausted=2")
                && summary.contains("has used its 2 LLM requests"),
            "{attack}: {summary}"
        );
        assert_eq!(server.received().len(), 2, "{attack}");
        assert_eq!(journal.stats().replayed, 2, "{attack}");
        assert_eq!(llm.budget().requests_used, 2, "{attack}");
        assert_eq!(hub.run_budget().requests_used, 2, "{attack}");
        assert_eq!(hub.ledger().summary().total.replayed, 2, "{attack}");
    }
}
