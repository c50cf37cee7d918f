//! The WIT contract evolves without breaking plugins: `sophon:host@0.2.0` only adds to the
//! frozen 0.1.0 contract (`wit/since_v0.1.0`), each addition marked `@since(version = 0.2.0)`,
//! and a plugin built against 0.1.0 still loads and runs on this host, which serves 0.2.0.

use sophon::artifacts::ArtifactStore;
use sophon::hcc::CognitiveCache;
use sophon::run::RunInfo;
use sophon::run::session::SessionRun;
use sophon::runtime::inspect::ComponentFacts;
use sophon::runtime::{HostServices, compat};
use sophon_tests::services::ScratchHcc;
use sophon_tests::{WORKER_GRANTS, fixture, load, test_runtime};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wit_parser::{Handle, PackageId, Resolve, Stability, Type, TypeDefKind};

const T: Duration = Duration::from_secs(30);

const LEGACY_GRANTS: &str = r#"
[grants]
hcc = { scopes = ["experience:write", "knowledge:read", "wisdom:read"] }
artifacts = {}
"#;

fn session(store: &Arc<ArtifactStore>) -> Arc<SessionRun> {
    Arc::new(
        SessionRun::new(RunInfo {
            run_id: "run-old".into(),
            competition_id: "toy-competition".into(),
            seed: 11,
            arm: None,
        })
        .with_artifacts(store.clone()),
    )
}

