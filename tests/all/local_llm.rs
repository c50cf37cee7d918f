//! The embedded local model for real: llama.cpp's server from PyPI `xllamacpp` with
//! SmolLM2-135M-Instruct, installed by Sophon itself on first use (once per machine).
//! The assertions are about the capability (a reply, schema conformance, prefill, vectors),
//! not the 135M model's knowledge.

use sophon::llm::budget::Limits;
use sophon::llm::config::{LlmConfig, ProviderConfig, ProviderKind};
use sophon::llm::hub::LlmHub;
use sophon::llm::*;
use std::sync::Arc;

fn local_hub() -> Arc<LlmHub> {
    let config = LlmConfig {
        cache: Some(false),
        providers: [(
            "local".to_string(),
            ProviderConfig {
                kind: ProviderKind::Local,
                ..ProviderConfig::default()
            },
        )]
        .into(),
        ..LlmConfig::default()
    };
    Arc::new(LlmHub::from_config(&config, Limits::default(), &|_| None).unwrap())
}

#[tokio::test]
async fn the_local_model_answers_follows_schemas_prefills_and_embeds() {
    let hub = local_hub();
    let llm = hub.scoped("test", Limits::default());

    let mut request = ChatRequest::new(vec![Message::new(
        Role::User,
        "What is the capital of France?",
    )]);
    request.max_tokens = Some(24);
    request.temperature = Some(0.0);
    let reply = llm.chat(request).await.unwrap();
    assert!(!reply.text.trim().is_empty());
    assert!(reply.usage.prompt_tokens > 0 && reply.usage.completion_tokens > 0);
    assert!(reply.usage.completion_tokens <= 24);

    let schema = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"#;
    let mut request =
        ChatRequest::new(vec![Message::new(Role::User, "Describe a person as JSON.")]);
    request.max_tokens = Some(60);
    request.temperature = Some(0.0);
    request.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "person".into(),
        schema: schema.into(),
        strict: true,
    });
    let reply = llm.chat(request).await.unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&reply.text).unwrap_or_else(|e| panic!("{e}: {}", reply.text));
    assert!(
        value["name"].is_string() && value["age"].is_i64(),
        "{value}"
    );
    assert_eq!(value.as_object().unwrap().len(), 2, "{value}");

    let mut request = ChatRequest::new(vec![Message::new(
        Role::User,
        "What is the capital of France?",
    )]);
    request.max_tokens = Some(12);
    request.temperature = Some(0.0);
    request.prefill = Some("The capital of France is".into());
    let reply = llm.chat(request).await.unwrap();
    assert!(!reply.text.trim().is_empty());
    assert!(
        !reply.text.starts_with("The capital"),
        "the prefill is not repeated: {}",
        reply.text
    );

    let vectors = llm
        .embed(
            vec!["gradient boosting".into(), "random forest".into()],
            None,
        )
        .await
        .unwrap()
        .vectors;
    assert_eq!(vectors.len(), 2);
    assert!(vectors[0].len() >= 64 && vectors[0].len() == vectors[1].len());
    assert_ne!(vectors[0], vectors[1]);
    // Three chats and the embedding call.
    assert_eq!(hub.ledger().summary().total.calls, 4);
}
