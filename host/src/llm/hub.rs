//! [`LlmHub`]: the run's LLM access — providers by alias, the reply cache, the cassette, the
//! price table, the run's budget and the ledger — and [`PluginLlm`], one plugin's view of it
//! (its own budget on top of the run's), which is what the runtime serves as `sophon:host/llm`.
//!
//! A chat call goes: resolve the alias → cassette replay (replay mode) → cache (if the request
//! is cacheable) → admit against the plugin's and the run's budgets → the provider → price and
//! charge → record in the ledger, the cache and the cassette. Cache hits are free and are not
//! charged; every call, failed or not, is in the ledger.

use super::LanguageModel;
use super::budget::{Budget, CallRecord, Ledger, Limits};
use super::cache::{self, ReplyCache};
use super::cassette::{Cassette, Recorded};
use super::config::{CassetteMode, LlmConfig, Price, ProviderKind};
use super::local::{LocalProvider, PythonEnv};
use super::openai::OpenAiProvider;
use super::provider::{DeltaSink, Provider};
use super::types::*;
use crate::capability::{CapResult, CapabilityError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of the embedded local provider when the configuration names none.
pub const LOCAL: &str = "local";

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
    pub fn from_config(config: &LlmConfig, limits: Limits, env: Env<'_>) -> Result<LlmHub, String> {
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
            return Err(format!(
                "[llm] default = {default:?} names no provider; configured: {}",
                providers.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
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

    /// One chat call on behalf of `plugin` (charged to `budget` as well as the run's).
    pub async fn chat(
        &self,
        plugin: &str,
        budget: Option<&Budget>,
        request: ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion> {
        let (alias, provider) = self.provider(request.model.as_deref())?;
        let key = cache::chat_key(&provider.cache_identity(), &request);
        let cassette_key = cache::chat_key(&cassette_identity(alias, provider), &request);
        let record = |completion: Option<&Completion>, error: Option<&CapabilityError>| {
            let usage = completion.map(|c| c.usage.clone()).unwrap_or_default();
            self.ledger.record(CallRecord {
                plugin: plugin.to_string(),
                purpose: request.purpose.clone(),
                provider: alias.to_string(),
                model: if usage.model.is_empty() {
                    provider.model_info().name
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
        };

        if let Some(cassette) = self
            .cassette
            .as_ref()
            .filter(|c| c.mode() == CassetteMode::Replay)
        {
            return match cassette.replay(&cassette_key) {
                Ok(Recorded::Chat(mut completion)) => {
                    completion.usage.cache_hit = true;
                    completion.usage.cost_usd = 0.0;
                    record(Some(&completion), None);
                    Ok(completion)
                }
                Ok(Recorded::Embeddings(_)) => Err(CapabilityError::Internal(
                    "the cassette holds embeddings for a chat key".into(),
                )),
                Err(e) => {
                    record(None, Some(&e));
                    Err(e)
                }
            };
        }
        let cacheable = cache::cacheable(&request);
        if cacheable
            && let Some(mut completion) = self.cache.as_ref().and_then(|c| c.get_chat(&key))
        {
            completion.usage.cache_hit = true;
            completion.usage.cost_usd = 0.0;
            completion.usage.latency_ms = 0;
            record(Some(&completion), None);
            return Ok(completion);
        }
        if let Some(budget) = budget {
            budget.admit()?;
        }
        if let Err(e) = self.run_budget.admit() {
            if let Some(budget) = budget {
                budget.release();
            }
            return Err(e);
        }
        let outcome = provider.chat(&request, on_delta).await;
        match outcome {
            Ok(mut completion) => {
                completion.usage.cache_hit = false;
                completion.usage.cost_usd = self
                    .prices
                    .get(&completion.usage.model)
                    .or_else(|| self.prices.get(&provider.model_info().name))
                    .map_or(0.0, |p| {
                        p.cost(
                            completion.usage.prompt_tokens,
                            completion.usage.completion_tokens,
                        )
                    });
                for b in budget.into_iter().chain([&self.run_budget]) {
                    b.charge(&completion.usage);
                }
                record(Some(&completion), None);
                if cacheable && let Some(cache) = &self.cache {
                    cache.put_chat(&key, &completion);
                }
                if let Some(cassette) = &self.cassette {
                    cassette.record(&cassette_key, Recorded::Chat(completion.clone()));
                }
                Ok(completion)
            }
            Err(e) => {
                record(None, Some(&e));
                Err(e)
            }
        }
    }

    /// What identifies the embeddings of provider `alias` (the default when `None`).
    pub fn embedding_identity(&self, alias: Option<&str>) -> CapResult<String> {
        let (alias, provider) = self.provider(alias)?;
        Ok(format!("{alias}#{}", provider.embedding_identity()))
    }

    /// Embeddings through provider `alias` (the default when `None`); deterministic, so cached.
    pub async fn embed(
        &self,
        inputs: Vec<String>,
        alias: Option<&str>,
    ) -> CapResult<Vec<Vec<f32>>> {
        let (alias, provider) = self.provider(alias)?;
        let key = cache::embed_key(&provider.embedding_identity(), &inputs);
        let cassette_key = cache::embed_key(&cassette_identity(alias, provider), &inputs);
        if let Some(cassette) = self
            .cassette
            .as_ref()
            .filter(|c| c.mode() == CassetteMode::Replay)
        {
            return match cassette.replay(&cassette_key)? {
                Recorded::Embeddings(vectors) => Ok(vectors),
                Recorded::Chat(_) => Err(CapabilityError::Internal(
                    "the cassette holds a chat reply for an embedding key".into(),
                )),
            };
        }
        if let Some(vectors) = self.cache.as_ref().and_then(|c| c.get_embeddings(&key)) {
            return Ok(vectors);
        }
        let vectors = provider.embed(&inputs).await?;
        if let Some(cache) = &self.cache {
            cache.put_embeddings(&key, &vectors);
        }
        if let Some(cassette) = &self.cassette {
            cassette.record(&cassette_key, Recorded::Embeddings(vectors.clone()));
        }
        Ok(vectors)
    }
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
/// close estimate for others.
pub fn count_tokens(text: &str) -> u32 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len()
        .min(u32::MAX as usize) as u32
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
        self.hub
            .chat(&self.plugin, Some(&self.budget), request, None)
            .await
    }

    fn admit(&self, request: &ChatRequest) -> CapResult<()> {
        self.hub.provider(request.model.as_deref()).map(|_| ())
    }

    async fn embed(&self, inputs: Vec<String>, model: Option<String>) -> CapResult<Vec<Vec<f32>>> {
        self.hub.embed(inputs, model.as_deref()).await
    }

    fn count_tokens(&self, text: &str, model: Option<&str>) -> CapResult<u32> {
        self.hub.provider(model)?;
        Ok(count_tokens(text))
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.hub.models()
    }

    fn budget(&self) -> LlmBudget {
        self.budget.snapshot()
    }
}
