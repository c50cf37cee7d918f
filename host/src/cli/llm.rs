//! `sophon llm …`: talk to the configured models, or run the embedded one.

use super::out;
use crate::config::SophonConfig;
use crate::llm::config::{LlmConfig, ProviderConfig, ProviderKind};
use crate::llm::hub::{LOCAL, LlmHub};
use crate::llm::local::{LocalProvider, PythonEnv};
use crate::llm::provider::Delta;
use crate::llm::{ChatRequest, Completion, JsonSchema, Message, ResponseFormat, Role};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// `sophon llm chat`'s arguments.
#[derive(clap::Args)]
pub struct ChatArgs {
    /// The prompt.
    prompt: String,
    /// A provider from [llm.providers] in sophon.toml; `openai` works without configuration
    /// through $OPENAI_BASE_URL, $OPENAI_API_KEY and $OPENAI_MODEL (or --model); `local` is the
    /// embedded model. Default: [llm] default, else `local`.
    #[arg(long)]
    provider: Option<String>,
    /// The provider's model name, overriding its configuration.
    #[arg(long)]
    model: Option<String>,
    /// A system message.
    #[arg(long)]
    system: Option<String>,
    #[arg(long)]
    max_tokens: Option<u32>,
    #[arg(long)]
    temperature: Option<f32>,
    /// Constrain the reply to the JSON Schema in this file.
    #[arg(long)]
    json_schema: Option<PathBuf>,
    /// Continue this partial assistant message.
    #[arg(long)]
    prefill: Option<String>,
    /// Also print the usage (model, tokens, latency, cost, cache hit) to stderr.
    #[arg(long)]
    verbose: bool,
}

#[derive(Subcommand)]
pub enum LlmCommand {
    /// Ask a model and print its reply.
    Chat(ChatArgs),
    /// Run the embedded local model server in the foreground until Ctrl-C.
    Serve {
        /// The local provider to serve (default `local`).
        #[arg(long)]
        provider: Option<String>,
    },
}

pub async fn run(command: LlmCommand, config: &SophonConfig) -> anyhow::Result<()> {
    match command {
        LlmCommand::Chat(args) => chat(args, config).await,
        LlmCommand::Serve { provider } => serve(config, provider).await,
    }
}

/// `sophon llm chat`: send the prompt, stream the reply to stdout, with `--verbose` the usage
/// to stderr.
async fn chat(args: ChatArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let llm = chat_config(&config.llm, args.provider.as_deref(), args.model.as_deref())?;
    let hub = LlmHub::from_config(&llm, crate::llm::budget::Limits::of_run(&llm), &|k| {
        std::env::var(k).ok()
    })
    .map_err(anyhow::Error::msg)?;
    let verbose = args.verbose;
    let request = chat_request(args)?;
    let completion = print_reply(&hub, request).await?;
    if verbose {
        print_usage(&completion);
    }
    Ok(())
}

/// The LLM configuration for one chat ([`with_provider`]); an error naming the configured
/// providers when `provider` is none of them.
fn chat_config(
    config: &LlmConfig,
    provider: Option<&str>,
    model: Option<&str>,
) -> anyhow::Result<LlmConfig> {
    let llm = with_provider(config, provider, model);
    if let Some(name) = provider
        && !llm.providers.contains_key(name)
    {
        bail!(
            "no provider `{name}`: use `openai`, `local`, or one configured under [llm.providers] ({})",
            llm.providers.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(llm)
}

/// The request `args` describe: an optional system message, the prompt, and (from
/// `--json-schema`, an error if unreadable) the reply's schema.
fn chat_request(args: ChatArgs) -> anyhow::Result<ChatRequest> {
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(Role::User, args.prompt));
    let mut request = ChatRequest::new(messages);
    request.model = args.provider;
    request.max_tokens = args.max_tokens;
    request.temperature = args.temperature;
    request.prefill = args.prefill;
    if let Some(path) = args.json_schema {
        let schema = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        request.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "reply".into(),
            schema,
            strict: true,
        });
    }
    Ok(request)
}

