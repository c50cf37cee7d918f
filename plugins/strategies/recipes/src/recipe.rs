//! Recipes: the structured solutions this strategy chooses among, the task profile that
//! decides which ones fit, and the code a recipe becomes.

use serde::{Deserialize, Serialize};
use sophon_sdk::json::{self, Value, json};
use std::collections::BTreeMap;

/// The recipe library every job runs (Python; it reads the task's public data at `/data`).
pub const LIBRARY: &str = include_str!("../python/sophon_recipes.py");
pub const LIBRARY_FILE: &str = "sophon_recipes.py";

/// Model families the library implements, and the grids the model may pick settings from.
pub const FAMILIES: &[&str] = &[
    "lightgbm",
    "hist-gradient-boosting",
    "random-forest",
    "extra-trees",
    "linear",
];
pub const LEARNING_RATES: &[f64] = &[0.02, 0.05, 0.1];
pub const NUM_LEAVES: &[u32] = &[15, 31, 63];
pub const N_ESTIMATORS: &[u32] = &[200, 400, 800];
pub const C_VALUES: &[f64] = &[0.3, 1.0, 4.0, 20.0, 100.0];

/// What the library's `profile` mode reports about the task.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Profile {
    pub train_rows: u64,
    pub test_rows: u64,
    pub targets: Vec<String>,
    pub n_targets: u32,
    /// `columns` (targets are train columns) or `one-hot` (targets are one column's values).
    pub target_mode: String,
    /// e.g. `binary`, `multiclass`, `regression`, `text-span`.
    pub task: String,
    /// Most distinct labels of a class target (0 for other targets).
    #[serde(default)]
    pub n_classes: u32,
    #[serde(default)]
    pub n_columns: BTreeMap<String, u32>,
    /// How the library put the tables together (which files, joins, where ids came from).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Profile {
    pub fn count(&self, kind: &str) -> u32 {
        self.n_columns.get(kind).copied().unwrap_or(0)
    }

    pub fn has_text(&self) -> bool {
        self.count("text") > 0
    }

    /// The target is a piece of an input text: one word classifier whose only setting is C.
    pub fn is_span(&self) -> bool {
        self.task == "text-span"
    }

    /// Small, all-numeric data or many classes: linear models usually lead.
    fn favours_linear(&self) -> bool {
        let many_classes =
            (self.target_mode == "one-hot" && self.n_targets > 10) || self.n_classes > 10;
        let small_numeric = self.train_rows < 2000
            && self.count("categorical") + self.count("compound") + self.count("text") == 0;
        many_classes || small_numeric
    }

    /// One line for prompts and reports.
    pub fn describe(&self) -> String {
        let columns: Vec<String> = self
            .n_columns
            .iter()
            .filter(|(kind, _)| kind.as_str() != "id")
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        let targets = match self.target_mode.as_str() {
            "one-hot" => format!(
                "one of {} classes (probabilities per class)",
                self.n_targets
            ),
            "span" => format!("{} (a span of an input text)", self.targets.join(", ")),
            _ if self.n_targets as usize > self.targets.len() => format!(
                "{} targets ({}, ...)",
                self.n_targets,
                self.targets[..3.min(self.targets.len())].join(", ")
            ),
            _ => self.targets.join(", "),
        };
        let classes = match self.n_classes {
            0 => String::new(),
            n => format!(", {n} classes"),
        };
        let tables = match self.notes.is_empty() {
            true => String::new(),
            false => format!("; tables: {}", self.notes.join("; ")),
        };
        format!(
            "{} training rows, {} test rows; predict {targets} ({}{classes}); feature columns: {}{tables}",
            self.train_rows,
            self.test_rows,
            self.task,
            columns.join(", ")
        )
    }
}

/// One structured solution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recipe {
    pub family: String,
    pub learning_rate: f64,
    pub num_leaves: u32,
    pub n_estimators: u32,
    #[serde(rename = "C")]
    pub c: f64,
    pub split_compound: bool,
}

impl Recipe {
    fn trees(family: &str, learning_rate: f64, num_leaves: u32, n_estimators: u32) -> Recipe {
        Recipe {
            family: family.to_string(),
            learning_rate,
            num_leaves,
            n_estimators,
            c: 1.0,
            split_compound: true,
        }
    }

    fn linear(c: f64) -> Recipe {
        Recipe {
            c,
            ..Recipe::trees("linear", 0.05, 31, 400)
        }
    }

    /// `self` with the settings that cannot matter for `profile` at their defaults, so that
    /// recipes differing only there count as one.
    pub fn normalised(mut self, profile: &Profile) -> Recipe {
        if profile.is_span() {
            // The library's span model is a linear word classifier whatever the family.
            return Recipe::linear(self.c);
        }
        if profile.count("compound") == 0 {
            self.split_compound = true;
        }
        self
    }

    /// The settings that matter for this family (what makes two recipes the same).
    pub fn key(&self) -> String {
        match self.family.as_str() {
            "linear" => format!("linear C={} split={}", self.c, self.split_compound),
            "random-forest" | "extra-trees" => format!(
                "{} trees={} split={}",
                self.family, self.n_estimators, self.split_compound
            ),
            _ => format!(
                "{} lr={} leaves={} trees={} split={}",
                self.family,
                self.learning_rate,
                self.num_leaves,
                self.n_estimators,
                self.split_compound
            ),
        }
    }

    /// The library's recipe JSON.
    pub fn to_library(&self, metric: &str, folds: u32, seed: u64) -> Value {
        json!({
            "family": self.family,
            "params": {
                "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves,
                "n_estimators": self.n_estimators,
                "C": self.c,
            },
            "features": {"split_compound": self.split_compound, "count_encode": true, "text": true},
            "folds": folds,
            "metric": metric,
            "seed": seed,
        })
    }

