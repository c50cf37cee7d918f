//! The per-job sandbox: a bubblewrap (`bwrap`) invocation that gives a job its own mount,
//! network, pid, IPC and UTS namespaces (no network at all: not even the host's loopback), a new
//! Unix session (no controlling terminal: `/dev/tty` does not open), the system directories
//! read-only, its working directory read-write at `/work`, its data mounts read-only, private
//! `/tmp` and `/dev/shm` (sized to the job's memory), `/proc/sys` and `/proc/sysrq-trigger`
//! read-only, the seccomp filters of [`super::seccomp`], and nothing else of the host — no
//! `$HOME`, no Sophon files, no private answers, no `/etc/passwd`. The sandbox dies with Sophon.
//!
//! Who the job is ([`JobUser`]): when Sophon is not root, the job keeps Sophon's own uid inside
//! a user namespace with no capabilities. When Sophon runs as root (CI, GPU machines, most
//! containers) a job must never be host uid 0 — a user namespace would only map it back to
//! root — so bubblewrap sets the sandbox up as root without one and the job starts through
//! `setpriv`, which switches to an unprivileged uid/gid (default 65534), clears supplementary
//! groups, every capability set and the bounding set, and sets `no_new_privs` before the job's
//! own command runs. Its working directory is handed to that uid.
//!
//! Mount targets a job asks for are checked here: absolute and normalised, or relative to
//! `/work`, and never over the system directories or the sandbox's own mount points.

use crate::capability::{CapResult, CapabilityError};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Where the job's working directory appears inside the sandbox.
pub const WORKDIR: &str = "/work";

/// The uid and gid jobs get when Sophon runs as root, unless `job-uid`/`job-gid` say otherwise
/// (`nobody`/`nogroup` on Debian).
pub const DEFAULT_JOB_UID: u32 = 65534;
pub const DEFAULT_JOB_GID: u32 = 65534;

/// The file descriptors (in bwrap's process) that carry the seccomp filters: deny, then nosys.
pub const SECCOMP_FDS: [i32; 2] = [3, 4];

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
/// Parts of the sandbox's `/proc` covered read-only (bubblewrap covers `irq` and `bus`).
pub const PROC_READ_ONLY: &[&str] = &["/proc/sys", "/proc/sysrq-trigger"];

/// Why the sandbox cannot be set up: a tool it needs is missing, or the operator asked for jobs
/// to run as root. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "job-uid/job-gid = 0 would run jobs as root on the host: choose an unprivileged \
         id (default 65534)"
    )]
    RootJobUser,
    #[error(
        "Sophon runs as root, so jobs switch to an unprivileged uid with `setpriv`, which is \
         not installed: install util-linux (Debian/Ubuntu: `apt-get install util-linux`)"
    )]
    NoSetpriv,
    #[error(
        "jobs run in a bubblewrap sandbox, but `bwrap` is not installed: install it \
         (Debian/Ubuntu: `apt-get install bubblewrap`), or — knowing that jobs then run \
         untrusted code unsandboxed — set `sandbox = \"none\"` under [jobs.local] in sophon.toml"
    )]
    NoBwrap,
}

/// How jobs are isolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap.
    Bubblewrap(Bubblewrap),
    /// The operator's explicit opt-out: jobs run as plain processes (logged loudly per job).
    Unsandboxed,
}

/// A bubblewrap sandbox: where `bwrap` is and who jobs run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bubblewrap {
    pub bwrap: PathBuf,
    pub user: JobUser,
}

/// Who a sandboxed job is on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobUser {
    /// Sophon is not root: the job has Sophon's uid, in a user namespace, with no capabilities.
    Invoker { uid: u32 },
    /// Sophon is root: the job drops to `uid`/`gid` through `setpriv` before its command runs.
    Dropped {
        uid: u32,
        gid: u32,
        setpriv: PathBuf,
    },
}

