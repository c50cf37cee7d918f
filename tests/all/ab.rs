//! `sophon ab`: two arms (the `recipes` strategy with the `top-k` and the `hcc` promotion
//! policies) on two prepared MLE-bench competitions with tiny budgets and the embedded model,
//! then the same experiment again after losing a cell (resumed, the rest kept).

use sophon::ab::{CellObserver, Experiment, Outcome, run_experiment};
use sophon::config::SophonConfig;
use sophon_tests::mlebench::mlebench_dir;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Cells(Mutex<Vec<(String, String, bool)>>);

impl CellObserver for Cells {
    fn on_cell(&self, o: &Outcome, reused: bool) {
        self.0
            .lock()
            .unwrap()
            .push((o.arm.clone(), o.competition_id.clone(), reused));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_arms_on_two_competitions_compare_and_resume() {
    let Some(mlebench) = mlebench_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiment.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"policies\"\ncompetitions = [\"spaceship-titanic\", \"playground-series-s3e18\"]\nseeds = [0]\ndata-dir = \"{}\"\nmax-parallel = 2\n[budget]\ntime-limit = \"4m\"\nmax-steps = 2\n[[arms]]\nname = \"top-k\"\nstrategy = \"recipes\"\npolicy = \"top-k\"\n[[arms]]\nname = \"hcc\"\nstrategy = \"recipes\"\npolicy = \"hcc\"\n",
            mlebench.join("data").display()
        ),
    )
    .unwrap();
    let config_path = dir.path().join("sophon.toml");
    std::fs::write(&config_path, "[run]\nruns-dir = \"runs\"\n").unwrap();
    let config = SophonConfig::load(&config_path).unwrap();
    let experiment = Experiment::load(&path).unwrap();
    let out = experiment.output_dir();

    let cells = Arc::new(Cells::default());
    let result = run_experiment(&config, &experiment, None, cells.clone())
        .await
        .unwrap();
    assert_eq!(result.outcomes.len(), 4);
    for o in &result.outcomes {
        assert!(o.valid && o.error.is_none(), "{o:?}");
        assert!(
            o.normalized.is_some(),
            "both competitions have leaderboards: {o:?}"
        );
    }
    assert!(cells.0.lock().unwrap().iter().all(|(_, _, reused)| !reused));
    let arms = &result.analysis.arms;
    assert_eq!(arms.len(), 2);
    for a in arms {
        assert_eq!(a.runs, 2);
        let rate = a.above_median_rate.unwrap();
        assert!(rate.low <= rate.value && rate.value <= rate.high);
        assert!(a.mean_normalized_score.is_some());
    }
    // hcc against the baseline per competition and overall: one seed, so one pair per
    // competition and two in all.
    assert_eq!(result.analysis.comparisons.len(), 3);
    for c in &result.analysis.comparisons {
        let pairs = if c.competition_id == "all" { 2 } else { 1 };
        assert_eq!(c.wins + c.losses + c.ties, pairs, "{c:?}");
    }

    // Each (arm, seed) had its own memory: the hcc arm's second competition prefetched the
    // wisdom its first left, and nothing of the other arm's.
    for arm in ["top-k", "hcc"] {
        let store =
            sophon::hcc::HccStore::open(&out.join(format!("hcc/{arm}-seed-0.sqlite"))).unwrap();
        assert_eq!(store.stats().unwrap().runs, 2, "{arm}");
    }
    let events =
        std::fs::read_to_string(out.join("runs/hcc/seed-0/playground-series-s3e18/events.jsonl"))
            .unwrap();
    let prefetched: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "wisdom-prefetched")
        .collect();
    assert_eq!(prefetched.len(), 1, "{events}");
    for w in prefetched[0]["entries"].as_array().unwrap() {
        assert_eq!(w["from_competition"], "spaceship-titanic");
        assert!(w["from_run"].as_str().unwrap().contains("recipes"));
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result.summary).unwrap()).unwrap();
    assert_eq!(summary["outcomes"].as_array().unwrap().len(), 4);
    let page = std::fs::read_to_string(&result.report).unwrap();
    for id in [
        "id=\"arms\"",
        "id=\"comparisons\"",
        "id=\"runs\"",
        "<svg",
        "class=\"estimate\"",
    ] {
        assert!(page.contains(id), "{id}");
    }

    // Resumable: a lost cell is resumed from its journal, the finished ones are kept.
    std::fs::remove_file(out.join("runs/hcc/seed-0/playground-series-s3e18/summary.json")).unwrap();
    let again = Arc::new(Cells::default());
    let resumed = run_experiment(&config, &experiment, None, again.clone())
        .await
        .unwrap();
    let seen = again.0.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|(_, _, reused)| *reused).count(),
        3,
        "{seen:?}"
    );
    assert!(seen.contains(&("hcc".into(), "playground-series-s3e18".into(), false)));
    let before = result
        .outcomes
        .iter()
        .find(|o| o.arm == "hcc" && o.competition_id == "playground-series-s3e18")
        .unwrap();
    let after = resumed
        .outcomes
        .iter()
        .find(|o| o.arm == "hcc" && o.competition_id == "playground-series-s3e18")
        .unwrap();
    assert_eq!(
        before.score, after.score,
        "the resumed run replays to the same submission"
    );

    // Another experiment in the same output directory is refused.
    let mut other = experiment.clone();
    other.seeds = vec![5];
    let err = run_experiment(&config, &other, None, Arc::new(Cells::default()))
        .await
        .err()
        .unwrap();
    let err = err.to_string();
    assert!(err.contains("holds another experiment"), "{err}");
}
