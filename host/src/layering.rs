//! The crate's floors, checked by reading its sources: a module imports only from its own
//! floor and the floors below, and no two files import each other, directly or round a cycle.
//!
//! An import is any `crate::…` or `super::…` path outside comments and outside the file's
//! `#[cfg(test)]` module, resolved to the file of its longest module prefix. Re-exports
//! (`pub use`) are a module's facade, not a dependency, and are not counted. Write paths into
//! inline modules (`bindgen!` output) from `crate::`, not `super::`, so they resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest floor first.
const FLOORS: &[&[&str]] = &[
    // Shared vocabulary: errors, units, the terminal, Sophon's Python.
    &["capability", "units", "term", "pyenv"],
    // Capabilities with no plugin in sight, the run contract and the replay journal.
    &["artifacts", "task", "llm", "journal", "run_context"],
    &["jobs", "hcc"],
    // The only module that knows wasm.
    &["runtime"],
    &["builtin", "grading"],
    // Every setting, over the modules it configures.
    &["config"],
    &["run"],
    &["report"],
    &["ab"],
    &["cli"],
];

/// A module path (`["jobs", "batch"]`) and the file that defines it.
type Files = BTreeMap<Vec<String>, PathBuf>;

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

fn module_files(src: &Path) -> Files {
    fn walk(src: &Path, dir: &Path, files: &mut Files) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(src, &path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                files.insert(module, path);
            }
        }
    }
    let mut files = Files::new();
    walk(src, src, &mut files);
    files
}

/// The text whose paths count: no comments, no re-exports, nothing from the test module on.
fn import_text(source: &str) -> String {
    let cut = source.find("#[cfg(test)]\nmod ").unwrap_or(source.len());
    source[..cut]
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            let reexport = line.starts_with("pub use ")
                || (line.starts_with("pub(")
                    && line
                        .split_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with("use ")));
            !line.starts_with("//") && !reexport
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a `use` tree or inline path starting at `text` names: `a::{b, c::d}` gives
/// `a::b` and `a::c::d`.
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(group) = trimmed.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            return split_top_level(&group[..end])
                .into_iter()
                .flat_map(paths)
                .map(|tail| prefix.iter().cloned().chain(tail).collect())
                .collect();
        }
        let ident_len = trimmed
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        if ident_len == 0 {
            return vec![prefix];
        }
        prefix.push(trimmed[..ident_len].to_string());
        match trimmed[ident_len..].trim_start().strip_prefix("::") {
            Some(next) => rest = next,
            None => return vec![prefix],
        }
    }
}

fn split_top_level(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// Which files each file imports from.
fn import_graph(files: &Files) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let resolve = |path: &[String]| {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| files.contains_key(prefix))
    };
    let mut graph = BTreeMap::new();
    for (module, file) in files {
        let text = import_text(&std::fs::read_to_string(file).unwrap());
        let mut targets = BTreeSet::new();
        for (at, _) in text.match_indices("::") {
            let before = &text[..at];
            let Some(keyword) = ["crate", "super"].into_iter().find(|k| before.ends_with(k)) else {
                continue;
            };
            if before[..before.len() - keyword.len()]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$')
            {
                continue; // `$crate::`, `foo_crate::`, the second `super` of `super::super::`
            }
            let root = match keyword {
                "crate" => Vec::new(),
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            };
            for mut path in paths(&text[at + 2..]) {
                let mut root = root.clone();
                while path.first().is_some_and(|p| p == "super") {
                    path.remove(0);
                    root.pop();
                }
                let full: Vec<String> = root.iter().cloned().chain(path).collect();
                if let Some(target) = resolve(&full)
                    && !target.is_empty()
                    && &target != module
                {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The cycles of `graph` (its strongly connected components of more than one file).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    let nodes: Vec<&Vec<String>> = graph.keys().collect();
    let index: BTreeMap<&Vec<String>, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let reaches = |from: usize| {
        let mut seen = vec![false; nodes.len()];
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            for next in &graph[nodes[n]] {
                let i = index[next];
                if !seen[i] {
                    seen[i] = true;
                    stack.push(i);
                }
            }
        }
        seen
    };
    let reach: Vec<Vec<bool>> = (0..nodes.len()).map(reaches).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (a, from_a) in reach.iter().enumerate() {
        let component: Vec<String> = (0..nodes.len())
            .filter(|&b| b != a && from_a[b] && reach[b][a])
            .chain([a])
            .map(|n| nodes[n].join("/"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if component.len() > 1 {
            found.insert(component);
        }
    }
    found.into_iter().collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_top_level_module_has_a_floor() {
    let files = module_files(&src());
    let unplaced: BTreeSet<&str> = files
        .keys()
        .filter_map(|m| m.first().map(String::as_str))
        .filter(|m| floor_of(m).is_none() && *m != "layering")
        .collect();
    assert!(unplaced.is_empty(), "add {unplaced:?} to FLOORS");
}

#[test]
fn no_module_imports_from_a_higher_floor() {
    let files = module_files(&src());
    let mut upward = Vec::new();
    for (from, targets) in import_graph(&files) {
        for to in targets {
            if let (Some(a), Some(b)) = (
                from.first().and_then(|m| floor_of(m)),
                to.first().and_then(|m| floor_of(m)),
            ) && b > a
            {
                upward.push(format!("{} -> {}", from.join("/"), to.join("/")));
            }
        }
    }
    assert!(upward.is_empty(), "imports that go up a floor: {upward:#?}");
}

#[test]
fn no_files_import_each_other() {
    let cycles = cycles(&import_graph(&module_files(&src())));
    assert!(cycles.is_empty(), "files importing each other: {cycles:#?}");
}

#[test]
fn the_checker_sees_imports_groups_and_cycles() {
    assert_eq!(
        paths("a::{b, c::{d, e}}, x"),
        vec![
            vec!["a".to_string(), "b".into()],
            vec!["a".into(), "c".into(), "d".into()],
            vec!["a".into(), "c".into(), "e".into()],
        ]
    );
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = [
        (vec!["a".into()], [vec!["b".into()]].into()),
        (vec!["b".into()], [vec!["a".into()]].into()),
        (vec!["c".into()], [vec!["a".into()]].into()),
    ]
    .into();
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".into()]]);
    assert_eq!(
        import_text("use crate::x;\n// crate::y\npub use crate::z;\n#[cfg(test)]\nmod tests {}"),
        "use crate::x;"
    );
}
