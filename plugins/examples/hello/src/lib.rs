//! The smallest useful strategy: it proposes a few constant-prediction "solutions", stores
//! each as an artifact, reports them as search nodes and claims the best one — every step a
//! host call, so running it shows the whole plugin path without an LLM or a job backend.
//!
//! Config (JSON, all optional): `{"nodes": 3}`.

use sophon_sdk::serde::Deserialize;
use sophon_sdk::{Outcome, Strategy, artifacts, info, run};

struct Hello;

/// The config: `{"nodes": 3}` (unknown keys are refused, naming the key).
#[derive(Deserialize)]
#[serde(crate = "sophon_sdk::serde", deny_unknown_fields, default)]
struct Settings {
    nodes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { nodes: 3 }
    }
}

fn nodes_from(config: &str) -> Result<u32, String> {
    let settings: Settings = sophon_sdk::config::parse(config)?;
    match settings.nodes {
        n @ 1..=100 => Ok(n),
        n => Err(format!("config.nodes must be in 1..=100, got {n}")),
    }
}

impl Strategy for Hello {
    fn run(config: String) -> Result<Outcome, String> {
        let nodes = nodes_from(&config)?;
        let me = run::info();
        info!(
            "hello from run {} (seed {}), trying {nodes} constants",
            me.run_id, me.seed
        );
        let mut best: Option<(String, f64)> = None;
        for i in 0..nodes {
            if run::should_stop() {
                info!("stopping early: the run's budget is spent");
                break;
            }
            let guess = (i + 1) as f64 / (nodes + 1) as f64;
            let csv = format!("id,target\n1,{guess}\n2,{guess}\n");
            let submission = artifacts::create(&format!("node-{i}.csv"), csv.as_bytes())?;
            // A made-up validation metric: closeness of the constant to 0.5.
            let metric = 1.0 - (guess - 0.5).abs();
            let id = format!("node-{i}");
            run::node(&id, "draft")
                .worker(0)
                .plan(format!("predict the constant {guess:.3}"))
                .metric(metric)
                .valid()
                .summary(format!("constant {guess:.3} scored {metric:.3}"))
                .report()?;
            if run::report_best(&id, &submission.id, metric)? {
                info!("{id} is the new best ({metric:.3})");
                best = Some((id, metric));
            }
        }
        Ok(Outcome {
            summary: match &best {
                Some((id, metric)) => format!("best node {id} with metric {metric:.3}"),
                None => "no node finished".into(),
            },
            best_node: best.map(|(id, _)| id),
            nodes,
        })
    }
}

sophon_sdk::export_strategy!(Hello);
