//! The per-job sandbox: a bubblewrap (`bwrap`) invocation that gives a job its own mount,
//! network, pid, IPC and UTS namespaces (no network at all: not even the host's loopback), the
//! system directories read-only, its working directory read-write at `/work`, its data mounts
//! read-only, a private `/tmp`, and nothing else of the host — no `$HOME`, no Sophon files, no
//! private answers, no `/etc/passwd`. Capabilities are dropped; the sandbox dies with Sophon.
//!
//! Mount targets a job asks for are checked here: absolute and normalised, or relative to
//! `/work`, and never over the system directories or the sandbox's own mount points.

use crate::capability::{CapResult, CapabilityError};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Where the job's working directory appears inside the sandbox.
pub const WORKDIR: &str = "/work";

/// System directories bound read-only when they exist.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
];
/// Single system files bound read-only when they exist.
pub const SYSTEM_FILES: &[&str] = &["/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types"];

/// How jobs are isolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap at this path.
    Bubblewrap(PathBuf),
    /// The operator's explicit opt-out: jobs run as plain processes (logged loudly per job).
    Unsandboxed,
}

impl Isolation {
    /// Find `bwrap` (at `configured`, else on `PATH`). Its absence is an error that names the fix.
    pub fn bubblewrap(configured: Option<&Path>) -> Result<Isolation, String> {
        let candidates: Vec<PathBuf> = match configured {
            Some(path) => vec![path.to_path_buf()],
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join("bwrap")).collect())
                .unwrap_or_default(),
        };
        candidates
            .into_iter()
            .find(|p| p.is_file())
            .map(Isolation::Bubblewrap)
            .ok_or_else(|| {
                "jobs run in a bubblewrap sandbox, but `bwrap` is not installed: install it \
                 (Debian/Ubuntu: `apt-get install bubblewrap`), or — knowing that jobs then run \
                 untrusted code unsandboxed — set `sandbox = \"none\"` under [jobs.local] in sophon.toml"
                    .to_string()
            })
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Isolation::Bubblewrap(path) => write!(f, "bubblewrap ({})", path.display()),
            Isolation::Unsandboxed => f.write_str("none: jobs run UNSANDBOXED"),
        }
    }
}

/// What one job's sandbox contains.
#[derive(Clone, Debug, Default)]
pub struct SandboxSpec {
    /// Host directory bound read-write at [`WORKDIR`].
    pub workdir: PathBuf,
    /// Read-only mounts: (host path, absolute path inside the sandbox).
    pub mounts: Vec<(PathBuf, String)>,
    /// Extra read-only binds at the same path (e.g. the jobs' Python environment).
    pub extra_ro: Vec<PathBuf>,
    /// Devices bound into the sandbox (GPUs).
    pub devices: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
}