impl JobUser {
    /// Who jobs are when this process (effective uid `euid`) starts them: `uid`/`gid` are the
    /// operator's `job-uid`/`job-gid` (used only as root). Uid 0 is refused.
    pub fn for_process(
        euid: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<JobUser, SandboxError> {
        if uid == Some(0) || gid == Some(0) {
            return Err(SandboxError::RootJobUser);
        }
        if euid != 0 {
            return Ok(JobUser::Invoker { uid: euid });
        }
        let setpriv = find_program("setpriv").ok_or(SandboxError::NoSetpriv)?;
        Ok(JobUser::Dropped {
            uid: uid.unwrap_or(DEFAULT_JOB_UID),
            gid: gid.unwrap_or(DEFAULT_JOB_GID),
            setpriv,
        })
    }

    /// The host uid and gid the job runs as (the invoker's gid is its uid's primary group).
    pub fn ids(&self) -> (u32, Option<u32>) {
        match self {
            JobUser::Invoker { uid } => (*uid, None),
            JobUser::Dropped { uid, gid, .. } => (*uid, Some(*gid)),
        }
    }

    /// In words, for `sophon job resources`.
    pub fn describe(&self) -> String {
        match self {
            JobUser::Invoker { uid } => {
                format!("uid {uid} (Sophon's own), in a user namespace, no capabilities")
            }
            JobUser::Dropped { uid, gid, .. } => format!(
                "uid {uid}, gid {gid} (Sophon runs as root; jobs drop to this unprivileged user \
                 with no capabilities and no_new_privs)"
            ),
        }
    }
}

/// `name` in the usual system directories or on `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

impl Isolation {
    /// Find `bwrap` (at `configured`, else on `PATH`) and decide who jobs run as (see
    /// [`JobUser::for_process`]). A missing tool is an error that names the fix.
    pub fn bubblewrap(
        configured: Option<&Path>,
        job_uid: Option<u32>,
        job_gid: Option<u32>,
    ) -> Result<Isolation, SandboxError> {
        let candidates: Vec<PathBuf> = match configured {
            Some(path) => vec![path.to_path_buf()],
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join("bwrap")).collect())
                .unwrap_or_default(),
        };
        let bwrap = candidates
            .into_iter()
            .find(|p| p.is_file())
            .ok_or(SandboxError::NoBwrap)?;
        let user = JobUser::for_process(effective_uid(), job_uid, job_gid)?;
        Ok(Isolation::Bubblewrap(Bubblewrap { bwrap, user }))
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Isolation::Bubblewrap(b) => write!(f, "bubblewrap ({})", b.bwrap.display()),
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
    /// Size of each of the job's in-memory filesystems (`/tmp`, `/dev/shm`), in bytes.
    pub tmpfs_bytes: Option<u64>,
    /// Whether bwrap finds the seccomp filters at [`SECCOMP_FDS`].
    pub seccomp: bool,
}

/// The argv that runs `spec` under `isolation`: bwrap's arguments and the command, or the
/// command alone when unsandboxed (which then runs in `spec.workdir`).
pub fn argv(isolation: &Isolation, spec: &SandboxSpec) -> Vec<OsString> {
    let (mut options, command) = argv_parts(isolation, spec);
    options.extend(command);
    options
}

/// [`argv`] in two parts: bwrap and its options (empty when unsandboxed), then `--` and what
/// runs in the sandbox. A batch script adds node-specific options between the two.
///
/// The options come in a fixed order: namespaces and capabilities, the in-sandbox filesystems
/// and seccomp fds, the binds, then the working directory and environment.
pub fn argv_parts(isolation: &Isolation, spec: &SandboxSpec) -> (Vec<OsString>, Vec<OsString>) {
    let Isolation::Bubblewrap(sandbox) = isolation else {
        return (
            Vec::new(),
            spec.command.iter().map(OsString::from).collect(),
        );
    };
    let mut args: Vec<OsString> = vec![sandbox.bwrap.clone().into()];
    args.extend(isolation_flags(&sandbox.user).iter().map(OsString::from));
    push_own_filesystems(&mut args, spec);
    push_binds(&mut args, spec);
    push_environment(&mut args, spec);
    (args, sandboxed_command(&sandbox.user, spec))
}

