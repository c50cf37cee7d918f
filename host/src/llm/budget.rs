//! Budgets and accounting.
//!
//! A [`Budget`] caps tokens, requests and cost for one holder (a plugin, or the whole run).
//! [`Budget::admit`] runs before a call and refuses with `budget-exhausted` once a limit is
//! reached; it also reserves the request, so concurrent calls never exceed `max-requests`.
//! Tokens and cost are charged when the reply arrives, so calls already in flight when a token
//! or cost limit is reached may overshoot it by their own usage (at most the in-flight calls).
//!
//! The [`Ledger`] records every call (tokens, latency, model, cache hit, outcome) for the run
//! report; [`Ledger::summary`] sums them.

use super::types::{LlmBudget, Usage};
use crate::capability::{CapResult, CapabilityError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Limits; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Default)]
struct Used {
    tokens: u64,
    requests: u64,
    cost_usd: f64,
}

/// Usage against limits for one holder, shared by its concurrent calls.
#[derive(Debug)]
pub struct Budget {
    holder: String,
    limits: Limits,
    used: Mutex<Used>,
}

impl Budget {
    /// A budget for `holder` (named in refusals, e.g. "plugin `ml-master`").
    pub fn new(holder: impl Into<String>, limits: Limits) -> Budget {
        Budget {
            holder: holder.into(),
            limits,
            used: Mutex::default(),
        }
    }

    /// Refuse if any limit is reached; otherwise reserve one request.
    pub fn admit(&self) -> CapResult<()> {
        let mut used = self.used.lock().unwrap();
        self.check_used(&used)?;
        used.requests += 1;
        Ok(())
    }

    /// Refuse if any limit is reached, reserving nothing (a quick check before starting a call
    /// in the background; [`Budget::admit`] still decides when it is sent).
    pub fn check(&self) -> CapResult<()> {
        self.check_used(&self.used.lock().unwrap())
    }

    fn check_used(&self, used: &Used) -> CapResult<()> {
        let refuse = |what: String| {
            Err(CapabilityError::BudgetExhausted(format!(
                "{} has used {what}",
                self.holder
            )))
        };
        if let Some(limit) = self.limits.requests
            && used.requests >= limit
        {
            return refuse(format!("its {limit} LLM requests"));
        }
        if let Some(limit) = self.limits.tokens
            && used.tokens >= limit
        {
            return refuse(format!("{} of its {limit} LLM tokens", used.tokens));
        }
        if let Some(limit) = self.limits.cost_usd
            && used.cost_usd >= limit
        {
            return refuse(format!(
                "${:.4} of its ${limit:.2} LLM budget",
                used.cost_usd
            ));
        }
        Ok(())
    }

    /// Give back a request reserved by [`Budget::admit`] whose call never reached the provider.
    pub fn release(&self) {
        let mut used = self.used.lock().unwrap();
        used.requests = used.requests.saturating_sub(1);
    }

    /// Add a finished call's tokens and cost.
    pub fn charge(&self, usage: &Usage) {
        let mut used = self.used.lock().unwrap();
        used.tokens += u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens);
        used.cost_usd += usage.cost_usd;
    }

    pub fn snapshot(&self) -> LlmBudget {
        let used = self.used.lock().unwrap();
        LlmBudget {
            tokens_used: used.tokens,
            tokens_limit: self.limits.tokens,
            requests_used: used.requests.min(u64::from(u32::MAX)) as u32,
            requests_limit: self
                .limits
                .requests
                .map(|r| r.min(u64::from(u32::MAX)) as u32),
            cost_used_usd: used.cost_usd,
            cost_limit_usd: self.limits.cost_usd,
        }
    }
}

/// One call, as recorded for the run report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    pub plugin: String,
    pub purpose: Option<String>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub reasoning_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u32,
    pub cache_hit: bool,
    /// `ok`, or the error kind (e.g. `rate-limited`).
    pub outcome: String,
}

/// Totals over calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    pub calls: u64,
    pub cache_hits: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
}