    /// `main.py`: the recipe, readable, calling the library.
    pub fn code(&self, node: &str, why: &str, metric: &str, folds: u32, seed: u64) -> String {
        let recipe = json::to_string_pretty(&self.to_library(metric, folds, seed))
            .expect("a recipe serialises");
        format!(
            "# {node}: {}\n# Why: {}\n# Written by Sophon's `recipes` strategy; {LIBRARY_FILE} (the recipe library) sits next to this file.\nimport json\n\nfrom sophon_recipes import solve\n\nRECIPE = json.loads(r'''\n{recipe}\n''')\n\nif __name__ == \"__main__\":\n    solve(\"/data\", RECIPE, \"submission.csv\")\n",
            self.key(),
            why.replace('\n', " ")
        )
    }
}

/// Recipes in the order the heuristics suggest them for `profile`, best first.
pub fn candidates(profile: &Profile) -> Vec<Recipe> {
    let trees = [
        Recipe::trees("lightgbm", 0.05, 31, 400),
        Recipe::trees("lightgbm", 0.02, 15, 800),
        Recipe::trees("hist-gradient-boosting", 0.05, 31, 400),
        Recipe::trees("extra-trees", 0.05, 31, 400),
        Recipe::trees("random-forest", 0.05, 31, 400),
        Recipe::trees("lightgbm", 0.1, 63, 200),
    ];
    let linear = [
        Recipe::linear(4.0),
        Recipe::linear(20.0),
        Recipe::linear(100.0),
        Recipe::linear(1.0),
    ];
    if profile.is_span() {
        return linear.to_vec();
    }
    let mut ordered: Vec<Recipe> = if profile.has_text() || profile.favours_linear() {
        linear.into_iter().chain(trees).collect()
    } else {
        trees.into_iter().chain(linear).collect()
    };
    if profile.count("compound") > 0 {
        let mut unsplit = ordered[0].clone();
        unsplit.split_compound = false;
        ordered.push(unsplit);
    }
    ordered
}

/// The JSON schema the model answers under, with `families` in suggested order.
pub fn schema(families: &[String]) -> String {
    json!({
        "type": "object",
        "properties": {
            "family": {"type": "string", "enum": families},
            "learning_rate": {"type": "number", "enum": LEARNING_RATES},
            "num_leaves": {"type": "integer", "enum": NUM_LEAVES},
            "n_estimators": {"type": "integer", "enum": N_ESTIMATORS},
            "C": {"type": "number", "enum": C_VALUES},
            "split_compound": {"type": "boolean"},
            "reason": {"type": "string", "maxLength": 120},
        },
        "required": ["family", "learning_rate", "num_leaves", "n_estimators", "C", "split_compound", "reason"],
        "additionalProperties": false,
    })
    .to_string()
}

/// A model's choice, checked against the grids. `Err` says what was wrong.
pub fn parse_choice(text: &str) -> Result<(Recipe, String), String> {
    let start = text.find('{').ok_or("no JSON object in the reply")?;
    let end = text.rfind('}').ok_or("no JSON object in the reply")?;
    if end < start {
        return Err("no JSON object in the reply".into());
    }
    let value: Value =
        json::from_str(&text[start..=end]).map_err(|e| format!("the reply is not JSON: {e}"))?;
    let family = value["family"]
        .as_str()
        .filter(|f| FAMILIES.contains(f))
        .ok_or_else(|| format!("family {} is not one of {FAMILIES:?}", value["family"]))?;
    let number = |name: &str, grid: &[f64]| -> Result<f64, String> {
        value[name]
            .as_f64()
            .filter(|x| grid.iter().any(|g| (g - x).abs() < 1e-9))
            .ok_or_else(|| format!("{name} {} is not one of {grid:?}", value[name]))
    };
    let as_f64 = |grid: &[u32]| grid.iter().map(|&g| f64::from(g)).collect::<Vec<_>>();
    let recipe = Recipe {
        family: family.to_string(),
        learning_rate: number("learning_rate", LEARNING_RATES)?,
        num_leaves: number("num_leaves", &as_f64(NUM_LEAVES))? as u32,
        n_estimators: number("n_estimators", &as_f64(N_ESTIMATORS))? as u32,
        c: number("C", C_VALUES)?,
        split_compound: value["split_compound"].as_bool().unwrap_or(true),
    };
    let reason = value["reason"].as_str().unwrap_or("").trim().to_string();
    Ok((recipe, reason))
}

/// A variation of `recipe` for when every suggested recipe was tried: one grid step of one
/// setting, chosen by `turn`.
pub fn variation(recipe: &Recipe, turn: u64) -> Recipe {
    let mut next = recipe.clone();
    let step = |grid: &[f64], x: f64| {
        let i = grid.iter().position(|g| (g - x).abs() < 1e-9).unwrap_or(0);
        grid[(i + 1 + (turn as usize / 4)) % grid.len()]
    };
    let as_f64 = |grid: &[u32]| grid.iter().map(|&g| f64::from(g)).collect::<Vec<_>>();
    match (recipe.family.as_str(), turn % 4) {
        ("linear", _) => next.c = step(C_VALUES, recipe.c),
        (_, 0) => next.learning_rate = step(LEARNING_RATES, recipe.learning_rate),
        (_, 1) => next.num_leaves = step(&as_f64(NUM_LEAVES), f64::from(recipe.num_leaves)) as u32,
        (_, 2) => {
            next.n_estimators = step(&as_f64(N_ESTIMATORS), f64::from(recipe.n_estimators)) as u32
        }
        _ => next.split_compound = !recipe.split_compound,
    }
    next
}