/// bwrap's namespace and capability flags for a job run as `user`.
fn isolation_flags(user: &JobUser) -> &'static [&'static str] {
    match user {
        JobUser::Invoker { .. } => &[
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ],
        // No user namespace (it would map the job to root); setpriv needs these three
        // capabilities to drop to the job's uid and then clears every set.
        JobUser::Dropped { .. } => &[
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_SETPCAP",
        ],
    }
}

/// The sandbox's own filesystems: `/proc` (with [`PROC_READ_ONLY`] covered), `/dev`, the
/// sized `/dev/shm` and `/tmp`, then the seccomp fds when `spec` asks for them.
fn push_own_filesystems(args: &mut Vec<OsString>, spec: &SandboxSpec) {
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&["--proc", "/proc"]);
    for path in PROC_READ_ONLY {
        if Path::new(path).exists() {
            push(&["--ro-bind", path, path]);
        }
    }
    push(&["--dev", "/dev"]);
    let size = spec.tmpfs_bytes.map(|b| b.to_string());
    for tmpfs in ["/dev/shm", "/tmp"] {
        args.extend(["--perms".into(), "1777".into()]);
        if let Some(size) = &size {
            args.extend(["--size".into(), size.into()]);
        }
        args.extend(["--tmpfs".into(), tmpfs.into()]);
    }
    if spec.seccomp {
        for fd in SECCOMP_FDS {
            args.extend(["--add-seccomp-fd".into(), fd.to_string().into()]);
        }
    }
}

/// What the sandbox shows of the host: the system directories and files read-only, the
/// reachable parents of bind targets, the extra read-only binds, the working directory
/// read-write at [`WORKDIR`], the data mounts read-only and the devices.
fn push_binds(args: &mut Vec<OsString>, spec: &SandboxSpec) {
    for dir in SYSTEM_DIRS.iter().chain(SYSTEM_FILES) {
        if Path::new(dir).exists() {
            args.extend(["--ro-bind".into(), OsString::from(dir), OsString::from(dir)]);
        }
    }
    // Bind targets' parents would otherwise copy the host's modes (e.g. /root's 0700), and a
    // job dropped to another uid could not reach what is bound below them.
    let targets = spec
        .extra_ro
        .iter()
        .map(PathBuf::as_path)
        .chain(spec.mounts.iter().map(|(_, target)| Path::new(target)));
    for dir in parents_to_create(targets) {
        args.extend(["--perms".into(), "0755".into(), "--dir".into(), dir.into()]);
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
}

/// The job starts in [`WORKDIR`] with the host's environment cleared and only `spec.env` set.
fn push_environment(args: &mut Vec<OsString>, spec: &SandboxSpec) {
    args.extend(["--chdir".into(), WORKDIR.into(), "--clearenv".into()]);
    for (key, value) in &spec.env {
        args.extend(["--setenv".into(), key.into(), value.into()]);
    }
}

/// `--` and the job's command; a job `user` that drops privileges starts it through `setpriv`
/// (clearing groups, every capability set and the bounding set, and setting no_new_privs).
fn sandboxed_command(user: &JobUser, spec: &SandboxSpec) -> Vec<OsString> {
    let mut command: Vec<OsString> = vec!["--".into()];
    if let JobUser::Dropped { uid, gid, setpriv } = user {
        command.push(setpriv.into());
        command.extend(
            [
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ]
            .map(OsString::from),
        );
    }
    command.extend(spec.command.iter().map(OsString::from));
    command
}

/// The directories above bind targets that the sandbox must create itself (readable by every
/// uid), shallowest first: not `/`, and nothing inside the sandbox's own mounts (system
/// directories, `/proc`, `/dev`, `/tmp`, `/work`), which exist already.
fn parents_to_create<'a>(targets: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let own = ["/proc", "/dev", "/tmp", WORKDIR];
    let mut dirs: Vec<PathBuf> = Vec::new();
    for target in targets {
        let mut ancestors: Vec<&Path> = target.ancestors().skip(1).collect();
        ancestors.reverse();
        for dir in ancestors {
            let inside_mount = SYSTEM_DIRS.iter().chain(&own).any(|m| dir.starts_with(m));
            if dir == Path::new("/") || inside_mount || dirs.iter().any(|d| d == dir) {
                continue;
            }
            dirs.push(dir.to_path_buf());
        }
    }
    dirs
}