/// The argv that runs `spec` under `isolation`: bwrap's arguments and the command, or the
/// command alone when unsandboxed (which then runs in `spec.workdir`).
pub fn argv(isolation: &Isolation, spec: &SandboxSpec) -> Vec<OsString> {
    let Isolation::Bubblewrap(bwrap) = isolation else {
        return spec.command.iter().map(OsString::from).collect();
    };
    let mut args: Vec<OsString> = vec![bwrap.into()];
    args.extend(
        [
            "--unshare-all",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        .map(OsString::from),
    );
    for dir in SYSTEM_DIRS.iter().chain(SYSTEM_FILES) {
        if Path::new(dir).exists() {
            args.extend(["--ro-bind".into(), OsString::from(dir), OsString::from(dir)]);
        }
    }
    for path in &spec.extra_ro {
        args.extend(["--ro-bind".into(), path.into(), path.into()]);
    }
    args.extend(["--bind".into(), spec.workdir.clone().into(), WORKDIR.into()]);
    for (host, target) in &spec.mounts {
        args.extend(["--ro-bind".into(), host.into(), target.into()]);
    }
    for device in &spec.devices {
        args.extend(["--dev-bind".into(), device.into(), device.into()]);
    }
    args.extend(["--chdir".into(), WORKDIR.into(), "--clearenv".into()]);
    for (key, value) in &spec.env {
        args.extend(["--setenv".into(), key.into(), value.into()]);
    }
    args.push("--".into());
    args.extend(spec.command.iter().map(OsString::from));
    args
}

/// The absolute in-sandbox path for a mount `target` (absolute, or relative to `/work`).
pub fn mount_target(target: &str) -> CapResult<String> {
    let invalid =
        |why: &str| CapabilityError::InvalidArgument(format!("mount target {target:?} {why}"));
    if target.is_empty() || target.contains('\0') {
        return Err(invalid("is empty or contains NUL"));
    }
    let path = Path::new(target);
    let mut normal = PathBuf::from("/");
    if path.is_relative() {
        normal.push(&WORKDIR[1..]);
    }
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(part) => normal.push(part),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid("must not contain `.` or `..`"));
            }
        }
    }
    let reserved = ["/proc", "/dev", "/tmp", "/etc"].iter().chain(SYSTEM_DIRS);
    for dir in reserved {
        if normal.starts_with(dir) {
            return Err(invalid(&format!("would cover the sandbox's {dir}")));
        }
    }
    if normal == Path::new("/") || normal == Path::new(WORKDIR) {
        return Err(invalid(
            "would cover the sandbox root or the working directory",
        ));
    }
    Ok(normal.display().to_string())
}

/// A path relative to the working directory, as a job file or output names it.
pub fn relative_path(path: &str) -> CapResult<PathBuf> {
    let invalid = |why: &str| CapabilityError::InvalidArgument(format!("path {path:?} {why}"));
    if path.is_empty() || path.contains('\0') {
        return Err(invalid("is empty or contains NUL"));
    }
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("must be relative to the working directory"));
            }
            Component::ParentDir => return Err(invalid("must not contain `..`")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid("names the working directory itself"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_targets_are_normalised_and_kept_off_system_paths() {
        assert_eq!(mount_target("/data").unwrap(), "/data");
        assert_eq!(mount_target("input").unwrap(), "/work/input");
        assert_eq!(mount_target("/data/public/").unwrap(), "/data/public");
        for bad in [
            "",
            "/",
            "/work",
            "/usr/lib",
            "/proc/x",
            "../etc",
            "/data/../usr",
            "/etc/passwd",
            "/tmp",
        ] {
            assert!(mount_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn job_paths_stay_inside_the_workdir() {
        assert_eq!(relative_path("main.py").unwrap(), PathBuf::from("main.py"));
        assert_eq!(
            relative_path("./src/a.py").unwrap(),
            PathBuf::from("src/a.py")
        );
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".", "a\0b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_bwrap_argv_isolates_and_binds_what_the_job_needs() {
        let spec = SandboxSpec {
            workdir: PathBuf::from("/jobs/1/work"),
            mounts: vec![(PathBuf::from("/comp/public"), "/data".into())],
            env: vec![("OMP_NUM_THREADS".into(), "2".into())],
            command: vec!["python".into(), "main.py".into()],
            ..SandboxSpec::default()
        };
        let argv: Vec<String> = argv(&Isolation::Bubblewrap("/usr/bin/bwrap".into()), &spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = argv.join(" ");
        assert!(
            joined.starts_with("/usr/bin/bwrap --unshare-all --die-with-parent --cap-drop ALL"),
            "{joined}"
        );
        assert!(joined.contains("--bind /jobs/1/work /work"), "{joined}");
        assert!(joined.contains("--ro-bind /comp/public /data"), "{joined}");
        assert!(
            joined.contains("--clearenv --setenv OMP_NUM_THREADS 2 -- python main.py"),
            "{joined}"
        );
        assert!(
            !joined.contains("/root") && !joined.contains("/home"),
            "{joined}"
        );
        let plain = argv_strings(&Isolation::Unsandboxed, &spec);
        assert_eq!(plain, ["python", "main.py"]);
    }

    fn argv_strings(isolation: &Isolation, spec: &SandboxSpec) -> Vec<String> {
        argv(isolation, spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }
}
