//! A strategy as a plugin compiled before `sophon:host@0.2.0` is: raw bindings of the frozen
//! 0.1.0 contract (`wit/since_v0.1.0`), so every import it makes is `sophon:host/…@0.1.0`.
//! It touches the run, artifacts and HCC interfaces (records, enums, variants, options and
//! results across the boundary), and answers with what it saw, for the host to check.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "sophon:plugin/strategy",
    generate_all,
});

use exports::sophon::plugin::strategy_api::{Guest, Outcome};
use sophon::host::{artifacts, hcc, run, types};

struct Legacy;

fn text(error: types::Error) -> String {
    format!("{error:?}")
}

impl Guest for Legacy {
    fn run(config: String) -> Result<Outcome, String> {
        let info = run::info();
        let steps_before = run::budget().steps_used;
        let created = artifacts::create("legacy.csv", config.as_bytes()).map_err(text)?;
        let back = artifacts::read(&created.id, 0, 1 << 16).map_err(text)?;
        run::report_node(&run::NodeReport {
            id: "legacy-1".into(),
            parent: None,
            operator: "draft".into(),
            worker: None,
            plan: "a plugin from the 0.1.0 days".into(),
            code: None,
            metric: Some(0.75),
            buggy: false,
            valid_submission: true,
            summary: "still runs".into(),
        })
        .map_err(text)?;
        let adopted = run::report_best("legacy-1", &created.id, 0.75).map_err(text)?;
        let phase = hcc::begin_phase("keep old plugins working").map_err(text)?;
        let seq = hcc::record_event(&hcc::Event {
            kind: hcc::EventKind::Other("legacy".into()),
            node: Some("legacy-1".into()),
            content: "recorded through sophon:host/hcc@0.1.0".into(),
            metric: Some(0.75),
        })
        .map_err(text)?;
        let steps_after = run::budget().steps_used;
        run::log(types::LogLevel::Info, "legacy plugin ran");
        Ok(Outcome {
            best_node: Some("legacy-1".into()),
            nodes: 1,
            summary: format!(
                "{}|{}|{}|{}|{adopted}|{phase}|{seq}|{}",
                info.run_id,
                info.seed,
                String::from_utf8_lossy(&back),
                created.sha256,
                steps_after - steps_before,
            ),
        })
    }
}

export!(Legacy);

// The manifest, embedded as the SDK's export macros embed it (a `sophon-manifest` custom
// section), since this plugin does without the SDK.
#[unsafe(link_section = "sophon-manifest")]
#[used]
static MANIFEST: [u8; include_bytes!("../plugin.toml").len()] = *include_bytes!("../plugin.toml");
