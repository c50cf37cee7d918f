//! Budgets and accounting.
//!
//! A [`Budget`] caps tokens, requests and cost for one holder (a plugin, or the whole run).
//! A call is admitted against every budget it is charged to at once ([`admit`]), before it is
//! sent: admission refuses with `budget-exhausted` once a limit is reached, counts the request,
//! and *reserves* the most the call may use — its prompt (as counted by the host) plus the
//! completion tokens it may produce — cutting that completion allowance to what every budget
//! has left. The caller sends the request with `max_tokens` cut to [`Admission::completion_cap`].
//! When the reply arrives, [`Admission::settle`] charges the actual usage and releases the
//! reservation. So concurrent calls never exceed a limit together: what one call holds, the
//! others cannot take (up to the error of the host's prompt estimate, which is exact for
//! OpenAI's tokenizers).
//!
//! A call dropped in flight (cancelled, timed out) is charged what it held: the provider may
//! have done the work. A call that never reached the provider gives its request back
//! ([`Admission::abandon`]). Usage replayed from a resumed run's journal is charged with
//! [`Budget::charge_replayed`] before the run goes live.
//!
//! The [`Ledger`] records every call (tokens, latency, model, cache hit, outcome) for the run
//! report; [`Ledger::summary`] sums them.

use super::config::Price;
use super::types::{LlmBudget, Usage};
use crate::capability::{CapResult, CapabilityError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Limits; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl Limits {
    /// The run-wide limits of `[llm]` (`max-tokens`, `max-requests`, `max-cost-usd`).
    pub fn of_run(config: &super::config::LlmConfig) -> Limits {
        Limits {
            tokens: config.max_tokens,
            requests: config.max_requests,
            cost_usd: config.max_cost_usd,
        }
    }
}

#[derive(Debug, Default)]
struct Used {
    tokens: u64,
    requests: u64,
    cost_usd: f64,
    /// Held by calls in flight: the most they may still use.
    held_tokens: u64,
    held_cost_usd: f64,
}

/// Usage against limits for one holder, shared by its concurrent calls.
#[derive(Debug)]
pub struct Budget {
    holder: String,
    limits: Limits,
    used: Mutex<Used>,
}

/// What a call may use at most, asked for at admission.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask {
    /// Prompt tokens as the host counts them (0 when no budget limits tokens or cost).
    pub prompt_tokens: u64,
    /// The most completion tokens the call may produce (its `max_tokens`, else the model's
    /// bound); 0 for an embedding.
    pub completion_tokens: u64,
    /// The model's price, if the price table knows it.
    pub price: Option<Price>,
}

