//! Per-job control groups: the memory and process limits of a job, its peak memory and CPU
//! time, whether the kernel killed it for memory, and killing everything it started.
//!
//! Both cgroup versions are supported: v2 (one unified hierarchy, Sophon's jobs under
//! `/sys/fs/cgroup/sophon/<job>`) and v1 (`memory`, `pids` and `cpuacct` hierarchies, each with a
//! `sophon/<job>` group). [`CgroupSupport::detect`] finds which one this process may write to;
//! where neither is writable, the executor falls back to rlimits and says so.
//!
//! A job joins its group before it executes anything: the child writes its own pid into the
//! groups' `cgroup.procs` between `fork` and `exec` (see [`JobCgroup::join_paths`]), so every
//! process it ever starts is accounted and limited.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where job groups can be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupSupport {
    V2 {
        parent: PathBuf,
    },
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: Option<PathBuf>,
    },
    /// No writable hierarchy; the reason, for the log.
    Unavailable(String),
}

const ROOT: &str = "/sys/fs/cgroup";

impl CgroupSupport {
    /// Probe the system (creating Sophon's parent groups).
    pub fn detect() -> CgroupSupport {
        let root = Path::new(ROOT);
        if root.join("cgroup.controllers").exists() {
            let parent = root.join("sophon");
            let setup = (|| -> std::io::Result<()> {
                std::fs::create_dir_all(&parent)?;
                // Controllers must be enabled on every level above the job groups.
                std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
                std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu")
            })();
            return match setup {
                Ok(()) => CgroupSupport::V2 { parent },
                Err(e) => {
                    CgroupSupport::Unavailable(format!("cgroup v2 at {ROOT} is not writable: {e}"))
                }
            };
        }
        let memory = root.join("memory").join("sophon");
        let pids = root.join("pids").join("sophon");
        let cpuacct = ["cpuacct", "cpu,cpuacct"]
            .iter()
            .map(|c| root.join(c))
            .find(|p| p.join("cpuacct.usage").exists())
            .map(|p| p.join("sophon"));
        let setup = (|| -> std::io::Result<()> {
            for dir in [Some(&memory), Some(&pids), cpuacct.as_ref()]
                .into_iter()
                .flatten()
            {
                std::fs::create_dir_all(dir)?;
                // Made by another user (root) earlier: present, but no place for our groups.
                writable(dir)?;
            }
            Ok(())
        })();
        match setup {
            Ok(()) => CgroupSupport::V1 {
                memory,
                pids,
                cpuacct,
            },
            Err(e) => CgroupSupport::Unavailable(format!(
                "no writable cgroup hierarchy under {ROOT}: {e}"
            )),
        }
    }

    /// How job limits are enforced, in words (for `sophon job resources`).
    pub fn describe(&self) -> String {
        match self {
            CgroupSupport::V2 { parent } => format!("cgroup v2 under {}", parent.display()),
            CgroupSupport::V1 { memory, pids, .. } => format!(
                "cgroup v1 under {} and {}",
                memory.display(),
                pids.display()
            ),
            CgroupSupport::Unavailable(reason) => format!(
                "rlimits: address space (CPU jobs only) and process count; no CPU time or peak \
                 memory measured ({reason})"
            ),
        }
    }

    pub fn is_available(&self) -> bool {
        !matches!(self, CgroupSupport::Unavailable(_))
    }
}

/// Whether this process may create groups in `dir`.
fn writable(dir: &Path) -> std::io::Result<()> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    // SAFETY: access(2) on a NUL-terminated path.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One job's groups.
#[derive(Debug)]
pub struct JobCgroup {
    support: CgroupSupport,
    /// Every group directory of the job (one for v2, up to three for v1).
    dirs: Vec<PathBuf>,
}