/// Send `request` and print the reply as it streams (all at once if the provider does not
/// stream), then a newline. The reply is the model's text: on a terminal its control characters
/// are escaped (newlines and tabs kept); piped, it is passed on byte for byte.
async fn print_reply(hub: &LlmHub, request: ChatRequest) -> anyhow::Result<Completion> {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let shown = |text: &str| match tty {
        true => crate::term::stream(text).into_owned(),
        false => text.to_string(),
    };
    let streamed = std::sync::atomic::AtomicBool::new(false);
    let print = |delta: Delta<'_>| {
        if let Delta::Text(text) = delta {
            streamed.store(true, std::sync::atomic::Ordering::Relaxed);
            print!("{}", shown(text));
            let _ = std::io::stdout().flush();
        }
    };
    let completion = hub.chat("cli", None, request, Some(&print)).await?;
    if !streamed.load(std::sync::atomic::Ordering::Relaxed) {
        print!("{}", shown(&completion.text));
    }
    out!();
    Ok(completion)
}

/// The reasoning (if any) and one usage line, to stderr.
fn print_usage(completion: &Completion) {
    let u = &completion.usage;
    if let Some(reasoning) = &completion.reasoning {
        eprintln!("reasoning: {}", crate::term::block(reasoning));
    }
    eprintln!(
        "model {} | prompt {} + completion {} tokens ({} reasoning) | {} ms | ${:.6} | cache hit: {} | finish: {:?}",
        crate::term::line(&u.model),
        u.prompt_tokens,
        u.completion_tokens,
        u.reasoning_tokens,
        u.latency_ms,
        u.cost_usd,
        u.cache_hit,
        completion.finish
    );
}

/// `sophon llm serve`: start the embedded model server and keep it until Ctrl-C.
async fn serve(config: &SophonConfig, provider: Option<String>) -> anyhow::Result<()> {
    let name = provider.unwrap_or_else(|| LOCAL.to_string());
    let provider_config = local_provider_config(&config.llm, &name)?;
    let local = Arc::new(LocalProvider::new(
        &name,
        &provider_config,
        PythonEnv::default_root(),
    ));
    let (server, _) = local.client().await?;
    out!(
        "serving {} at {} (OpenAI-compatible; Ctrl-C stops it)",
        server.model_name(),
        server.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(local);
    Ok(())
}

/// The configuration of local provider `name`: as configured, or the defaults for an
/// unconfigured `local`; an error for a remote or unknown provider.
fn local_provider_config(config: &LlmConfig, name: &str) -> anyhow::Result<ProviderConfig> {
    Ok(match config.providers.get(name) {
        Some(p) if p.kind == ProviderKind::Local => p.clone(),
        Some(_) => {
            bail!("provider `{name}` is not a local provider; `llm serve` runs the embedded model")
        }
        None if name == LOCAL => ProviderConfig {
            kind: ProviderKind::Local,
            ..ProviderConfig::default()
        },
        None => bail!("no provider `{name}` in [llm.providers]"),
    })
}

/// `config` with `provider` as the default: an unconfigured `openai` or `local` gets its
/// defaults, any other name must be configured (the hub then names the ones that are).
/// `model` overrides the provider's model.
fn with_provider(config: &LlmConfig, provider: Option<&str>, model: Option<&str>) -> LlmConfig {
    let mut config = config.clone();
    let name = provider
        .map(str::to_owned)
        .or_else(|| config.default.clone())
        .unwrap_or_else(|| LOCAL.to_string());
    let builtin_kind = match name.as_str() {
        "openai" => Some(ProviderKind::Openai),
        LOCAL => Some(ProviderKind::Local),
        _ => None,
    };
    if let Some(kind) = builtin_kind {
        config
            .providers
            .entry(name.clone())
            .or_insert_with(|| ProviderConfig {
                kind,
                ..ProviderConfig::default()
            });
    }
    if let (Some(model), Some(entry)) = (model, config.providers.get_mut(&name)) {
        entry.model = Some(model.to_string());
    }
    config.default = Some(name);
    config
}