/// One admitted call's hold on its budgets. Dropping it unsettled charges what it held.
#[must_use = "settle the admission with the call's usage"]
#[derive(Debug)]
pub struct Admission<'a> {
    budgets: Vec<&'a Budget>,
    held_tokens: u64,
    held_cost_usd: f64,
    completion_cap: u64,
    done: bool,
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

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuse if any limit is reached, reserving nothing (a quick check before starting a call
    /// in the background; [`admit`] still decides when it is sent).
    pub fn check(&self) -> CapResult<()> {
        self.check_used(&self.lock())
    }

    fn refuse(&self, what: String) -> CapabilityError {
        CapabilityError::BudgetExhausted(format!("{} {what}", self.holder))
    }

    fn check_used(&self, used: &Used) -> CapResult<()> {
        if let Some(limit) = self.limits.requests
            && used.requests >= limit
        {
            return Err(self.refuse(format!("has used its {limit} LLM requests")));
        }
        if let Some(limit) = self.limits.tokens
            && used.tokens + used.held_tokens >= limit
        {
            return Err(self.refuse(if used.held_tokens == 0 {
                format!("has used {} of its {limit} LLM tokens", used.tokens)
            } else {
                format!(
                    "has used {} of its {limit} LLM tokens and calls in flight hold the other {}; \
                     wait for them, or set max-tokens on requests so several fit at once",
                    used.tokens,
                    limit.saturating_sub(used.tokens)
                )
            }));
        }
        if let Some(limit) = self.limits.cost_usd
            && used.cost_usd + used.held_cost_usd >= limit
        {
            return Err(self.refuse(format!(
                "has used ${:.4} of its ${limit:.2} LLM budget (${:.4} more held by calls in flight)",
                used.cost_usd, used.held_cost_usd
            )));
        }
        Ok(())
    }

    /// Charge a call answered before a resume (from the run's journal): its request, tokens
    /// and cost count as if it had just been made.
    pub fn charge_replayed(&self, usage: &Usage) {
        let mut used = self.lock();
        used.requests += 1;
        used.tokens += total_tokens(usage);
        used.cost_usd += usage.cost_usd;
    }

    /// Charge a call the host made for itself without admission (the HCC's own embeddings).
    pub fn charge_unadmitted(&self, usage: &Usage) {
        self.charge_replayed(usage);
    }

    pub fn snapshot(&self) -> LlmBudget {
        let used = self.lock();
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

/// Prompt and completion tokens of `usage`.
pub fn total_tokens(usage: &Usage) -> u64 {
    u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens)
}

/// Admit one call against all of `budgets` at once (each is locked in the order given, so pass
/// them in one fixed order: the plugin's, then the run's). Refuses with `budget-exhausted`,
/// naming the holder, when a limit is reached or the prompt alone does not fit; otherwise
/// counts the request and holds the prompt plus the completion tokens that fit every budget.
pub fn admit<'a>(budgets: &[&'a Budget], ask: &Ask) -> CapResult<Admission<'a>> {
    let mut locked: Vec<MutexGuard<'_, Used>> = budgets.iter().map(|b| b.lock()).collect();
    let prompt = ask.prompt_tokens;
    let mut cap = ask.completion_tokens;
    for (budget, used) in budgets.iter().zip(&locked) {
        budget.check_used(used)?;
        if let Some(limit) = budget.limits.tokens {
            let left = limit.saturating_sub(used.tokens + used.held_tokens);
            if prompt >= left {
                return Err(budget.refuse(format!(
                    "has {left} of its {limit} LLM tokens left, and the prompt alone takes about \
                     {prompt}: shorten it"
                )));
            }
            cap = cap.min(left - prompt);
        }
        if let (Some(limit), Some(price)) = (budget.limits.cost_usd, ask.price) {
            let left = limit - used.cost_usd - used.held_cost_usd;
            let prompt_cost = price.input * prompt as f64 / 1e6;
            if prompt_cost >= left {
                return Err(budget.refuse(format!(
                    "has ${left:.4} of its ${limit:.2} LLM budget left, and the prompt alone costs \
                     about ${prompt_cost:.4}: shorten it"
                )));
            }
            if price.output > 0.0 {
                let fits = ((left - prompt_cost) / price.output * 1e6).floor();
                cap = cap.min(fits.clamp(0.0, u64::MAX as f64) as u64);
            }
        }
    }
    if cap == 0 && ask.completion_tokens > 0 {
        return Err(budgets[0].refuse(
            "has no LLM budget left for a reply: its limits are spent or held by calls in flight"
                .to_string(),
        ));
    }
    let held_tokens = prompt + cap;
    let held_cost_usd = ask.price.map_or(0.0, |p| {
        (p.input * prompt as f64 + p.output * cap as f64) / 1e6
    });
    for (budget, used) in budgets.iter().zip(locked.iter_mut()) {
        used.requests += 1;
        if budget.limits.tokens.is_some() {
            used.held_tokens += held_tokens;
        }
        if budget.limits.cost_usd.is_some() {
            used.held_cost_usd += held_cost_usd;
        }
    }
    Ok(Admission {
        budgets: budgets.to_vec(),
        held_tokens,
        held_cost_usd,
        completion_cap: cap,
        done: false,
    })
}

impl Admission<'_> {
    /// The most completion tokens the call may produce: send the request with at most this.
    pub fn completion_cap(&self) -> u64 {
        self.completion_cap
    }

    fn release(&mut self, each: impl Fn(&Budget, &mut Used)) {
        self.done = true;
        for budget in &self.budgets {
            let mut used = budget.lock();
            if budget.limits.tokens.is_some() {
                used.held_tokens = used.held_tokens.saturating_sub(self.held_tokens);
            }
            if budget.limits.cost_usd.is_some() {
                used.held_cost_usd = (used.held_cost_usd - self.held_cost_usd).max(0.0);
            }
            each(budget, &mut used);
        }
    }

    /// The reply arrived: charge its usage (`None`: the call failed, which costs its request
    /// only) and release the hold.
    pub fn settle(mut self, usage: Option<&Usage>) {
        self.release(|_, used| {
            if let Some(usage) = usage {
                used.tokens += total_tokens(usage);
                used.cost_usd += usage.cost_usd;
            }
        });
    }

    /// The call never reached the provider: give its request back and release the hold.
    pub fn abandon(mut self) {
        self.release(|_, used| used.requests = used.requests.saturating_sub(1));
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Dropped in flight: the provider may have done the work, so what was held is spent.
            let (tokens, cost) = (self.held_tokens, self.held_cost_usd);
            self.release(|_, used| {
                used.tokens += tokens;
                used.cost_usd += cost;
            });
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
    /// `ok`, the error kind (e.g. `rate-limited`), or `replayed` for a call answered before a
    /// resume (from the run's journal).
    pub outcome: String,
}

/// The outcome of a ledger record replayed from a resumed run's journal.
pub const REPLAYED: &str = "replayed";