/// Hand `dir` and everything in it to the job's user (only when jobs drop to another uid), so
/// the job can write its working directory. Symlinks are changed themselves, never followed.
pub fn hand_over(user: &JobUser, dir: &Path) -> std::io::Result<()> {
    let JobUser::Dropped { uid, gid, .. } = user else {
        return Ok(());
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(*uid), Some(*gid))?;
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
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
            tmpfs_bytes: Some(1 << 30),
            seccomp: true,
            ..SandboxSpec::default()
        };
        let sandbox = |user| {
            Isolation::Bubblewrap(Bubblewrap {
                bwrap: "/usr/bin/bwrap".into(),
                user,
            })
        };
        let joined = argv_strings(&sandbox(JobUser::Invoker { uid: 1000 }), &spec).join(" ");
        assert!(
            joined.starts_with(
                "/usr/bin/bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL"
            ),
            "{joined}"
        );
        assert!(joined.contains("--bind /jobs/1/work /work"), "{joined}");
        assert!(joined.contains("--ro-bind /comp/public /data"), "{joined}");
        assert!(
            joined.contains("--perms 1777 --size 1073741824 --tmpfs /tmp"),
            "{joined}"
        );
        assert!(
            joined.contains("--add-seccomp-fd 3 --add-seccomp-fd 4"),
            "{joined}"
        );
        assert!(
            joined.contains("--clearenv --setenv OMP_NUM_THREADS 2 -- python main.py"),
            "{joined}"
        );
        assert!(
            !joined.contains("/root") && !joined.contains("/home"),
            "{joined}"
        );
        // As root: no user namespace, and setpriv drops to the job's user before the command.
        let dropped = JobUser::Dropped {
            uid: 65534,
            gid: 65533,
            setpriv: "/usr/bin/setpriv".into(),
        };
        let joined = argv_strings(&sandbox(dropped), &spec).join(" ");
        assert!(!joined.contains("--unshare-all"), "{joined}");
        assert!(joined.contains("--new-session"), "{joined}");
        assert!(
            joined.ends_with(
                "-- /usr/bin/setpriv --reuid=65534 --regid=65533 --clear-groups --inh-caps=-all \
                 --bounding-set=-all --no-new-privs -- python main.py"
            ),
            "{joined}"
        );
        let plain = argv_strings(&Isolation::Unsandboxed, &spec);
        assert_eq!(plain, ["python", "main.py"]);
    }

    #[test]
    fn the_parents_of_bind_targets_are_made_reachable() {
        let targets = [
            Path::new("/root/.local/share/sophon/job-python"),
            Path::new("/root/.pyenv/versions/3.11.7"),
            Path::new("/usr/local/lib/extra"),
            Path::new("/data"),
            Path::new("/work/input"),
        ];
        let dirs: Vec<String> = parents_to_create(targets.into_iter())
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        assert_eq!(
            dirs,
            [
                "/root",
                "/root/.local",
                "/root/.local/share",
                "/root/.local/share/sophon",
                "/root/.pyenv",
                "/root/.pyenv/versions"
            ]
        );
    }

    #[test]
    fn jobs_never_run_as_root() {
        assert_eq!(
            JobUser::for_process(1000, None, None).unwrap(),
            JobUser::Invoker { uid: 1000 }
        );
        for (uid, gid) in [(Some(0), None), (None, Some(0))] {
            let err = JobUser::for_process(1000, uid, gid)
                .unwrap_err()
                .to_string();
            assert!(err.contains("root") && err.contains("65534"), "{err}");
        }
        if Path::new("/usr/bin/setpriv").exists() {
            let JobUser::Dropped { uid, gid, .. } =
                JobUser::for_process(0, None, Some(100)).unwrap()
            else {
                panic!("root must drop")
            };
            assert_eq!((uid, gid), (65534, 100));
        }
    }

    fn argv_strings(isolation: &Isolation, spec: &SandboxSpec) -> Vec<String> {
        argv(isolation, spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }
}