#[tokio::test]
async fn a_plugin_built_against_0_1_0_loads_and_runs_on_the_0_2_0_host() {
    let wasm = std::fs::read(fixture("legacy")).unwrap();
    let facts = ComponentFacts::read(&wasm).unwrap();
    let host_imports: Vec<&String> = facts
        .imports
        .iter()
        .filter(|i| i.starts_with("sophon:host/"))
        .collect();
    assert!(host_imports.len() >= 4, "{host_imports:?}");
    assert!(
        host_imports.iter().all(|i| i.ends_with("@0.1.0")),
        "the fixture must be a 0.1.0 plugin: {host_imports:?}"
    );

    // What the host links: the same component with its host imports renamed to 0.2.0,
    // everything else as it was; a current plugin passes through untouched.
    let renamed = compat::serve_current(&wasm).unwrap();
    assert!(matches!(renamed, Cow::Owned(_)));
    let renamed_facts = ComponentFacts::read(&renamed).unwrap();
    let expected: Vec<String> = facts
        .imports
        .iter()
        .map(|i| compat::current_name(i).unwrap_or_else(|| i.clone()))
        .collect();
    assert_eq!(renamed_facts.imports, expected);
    assert_eq!(renamed_facts.exports, facts.exports);
    assert_eq!(renamed.len(), wasm.len());
    let current = std::fs::read(fixture("worker")).unwrap();
    assert!(matches!(
        compat::serve_current(&current).unwrap(),
        Cow::Borrowed(_)
    ));

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::open(dir.path(), 1 << 20).unwrap());
    let run = session(&store);
    let hcc = ScratchHcc::new("run-old", "toy-competition");
    let runtime = test_runtime();
    let plugin = load(&runtime, "legacy", LEGACY_GRANTS);
    let services = HostServices {
        run: Some(run.clone()),
        artifacts: Some(store.clone()),
        hcc: Some(hcc.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance.run("id,target\n1,0.75\n", T).await.unwrap();

    let parts: Vec<&str> = outcome.summary.split('|').collect();
    let [run_id, seed, back, sha256, adopted, phase, seq, steps] = parts[..] else {
        panic!("unexpected summary {:?}", outcome.summary);
    };
    assert_eq!((run_id, seed), ("run-old", "11"));
    assert_eq!(back, "id,target\n1,0.75\n", "artifacts.create and read");
    assert_eq!((adopted, phase, steps), ("true", "1", "1"));
    let best = run.best().expect("report-best reached the run");
    assert_eq!((best.node.as_str(), best.metric), ("legacy-1", 0.75));
    assert_eq!(store.stat(&best.submission).unwrap().sha256, sha256);
    assert_eq!(run.nodes()[0].plan, "a plugin from the 0.1.0 days");
    assert!(
        run.log_lines()
            .iter()
            .any(|(plugin, _, line)| plugin == "legacy" && line == "legacy plugin ran")
    );
    // The HCC event (a variant with a payload, an option, a float) arrived intact.
    let events = hcc.events(Some(1), 0, 10).await.unwrap();
    let event = events
        .iter()
        .find(|e| e.id.to_string() == seq)
        .expect("the recorded event");
    assert_eq!(
        event.event.content,
        "recorded through sophon:host/hcc@0.1.0"
    );
    assert_eq!(event.event.metric, Some(0.75));
    assert_eq!(format!("{:?}", event.event.kind), r#"Other("legacy")"#);
}

#[tokio::test]
async fn the_0_2_0_addition_reaches_a_current_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::open(dir.path(), 1 << 20).unwrap());
    let run = session(&store);
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let services = HostServices {
        run: Some(run.clone()),
        artifacts: Some(store.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    assert_eq!(instance.run("best", T).await.unwrap().summary, "none");
    instance.run("artifacts", T).await.unwrap();
    let best = run.best().unwrap();
    assert_eq!(
        instance.run("best", T).await.unwrap().summary,
        format!("n1|{}|0.5", best.submission)
    );
    // Without a run there is no best.
    let mut alone = plugin.strategy(HostServices::default()).await.unwrap();
    assert_eq!(alone.run("best", T).await.unwrap().summary, "none");
}

/// A parsed WIT directory and its `sophon:host` and `sophon:plugin` packages.
struct Contract {
    resolve: Resolve,
    host: PackageId,
    plugin: PackageId,
}

impl Contract {
    fn read(dir: &Path) -> Contract {
        let mut resolve = Resolve::default();
        let (plugin, _) = resolve
            .push_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        let host = resolve
            .packages
            .iter()
            .find(|(_, p)| p.name.namespace == "sophon" && p.name.name == "host")
            .map(|(id, _)| id)
            .expect("a sophon:host package");
        Contract {
            resolve,
            host,
            plugin,
        }
    }

    fn version(&self, package: PackageId) -> String {
        let version = self.resolve.packages[package].name.version.as_ref();
        version.map(|v| v.to_string()).unwrap_or_default()
    }

    /// Every interface of `package` by name: its types and functions, each as (structure,
    /// stability). The structure is spelled out through every named type it uses, so a
    /// change anywhere below a function shows in that function.
    fn items(&self, package: PackageId) -> BTreeMap<String, (String, Stability)> {
        let mut items = BTreeMap::new();
        for (name, &id) in &self.resolve.packages[package].interfaces {
            let interface = &self.resolve.interfaces[id];
            items.insert(
                format!("interface {name}"),
                (String::new(), interface.stability.clone()),
            );
            for (type_name, &ty) in &interface.types {
                let def = &self.resolve.types[ty];
                items.insert(
                    format!("{name}.{type_name}"),
                    (self.kind(&def.kind), def.stability.clone()),
                );
            }
            for (function_name, function) in &interface.functions {
                let params: Vec<String> = function
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name, self.ty(&p.ty)))
                    .collect();
                let result = function.result.as_ref().map(|t| self.ty(t));
                items.insert(
                    format!("{name}.{function_name}"),
                    (
                        format!("func({}) -> {result:?}", params.join(", ")),
                        function.stability.clone(),
                    ),
                );
            }
        }
        items
    }

    fn ty(&self, ty: &Type) -> String {
        match ty {
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                match (&def.name, &def.kind) {
                    (Some(name), TypeDefKind::Resource) => format!("resource {name}"),
                    (Some(name), kind) => format!("{name} {}", self.kind(kind)),
                    (None, kind) => self.kind(kind),
                }
            }
            primitive => format!("{primitive:?}"),
        }
    }

    fn kind(&self, kind: &TypeDefKind) -> String {
        let opt = |t: &Option<Type>| t.as_ref().map(|t| self.ty(t)).unwrap_or("_".into());
        match kind {
            TypeDefKind::Record(r) => {
                let fields: Vec<String> = r
                    .fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, self.ty(&f.ty)))
                    .collect();
                format!("record {{{}}}", fields.join(", "))
            }
            TypeDefKind::Variant(v) => {
                let cases: Vec<String> = v
                    .cases
                    .iter()
                    .map(|c| format!("{}({})", c.name, opt(&c.ty)))
                    .collect();
                format!("variant {{{}}}", cases.join(", "))
            }
            TypeDefKind::Enum(e) => {
                let cases: Vec<&str> = e.cases.iter().map(|c| c.name.as_str()).collect();
                format!("enum {{{}}}", cases.join(", "))
            }
            TypeDefKind::Flags(f) => {
                let flags: Vec<&str> = f.flags.iter().map(|f| f.name.as_str()).collect();
                format!("flags {{{}}}", flags.join(", "))
            }
            TypeDefKind::Tuple(t) => {
                let types: Vec<String> = t.types.iter().map(|t| self.ty(t)).collect();
                format!("tuple<{}>", types.join(", "))
            }
            TypeDefKind::Option(t) => format!("option<{}>", self.ty(t)),
            TypeDefKind::Result(r) => format!("result<{}, {}>", opt(&r.ok), opt(&r.err)),
            TypeDefKind::List(t) => format!("list<{}>", self.ty(t)),
            TypeDefKind::Handle(Handle::Own(id)) => format!("own<{}>", self.ty(&Type::Id(*id))),
            TypeDefKind::Handle(Handle::Borrow(id)) => {
                format!("borrow<{}>", self.ty(&Type::Id(*id)))
            }
            TypeDefKind::Type(t) => self.ty(t),
            TypeDefKind::Resource => "resource".into(),
            other => panic!("the check does not know WIT type {other:?}: teach it"),
        }
    }
}

