//! [`LlmHub`]: the run's LLM access — providers by alias, the reply cache, the cassette, the
//! price table, the run's budget and the ledger — and [`PluginLlm`], one plugin's view of it
//! (its own budget on top of the run's), which is what the runtime serves as `sophon:host/llm`.
//!
//! A chat call goes: resolve the alias → cassette replay (replay mode) → cache (if the request
//! is cacheable) → admit against the plugin's and the run's budgets → the provider → price and
//! charge → record in the ledger, the cache and the cassette. Cache hits are free and are not
//! charged; every call, failed or not, is in the ledger.

use super::LanguageModel;
use super::budget::{self, Admission, Ask, Budget, CallRecord, Ledger, Limits, REPLAYED};
use super::cache::{self, ReplyCache};
use super::cassette::{Cassette, CassetteError, Recorded};
use super::config::{CassetteMode, LlmConfig, Price, ProviderKind};
use super::count;
use super::limits;
use super::local::{LocalProvider, PythonEnv};
use super::openai::{OpenAiProvider, OpenAiSetupError};
use super::provider::{DeltaSink, Provider};
use super::types::*;
use crate::capability::work::{Cancel, offload};
use crate::capability::{CapResult, CapabilityError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of the embedded local provider when the configuration names none.
pub const LOCAL: &str = "local";

/// Why the hub cannot be built from `[llm]` (the message includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum LlmSetupError {
    #[error(transparent)]
    Provider(#[from] OpenAiSetupError),
    #[error("[llm] default = {default:?} names no provider; configured: {configured}")]
    UnknownDefault { default: String, configured: String },
    #[error(transparent)]
    Cassette(#[from] CassetteError),
}

pub struct LlmHub {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    default: String,
    prices: BTreeMap<String, Price>,
    cache: Option<ReplyCache>,
    cassette: Option<Cassette>,
    run_budget: Budget,
    ledger: Ledger,
}

/// Where the hub reads its environment (so tests can pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl LlmHub {
    /// A hub for `config` with the run's `limits`. Without providers configured it has one:
    /// the embedded local model (started on first use).
    pub fn from_config(
        config: &LlmConfig,
        limits: Limits,
        env: Env<'_>,
    ) -> Result<LlmHub, LlmSetupError> {
        let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        for (name, provider) in &config.providers {
            let built: Arc<dyn Provider> = match provider.kind {
                ProviderKind::Openai => Arc::new(OpenAiProvider::from_config(name, provider, env)?),
                ProviderKind::Local => Arc::new(LocalProvider::new(
                    name,
                    provider,
                    PythonEnv::default_root(),
                )),
            };
            providers.insert(name.clone(), built);
        }
        if providers.is_empty() {
            providers.insert(
                LOCAL.to_string(),
                Arc::new(LocalProvider::new(
                    LOCAL,
                    &Default::default(),
                    PythonEnv::default_root(),
                )),
            );
        }
        let default = config.default.clone().unwrap_or_else(|| {
            if providers.contains_key(LOCAL) {
                LOCAL.to_string()
            } else {
                providers.keys().next().cloned().unwrap_or_default()
            }
        });
        if !providers.contains_key(&default) {
            return Err(LlmSetupError::UnknownDefault {
                configured: providers.keys().cloned().collect::<Vec<_>>().join(", "),
                default,
            });
        }
        let cache = match config.cache {
            Some(false) => None,
            _ => config
                .cache_dir
                .clone()
                .or_else(ReplyCache::default_dir)
                .map(|d| ReplyCache::new(&d)),
        };
        let cassette = match &config.cassette {
            Some(path) => Some(Cassette::open(
                path,
                config.cassette_mode.unwrap_or_default(),
            )?),
            None => None,
        };
        Ok(LlmHub::new(providers, default, limits)
            .with_prices(config.prices.clone())
            .with_cache(cache)
            .with_cassette(cassette))
    }

    /// A hub over `providers` (by alias), answering unnamed requests with `default`.
    pub fn new(
        providers: BTreeMap<String, Arc<dyn Provider>>,
        default: String,
        limits: Limits,
    ) -> LlmHub {
        LlmHub {
            providers,
            default,
            prices: BTreeMap::new(),
            cache: None,
            cassette: None,
            run_budget: Budget::new("the run", limits),
            ledger: Ledger::default(),
        }
    }

    pub fn with_prices(mut self, prices: BTreeMap<String, Price>) -> LlmHub {
        self.prices = prices;
        self
    }

    pub fn with_cache(mut self, cache: Option<ReplyCache>) -> LlmHub {
        self.cache = cache;
        self
    }

    pub fn with_cassette(mut self, cassette: Option<Cassette>) -> LlmHub {
        self.cassette = cassette;
        self
    }

    /// One plugin's view, with its own `limits` (from its grants) on top of the run's.
    pub fn scoped(self: &Arc<Self>, plugin: &str, limits: Limits) -> Arc<PluginLlm> {
        Arc::new(PluginLlm {
            hub: self.clone(),
            plugin: plugin.to_string(),
            budget: Budget::new(format!("plugin `{plugin}`"), limits),
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn run_budget(&self) -> LlmBudget {
        self.run_budget.snapshot()
    }

    /// The provider for `alias` (the default when `None`).
    pub fn provider(&self, alias: Option<&str>) -> CapResult<(&str, &Arc<dyn Provider>)> {
        let alias = alias.unwrap_or(&self.default);
        self.providers
            .get_key_value(alias)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                CapabilityError::NotFound(format!(
                    "no model alias `{alias}`; available: {}",
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Facts about every model, the default first.
    pub fn models(&self) -> Vec<ModelInfo> {
        let mut models: Vec<ModelInfo> = self.providers.values().map(|p| p.model_info()).collect();
        models.sort_by_key(|m| m.alias != self.default);
        models
    }

    /// The price of `model`, if the price table knows it.
    fn price(&self, model: &str) -> Option<Price> {
        self.prices.get(model).copied()
    }

    /// The budgets a call of `plugin` is charged to, in the order [`budget::admit`] locks them.
    fn budgets<'a>(&'a self, budget: Option<&'a Budget>) -> Vec<&'a Budget> {
        budget.into_iter().chain([&self.run_budget]).collect()
    }

    /// One chat call on behalf of `plugin` (charged to `budget` as well as the run's).
    ///
    /// The call is admitted against both budgets before it is sent (see [`budget`]): when a
    /// token or cost limit applies, the host counts the prompt (off the executor) and the
    /// request goes out with `max_tokens` cut to what the budgets have left.
    pub async fn chat(
        &self,
        plugin: &str,
        budget: Option<&Budget>,
        request: ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion> {
        let (alias, provider) = self.provider(request.model.as_deref())?;
        let info = provider.model_info();
        let key = cache::chat_key(&provider.cache_identity(), &request);
        let cassette_key = cache::chat_key(&cassette_identity(alias, provider), &request);
        let call = CallLog {
            ledger: &self.ledger,
            plugin,
            purpose: request.purpose.clone(),
            alias,
            model: &info.name,
        };
        if let Some(replayed) = self.replay_chat(&cassette_key, &call) {
            return replayed;
        }
        let cacheable = cache::cacheable(&request);
        if cacheable && let Some(completion) = self.cached_chat(&key) {
            call.record(&completion.usage, None);
            return Ok(completion);
        }
        let budgets = self.budgets(budget);
        for b in &budgets {
            b.check()?;
        }
        let price = self.price(&info.name);
        let (request, admission, capped) =
            admit_chat(&budgets, request, price, info.context_window).await?;
        match provider.chat(&request, on_delta).await {
            Ok(completion) => {
                // A reply cut short by the budget is not what the request asked for.
                let cache_key = (cacheable && !capped).then_some(key.as_str());
                Ok(self.settle_chat(completion, admission, &call, cache_key, &cassette_key))
            }
            Err(e) => {
                admission.settle(None);
                call.record(&Usage::default(), Some(&e));
                Err(e)
            }
        }
    }

    /// In replay mode, the cassette's answer to the chat call under `cassette_key` (free, and
    /// in the ledger); `None` in any other mode.
    fn replay_chat(&self, cassette_key: &str, call: &CallLog<'_>) -> Option<CapResult<Completion>> {
        let cassette = self
            .cassette
            .as_ref()
            .filter(|c| c.mode() == CassetteMode::Replay)?;
        Some(match cassette.replay(cassette_key) {
            Ok(Recorded::Chat(mut completion)) => {
                completion.usage.cache_hit = true;
                completion.usage.cost_usd = 0.0;
                call.record(&completion.usage, None);
                Ok(completion)
            }
            Ok(Recorded::Embeddings(_)) => Err(CapabilityError::Internal(
                "the cassette holds embeddings for a chat key".into(),
            )),
            Err(e) => {
                call.record(&Usage::default(), Some(&e));
                Err(e)
            }
        })
    }

    /// The cached reply under `key`, marked as a free, instant cache hit.
    fn cached_chat(&self, key: &str) -> Option<Completion> {
        let mut completion = self.cache.as_ref().and_then(|c| c.get_chat(key))?;
        completion.usage.cache_hit = true;
        completion.usage.cost_usd = 0.0;
        completion.usage.latency_ms = 0;
        Some(completion)
    }

    /// Price a provider's reply, settle its admission, put it in the ledger, and keep it in
    /// the cache (under `cache_key`, if any) and the cassette (recording).
    fn settle_chat(
        &self,
        mut completion: Completion,
        admission: Admission<'_>,
        call: &CallLog<'_>,
        cache_key: Option<&str>,
        cassette_key: &str,
    ) -> Completion {
        completion.usage.cache_hit = false;
        completion.usage.cost_usd = self
            .prices
            .get(&completion.usage.model)
            .or_else(|| self.prices.get(call.model))
            .map_or(0.0, |p| {
                p.cost(
                    completion.usage.prompt_tokens,
                    completion.usage.completion_tokens,
                )
            });
        admission.settle(Some(&completion.usage));
        call.record(&completion.usage, None);
        if let Some(key) = cache_key
            && let Some(cache) = &self.cache
        {
            cache.put_chat(key, &completion);
        }
        if let Some(cassette) = &self.cassette {
            cassette.record(cassette_key, Recorded::Chat(completion.clone()));
        }
        completion
    }

    /// What identifies the embeddings of provider `alias` (the default when `None`).
    pub fn embedding_identity(&self, alias: Option<&str>) -> CapResult<String> {
        let (alias, provider) = self.provider(alias)?;
        Ok(format!("{alias}#{}", provider.embedding_identity()))
    }

    /// The host's own embeddings (the HCC's retrieval) through provider `alias` (the default
    /// when `None`): ledgered under `hcc` and charged to the run's budget, never refused by it.
    pub async fn embed(
        &self,
        inputs: Vec<String>,
        alias: Option<&str>,
    ) -> CapResult<Vec<Vec<f32>>> {
        Ok(self.embed_as("hcc", None, inputs, alias).await?.vectors)
    }

    /// Embeddings for `plugin` through provider `alias`; deterministic, so cached. With
    /// `budget` (a plugin's call) the call is admitted against it and the run's budget like a
    /// chat; without, it is the host's own and only charged. Its tokens are the host's count
    /// of the inputs; every call is in the ledger (purpose `embedding`).
    pub async fn embed_as(
        &self,
        plugin: &str,
        budget: Option<&Budget>,
        inputs: Vec<String>,
        alias: Option<&str>,
    ) -> CapResult<Embeddings> {
        let (alias, provider) = self.provider(alias)?;
        let model = provider.embedding_model();
        let price = self.price(&model);
        let (inputs, tokens) = count_inputs(inputs).await?;
        let mut usage = Usage {
            model: model.clone(),
            prompt_tokens: tokens.min(u64::from(u32::MAX)) as u32,
            cost_usd: price.map_or(0.0, |p| p.input * tokens as f64 / 1e6),
            ..Usage::default()
        };
        let call = CallLog {
            ledger: &self.ledger,
            plugin,
            purpose: Some(EMBEDDING_PURPOSE.to_string()),
            alias,
            model: &model,
        };
        let key = cache::embed_key(&provider.embedding_identity(), &inputs);
        let cassette_key = cache::embed_key(&cassette_identity(alias, provider), &inputs);
        if let Some(replayed) = self.replay_embeddings(&cassette_key, &call, &usage) {
            return replayed;
        }
        if let Some(vectors) = self.cache.as_ref().and_then(|c| c.get_embeddings(&key)) {
            let usage = free(usage);
            call.record(&usage, None);
            return Ok(Embeddings { vectors, usage });
        }
        let admission = match budget {
            Some(budget) => Some(budget::admit(
                &self.budgets(Some(budget)),
                &Ask {
                    prompt_tokens: tokens,
                    completion_tokens: 0,
                    price,
                },
            )?),
            None => None,
        };
        let started = std::time::Instant::now();
        let outcome = provider.embed(&inputs).await;
        usage.latency_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        match outcome {
            Ok(vectors) => {
                match admission {
                    Some(admission) => admission.settle(Some(&usage)),
                    None => self.run_budget.charge_unadmitted(&usage),
                }
                call.record(&usage, None);
                if let Some(cache) = &self.cache {
                    cache.put_embeddings(&key, &vectors);
                }
                if let Some(cassette) = &self.cassette {
                    cassette.record(&cassette_key, Recorded::Embeddings(vectors.clone()));
                }
                Ok(Embeddings { vectors, usage })
            }
            Err(e) => {
                if let Some(admission) = admission {
                    admission.settle(None);
                }
                call.record(&Usage::default(), Some(&e));
                Err(e)
            }
        }
    }

    /// In replay mode, the cassette's answer to the embedding call under `cassette_key` (free,
    /// with `usage`'s counts, and in the ledger); `None` in any other mode.
    fn replay_embeddings(
        &self,
        cassette_key: &str,
        call: &CallLog<'_>,
        usage: &Usage,
    ) -> Option<CapResult<Embeddings>> {
        let cassette = self
            .cassette
            .as_ref()
            .filter(|c| c.mode() == CassetteMode::Replay)?;
        let usage = free(usage.clone());
        Some(match cassette.replay(cassette_key) {
            Ok(Recorded::Embeddings(vectors)) => {
                call.record(&usage, None);
                Ok(Embeddings { vectors, usage })
            }
            Ok(Recorded::Chat(_)) => Err(CapabilityError::Internal(
                "the cassette holds a chat reply for an embedding key".into(),
            )),
            Err(e) => {
                call.record(&usage, Some(&e));
                Err(e)
            }
        })
    }

    /// Account a call of `plugin` that a resumed run's journal answered: `usage` counts against
    /// `budget` and the run's as if the call were made now, and the ledger shows it as
    /// `replayed`. Replies that came from the cache cost nothing, as they did then.
    pub fn account_replayed(&self, plugin: &str, budget: &Budget, kind: &str, usage: &Usage) {
        if !usage.cache_hit {
            budget.charge_replayed(usage);
            self.run_budget.charge_replayed(usage);
        }
        self.ledger.record(CallRecord {
            plugin: plugin.to_string(),
            purpose: Some(kind.to_string()),
            provider: String::new(),
            model: usage.model.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_usd: usage.cost_usd,
            latency_ms: usage.latency_ms,
            cache_hit: usage.cache_hit,
            outcome: REPLAYED.to_string(),
        });
    }
}

/// One call as the ledger records it: who made it, for what, and through which provider.
struct CallLog<'a> {
    ledger: &'a Ledger,
    plugin: &'a str,
    purpose: Option<String>,
    alias: &'a str,
    /// The model named when the usage names none (a failed call).
    model: &'a str,
}

impl CallLog<'_> {
    /// Put the call in the ledger with `usage` and its outcome (`ok`, or `error`'s kind).
    fn record(&self, usage: &Usage, error: Option<&CapabilityError>) {
        self.ledger.record(CallRecord {
            plugin: self.plugin.to_string(),
            purpose: self.purpose.clone(),
            provider: self.alias.to_string(),
            model: if usage.model.is_empty() {
                self.model.to_string()
            } else {
                usage.model.clone()
            },
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_usd: usage.cost_usd,
            latency_ms: usage.latency_ms,
            cache_hit: usage.cache_hit,
            outcome: error.map_or_else(|| "ok".to_string(), error_kind),
        });
    }
}

/// Admit a chat call against `budgets`. When a token or cost limit applies the prompt is
/// counted first (off the executor); the request comes back with `max_tokens` cut to what the
/// budgets have left, with its admission and whether it was cut.
async fn admit_chat<'b>(
    budgets: &[&'b Budget],
    mut request: ChatRequest,
    price: Option<Price>,
    context_window: u32,
) -> CapResult<(ChatRequest, Admission<'b>, bool)> {
    let needs_count = budgets.iter().any(|b| {
        let limits = b.limits();
        limits.tokens.is_some() || (limits.cost_usd.is_some() && price.is_some())
    });
    let prompt_tokens = if needs_count {
        let (counted, tokens) = offload(move |cancel| {
            let tokens = prompt_tokens(&request, cancel)?;
            Ok((request, tokens))
        })
        .await?;
        request = counted;
        tokens
    } else {
        0
    };
    let bound = request
        .max_tokens
        .map_or(u64::from(context_window), u64::from);
    let admission = budget::admit(
        budgets,
        &Ask {
            prompt_tokens,
            completion_tokens: bound,
            price,
        },
    )?;
    let capped = admission.completion_cap() < bound;
    if capped {
        request.max_tokens = Some(admission.completion_cap().min(u64::from(u32::MAX)) as u32);
    }
    Ok((request, admission, capped))
}

/// Embedding inputs with the tokens they take in total, counted off the executor.
async fn count_inputs(inputs: Vec<String>) -> CapResult<(Vec<String>, u64)> {
    offload(move |cancel| {
        let mut tokens = 0u64;
        for input in &inputs {
            tokens += count::count(tiktoken_rs::o200k_base_singleton(), input, cancel)?;
        }
        Ok((inputs, tokens))
    })
    .await
}

/// `usage` as a free cache hit (a cached or replayed answer).
fn free(mut usage: Usage) -> Usage {
    usage.cache_hit = true;
    usage.cost_usd = 0.0;
    usage
}

/// The ledger's purpose of embedding calls.
pub const EMBEDDING_PURPOSE: &str = "embedding";

/// Tokens a chat request's prompt takes, as OpenAI's chat format counts them: each message's
/// text plus 4 (its framing and role), 3 that prime the reply, and the text of the tools,
/// schema and prefill (an over-estimate there, which only makes the budget hold tighter).
fn prompt_tokens(request: &ChatRequest, cancel: &Cancel) -> CapResult<u64> {
    let bpe = tiktoken_rs::o200k_base_singleton();
    let text = |t: &str| count::count(bpe, t, cancel);
    let mut tokens = 3u64;
    for message in &request.messages {
        tokens += 4 + text(&message.content)?;
        if let Some(reasoning) = &message.reasoning {
            tokens += text(reasoning)?;
        }
        for call in &message.tool_calls {
            tokens += text(&call.name)? + text(&call.arguments)?;
        }
    }
    for tool in &request.tools {
        tokens += text(&tool.name)? + text(&tool.description)? + text(&tool.parameters)?;
    }
    if let ResponseFormat::JsonSchema(schema) = &request.response_format {
        tokens += text(&schema.schema)?;
    }
    if let Some(prefill) = &request.prefill {
        tokens += text(prefill)?;
    }
    Ok(tokens)
}

/// Cassettes travel between machines and endpoints, so they key calls by alias and model only.
fn cassette_identity(alias: &str, provider: &Arc<dyn Provider>) -> String {
    format!("{alias}#{}", provider.model_info().name)
}

/// `not-granted`, `timeout`, … for the ledger.
fn error_kind(e: &CapabilityError) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "error".into())
}

/// Tokens `text` takes: OpenAI's `o200k_base` encoding, exact for OpenAI's current models and a
/// close estimate for others. Counted in chunks (see [`count`]); `cancelled` once `cancel` is.
pub fn count_tokens(text: &str, cancel: &Cancel) -> CapResult<u32> {
    let tokens = count::count(tiktoken_rs::o200k_base_singleton(), text, cancel)?;
    Ok(tokens.min(u64::from(u32::MAX)) as u32)
}

/// One plugin's LLM access: the run's hub plus the plugin's own budget.
pub struct PluginLlm {
    hub: Arc<LlmHub>,
    plugin: String,
    budget: Budget,
}

#[async_trait::async_trait]
impl LanguageModel for PluginLlm {
    async fn chat(&self, request: ChatRequest) -> CapResult<Completion> {
        limits::check_chat(&request)?;
        self.hub
            .chat(&self.plugin, Some(&self.budget), request, None)
            .await
    }

    /// Sizes and alias only: the budgets decide when the call is made (a resumed run's
    /// replayed calls are answered from its journal whatever the budgets say).
    fn admit(&self, request: &ChatRequest) -> CapResult<()> {
        limits::check_chat(request)?;
        self.hub.provider(request.model.as_deref()).map(|_| ())
    }

    async fn embed(&self, inputs: Vec<String>, model: Option<String>) -> CapResult<Embeddings> {
        limits::check_embed(&inputs, model.as_deref())?;
        self.hub
            .embed_as(&self.plugin, Some(&self.budget), inputs, model.as_deref())
            .await
    }

    fn count_tokens(&self, text: &str, model: Option<&str>, cancel: &Cancel) -> CapResult<u32> {
        limits::check_count(text, model)?;
        self.hub.provider(model)?;
        count_tokens(text, cancel)
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.hub.models()
    }

    fn budget(&self) -> LlmBudget {
        self.budget.snapshot()
    }

    fn replayed(&self, kind: &str, usage: &Usage) {
        self.hub
            .account_replayed(&self.plugin, &self.budget, kind, usage);
    }
}