impl UsageTotals {
    fn add(&mut self, call: &CallRecord) {
        self.calls += 1;
        self.cache_hits += u64::from(call.cache_hit);
        self.errors += u64::from(call.outcome != "ok");
        self.prompt_tokens += u64::from(call.prompt_tokens);
        self.completion_tokens += u64::from(call.completion_tokens);
        self.reasoning_tokens += u64::from(call.reasoning_tokens);
        self.cost_usd += call.cost_usd;
        self.latency_ms += u64::from(call.latency_ms);
    }
}

/// The run's usage, summed overall and by plugin, model and purpose.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UsageSummary {
    pub total: UsageTotals,
    pub by_plugin: BTreeMap<String, UsageTotals>,
    pub by_model: BTreeMap<String, UsageTotals>,
    pub by_purpose: BTreeMap<String, UsageTotals>,
}

/// Every call of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    calls: Mutex<Vec<CallRecord>>,
}

impl Ledger {
    pub fn record(&self, call: CallRecord) {
        self.calls.lock().unwrap().push(call);
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls.lock().unwrap().clone()
    }

    pub fn summary(&self) -> UsageSummary {
        let mut summary = UsageSummary::default();
        for call in self.calls.lock().unwrap().iter() {
            summary.total.add(call);
            summary
                .by_plugin
                .entry(call.plugin.clone())
                .or_default()
                .add(call);
            summary
                .by_model
                .entry(call.model.clone())
                .or_default()
                .add(call);
            let purpose = call.purpose.clone().unwrap_or_else(|| "-".into());
            summary.by_purpose.entry(purpose).or_default().add(call);
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u32, completion: u32, cost: f64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_usd: cost,
            ..Usage::default()
        }
    }

    #[test]
    fn each_limit_refuses_once_reached_naming_the_holder() {
        let requests = Budget::new(
            "plugin `p`",
            Limits {
                requests: Some(2),
                ..Limits::default()
            },
        );
        requests.admit().unwrap();
        requests.admit().unwrap();
        let err = requests.admit().unwrap_err().to_string();
        assert!(
            err.contains("plugin `p` has used its 2 LLM requests"),
            "{err}"
        );
        requests.release();
        requests.admit().unwrap();

        let tokens = Budget::new(
            "the run",
            Limits {
                tokens: Some(100),
                ..Limits::default()
            },
        );
        tokens.admit().unwrap();
        tokens.charge(&usage(60, 50, 0.0));
        assert!(matches!(
            tokens.admit(),
            Err(CapabilityError::BudgetExhausted(_))
        ));
        assert_eq!(tokens.snapshot().tokens_used, 110);

        let cost = Budget::new(
            "the run",
            Limits {
                cost_usd: Some(0.01),
                ..Limits::default()
            },
        );
        cost.admit().unwrap();
        cost.charge(&usage(0, 0, 0.02));
        assert!(
            cost.admit()
                .unwrap_err()
                .to_string()
                .contains("$0.0200 of its $0.01")
        );
    }

    #[test]
    fn the_ledger_sums_by_plugin_model_and_purpose() {
        let ledger = Ledger::default();
        let call =
            |plugin: &str, purpose: Option<&str>, cache_hit: bool, outcome: &str| CallRecord {
                plugin: plugin.into(),
                purpose: purpose.map(str::to_owned),
                provider: "local".into(),
                model: "m".into(),
                prompt_tokens: 10,
                completion_tokens: 5,
                reasoning_tokens: 0,
                cost_usd: 0.5,
                latency_ms: 100,
                cache_hit,
                outcome: outcome.into(),
            };
        ledger.record(call("a", Some("draft"), false, "ok"));
        ledger.record(call("a", Some("review"), true, "ok"));
        ledger.record(call("b", None, false, "timeout"));
        let summary = ledger.summary();
        assert_eq!(summary.total.calls, 3);
        assert_eq!(summary.total.cache_hits, 1);
        assert_eq!(summary.total.errors, 1);
        assert_eq!(summary.total.prompt_tokens, 30);
        assert_eq!(summary.by_plugin["a"].calls, 2);
        assert_eq!(summary.by_purpose["-"].calls, 1);
        assert!((summary.total.cost_usd - 1.5).abs() < 1e-12);
    }
}