fn wit_dir(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wit")
        .join(relative)
}

/// What breaks the evolution rules between the frozen `old` contract and `new`: a 0.1.0 item
/// changed or gone, or an addition without `@since(version = <new's version>)`.
fn evolution_problems(old: &Contract, new: &Contract) -> Vec<String> {
    let (before, after) = (old.items(old.host), new.items(new.host));
    let mut problems = Vec::new();
    for (name, (shape, _)) in &before {
        match after.get(name) {
            None => problems.push(format!("`{name}` vanished since 0.1.0")),
            Some((now, _)) if now != shape => problems.push(format!(
                "`{name}` changed since 0.1.0: was {shape}, is {now}"
            )),
            Some(_) => {}
        }
    }
    let version = new.version(new.host);
    for (name, (_, stability)) in after.iter().filter(|(k, _)| !before.contains_key(*k)) {
        let since = match stability {
            Stability::Stable { since, .. } => since.to_string(),
            other => format!("{other:?}"),
        };
        if since != version {
            problems.push(format!(
                "`{name}` was added after 0.1.0 without @since(version = {version})"
            ));
        }
    }
    problems
}

#[test]
fn sophon_host_0_2_0_only_adds_to_the_frozen_0_1_0_and_marks_each_addition() {
    let old = Contract::read(&wit_dir("since_v0.1.0"));
    let new = Contract::read(&wit_dir(""));
    assert_eq!(old.version(old.host), "0.1.0");
    assert_eq!(new.version(new.host), sophon::runtime::CURRENT_HOST_VERSION);
    assert!(old.items(old.host).len() > 100);
    let problems = evolution_problems(&old, &new);
    assert!(
        problems.is_empty(),
        "a plugin built against 0.1.0 would break, or an addition is unmarked; add new items \
         with @since instead of changing old ones:\n{}",
        problems.join("\n")
    );
    assert!(new.items(new.host).contains_key("run.best"));
}

/// The check itself catches what it is for: on a copy of `wit/` with a 0.1.0 record field
/// changed and an addition's `@since` dropped, it names both.
#[test]
fn the_evolution_check_catches_a_changed_item_and_an_unmarked_addition() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&wit_dir(""), copy.path());
    let run_wit = copy.path().join("deps/host/run.wit");
    let text = std::fs::read_to_string(&run_wit).unwrap();
    let broken = text
        .replace("        seed: u64,", "        seed: u32,")
        .replace(
            "    @since(version = 0.2.0)\n    best: func()",
            "    best: func()",
        );
    assert_ne!(broken, text);
    std::fs::write(&run_wit, broken).unwrap();
    let old = Contract::read(&wit_dir("since_v0.1.0"));
    let problems = evolution_problems(&old, &Contract::read(copy.path()));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("`run.run-info` changed")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("`run.info` changed")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("`run.best` was added after 0.1.0 without @since")),
        "{problems:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn what_plugins_export_is_unchanged_since_0_1_0() {
    let old = Contract::read(&wit_dir("since_v0.1.0"));
    let new = Contract::read(&wit_dir(""));
    assert_eq!(old.version(old.plugin), new.version(new.plugin));
    // The export interfaces spelled out through the host types they use.
    assert_eq!(old.items(old.plugin), new.items(new.plugin));
}