/// Totals over calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    pub calls: u64,
    pub cache_hits: u64,
    pub errors: u64,
    /// Calls answered before a resume, replayed from the journal (their usage counts).
    pub replayed: u64,
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
        self.errors += u64::from(call.outcome != "ok" && call.outcome != REPLAYED);
        self.replayed += u64::from(call.outcome == REPLAYED);
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

    fn ask(prompt: u64, completion: u64) -> Ask {
        Ask {
            prompt_tokens: prompt,
            completion_tokens: completion,
            price: None,
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
        admit(&[&requests], &ask(0, 10)).unwrap().settle(None);
        let second = admit(&[&requests], &ask(0, 10)).unwrap();
        let err = admit(&[&requests], &ask(0, 10)).unwrap_err().to_string();
        assert!(
            err.contains("plugin `p` has used its 2 LLM requests"),
            "{err}"
        );
        second.abandon();
        admit(&[&requests], &ask(0, 10)).unwrap().settle(None);

        let cost = Budget::new(
            "the run",
            Limits {
                cost_usd: Some(0.01),
                ..Limits::default()
            },
        );
        admit(&[&cost], &ask(0, 10))
            .unwrap()
            .settle(Some(&usage(0, 0, 0.02)));
        assert!(
            admit(&[&cost], &ask(0, 10))
                .unwrap_err()
                .to_string()
                .contains("$0.0200 of its $0.01")
        );
    }

    #[test]
    fn concurrent_calls_hold_their_share_and_never_overshoot_together() {
        let plugin = Budget::new(
            "plugin `p`",
            Limits {
                tokens: Some(100),
                ..Limits::default()
            },
        );
        let run = Budget::new("the run", Limits::default());
        // Asks for 30 completion tokens with a 10-token prompt: holds 40.
        let a = admit(&[&plugin, &run], &ask(10, 30)).unwrap();
        assert_eq!(a.completion_cap(), 30);
        // No max-tokens (the model's bound, 8192): cut to the 50 left after the prompt.
        let b = admit(&[&plugin, &run], &ask(10, 8192)).unwrap();
        assert_eq!(b.completion_cap(), 50);
        // Nothing is left for a third call while those two are in flight.
        let err = admit(&[&plugin, &run], &ask(10, 8192)).unwrap_err();
        assert!(
            matches!(&err, CapabilityError::BudgetExhausted(m) if m.contains("calls in flight hold")),
            "{err}"
        );
        // Settling releases what was held but not used.
        a.settle(Some(&usage(10, 5, 0.0)));
        b.settle(Some(&usage(10, 50, 0.0)));
        assert_eq!(plugin.snapshot().tokens_used, 75);
        let c = admit(&[&plugin, &run], &ask(10, 8192)).unwrap();
        assert_eq!(c.completion_cap(), 15);
        // A prompt that does not fit is refused before anything is sent.
        drop(c); // dropped in flight: what it held (25) is spent
        assert_eq!(plugin.snapshot().tokens_used, 100);
        let err = admit(&[&plugin], &ask(1, 1)).unwrap_err().to_string();
        assert!(err.contains("has used 100 of its 100 LLM tokens"), "{err}");
        let roomy = Budget::new(
            "plugin `q`",
            Limits {
                tokens: Some(50),
                ..Limits::default()
            },
        );
        let err = admit(&[&roomy], &ask(60, 10)).unwrap_err().to_string();
        assert!(err.contains("the prompt alone takes about 60"), "{err}");
    }

    #[test]
    fn a_cost_limit_caps_the_completion_by_price() {
        let budget = Budget::new(
            "the run",
            Limits {
                cost_usd: Some(1.0),
                ..Limits::default()
            },
        );
        let price = Price {
            input: 1000.0,
            output: 10_000.0,
        };
        // 100 prompt tokens cost $0.10; $0.90 buys 90 completion tokens at $10k per million.
        let a = admit(
            &[&budget],
            &Ask {
                prompt_tokens: 100,
                completion_tokens: 1000,
                price: Some(price),
            },
        )
        .unwrap();
        assert_eq!(a.completion_cap(), 90);
        assert!(admit(&[&budget], &ask(0, 10)).is_err());
        a.abandon();
        assert_eq!(budget.snapshot().requests_used, 0);
    }

    #[test]
    fn replayed_usage_counts_against_the_limits() {
        let budget = Budget::new(
            "plugin `p`",
            Limits {
                requests: Some(2),
                ..Limits::default()
            },
        );
        budget.charge_replayed(&usage(5, 5, 0.0));
        budget.charge_replayed(&usage(5, 5, 0.0));
        assert!(admit(&[&budget], &ask(0, 1)).is_err());
        assert_eq!(budget.snapshot().tokens_used, 20);
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
        ledger.record(call("b", None, false, REPLAYED));
        let summary = ledger.summary();
        assert_eq!(summary.total.calls, 4);
        assert_eq!(summary.total.cache_hits, 1);
        assert_eq!(summary.total.errors, 1);
        assert_eq!(summary.total.replayed, 1);
        assert_eq!(summary.total.prompt_tokens, 40);
        assert_eq!(summary.by_plugin["a"].calls, 2);
        assert_eq!(summary.by_purpose["-"].calls, 2);
        assert!((summary.total.cost_usd - 2.0).abs() < 1e-12);
    }
}