impl JobCgroup {
    /// Create the groups of job `name` with the given limits.
    pub fn create(
        support: &CgroupSupport,
        name: &str,
        memory_bytes: Option<u64>,
        max_pids: Option<u64>,
    ) -> std::io::Result<JobCgroup> {
        let dirs = match support {
            CgroupSupport::V2 { parent } => vec![parent.join(name)],
            CgroupSupport::V1 {
                memory,
                pids,
                cpuacct,
            } => {
                let mut dirs = vec![memory.join(name), pids.join(name)];
                dirs.extend(cpuacct.as_ref().map(|c| c.join(name)));
                dirs
            }
            CgroupSupport::Unavailable(reason) => {
                return Err(std::io::Error::other(reason.clone()));
            }
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir)?;
        }
        let group = JobCgroup {
            support: support.clone(),
            dirs,
        };
        match &group.support {
            CgroupSupport::V2 { .. } => {
                let dir = &group.dirs[0];
                if let Some(bytes) = memory_bytes {
                    std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                    // No swap: a job over its limit is killed, not slowed to a crawl.
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(n) = max_pids {
                    std::fs::write(dir.join("pids.max"), n.to_string())?;
                }
            }
            CgroupSupport::V1 { .. } => {
                if let Some(bytes) = memory_bytes {
                    std::fs::write(
                        group.dirs[0].join("memory.limit_in_bytes"),
                        bytes.to_string(),
                    )?;
                    let memsw = group.dirs[0].join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        let _ = std::fs::write(memsw, bytes.to_string());
                    }
                }
                if let Some(n) = max_pids {
                    std::fs::write(group.dirs[1].join("pids.max"), n.to_string())?;
                }
            }
            CgroupSupport::Unavailable(_) => unreachable!(),
        }
        Ok(group)
    }

    /// The group at `dir` (one hierarchy's directory of a job), to kill and remove what an
    /// earlier process left there.
    pub fn at(support: &CgroupSupport, dir: PathBuf) -> JobCgroup {
        JobCgroup {
            support: support.clone(),
            dirs: vec![dir],
        }
    }

    /// The `cgroup.procs` files a process writes its pid into to join the job.
    pub fn join_paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    fn read(&self, index: usize, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dirs.get(index)?.join(file)).ok()
    }

    /// Pids currently in the job.
    pub fn pids(&self) -> Vec<i32> {
        self.read(0, "cgroup.procs")
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The most memory the job used at once, in bytes.
    pub fn peak_memory(&self) -> Option<u64> {
        match self.support {
            CgroupSupport::V2 { .. } => self
                .read(0, "memory.peak")
                .and_then(|s| s.trim().parse().ok()),
            CgroupSupport::V1 { .. } => self
                .read(0, "memory.max_usage_in_bytes")
                .and_then(|s| s.trim().parse().ok()),
            CgroupSupport::Unavailable(_) => None,
        }
    }

    /// CPU time used by the job's processes.
    pub fn cpu_time(&self) -> Option<Duration> {
        match &self.support {
            CgroupSupport::V2 { .. } => self
                .read(0, "cpu.stat")?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_micros),
            CgroupSupport::V1 {
                cpuacct: Some(_), ..
            } => self
                .read(2, "cpuacct.usage")
                .and_then(|s| s.trim().parse().ok())
                .map(Duration::from_nanos),
            _ => None,
        }
    }

    /// Whether the kernel killed a process of the job for exceeding its memory limit.
    pub fn oom_killed(&self) -> bool {
        let (file, key) = match self.support {
            CgroupSupport::V2 { .. } => ("memory.events", "oom_kill "),
            CgroupSupport::V1 { .. } => ("memory.oom_control", "oom_kill "),
            CgroupSupport::Unavailable(_) => return false,
        };
        self.read(0, file).is_some_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
    }

    /// SIGKILL every process in the job, until none is left (bounded).
    pub fn kill_all(&self) {
        if let CgroupSupport::V2 { .. } = self.support
            && std::fs::write(self.dirs[0].join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) with a pid read from the job's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Remove the groups (after every process has exited). Failures are logged.
    pub fn remove(&self) {
        for dir in self.dirs.iter().rev() {
            let mut result = std::fs::remove_dir(dir);
            for _ in 0..20 {
                if result.is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                result = std::fs::remove_dir(dir);
            }
            if let Err(e) = result {
                tracing::warn!(cgroup = %dir.display(), "cannot remove a job's cgroup: {e}");
            }
        }
    }
}
