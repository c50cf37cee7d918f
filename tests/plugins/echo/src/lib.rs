use sophon_sdk::{Outcome, Strategy};

struct Echo;

impl Strategy for Echo {
    fn run(config: String) -> Result<Outcome, String> {
        if config == "noop" {
            return Ok(Outcome {
                best_node: None,
                nodes: 0,
                summary: String::new(),
            });
        }
        if let Some(n) = config.strip_prefix("host-calls:") {
            let n: u32 = n.parse().map_err(|e| format!("bad count: {e}"))?;
            let mut stops = 0;
            for _ in 0..n {
                if sophon_sdk::run::should_stop() {
                    stops += 1;
                }
            }
            return Ok(Outcome {
                best_node: None,
                nodes: stops,
                summary: String::new(),
            });
        }
        if let Some(payload) = config.strip_prefix("echo:") {
            return Ok(Outcome {
                best_node: None,
                nodes: 0,
                summary: payload.to_string(),
            });
        }
        Err(format!("unknown command {config:?}"))
    }
}

sophon_sdk::export_strategy!(Echo);
