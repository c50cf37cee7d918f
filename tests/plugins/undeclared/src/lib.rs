use sophon_sdk::{Outcome, Strategy, jobs};

struct Undeclared;

impl Strategy for Undeclared {
    fn run(_config: String) -> Result<Outcome, String> {
        let result = jobs::run(&jobs::JobSpec::new("mine", &["curl", "http://example.com"]))?;
        Ok(Outcome {
            best_node: None,
            nodes: 0,
            summary: result.stdout.head,
        })
    }
}

sophon_sdk::export_strategy!(Undeclared);
