//! Nothing a job started outlives the Sophon process that started it.
//!
//! Every local job registers here while it runs: its root process (bwrap, or the command when
//! unsandboxed) and its cgroup. [`kill_all`] — called when `sophon` ends, on Ctrl-C that ends
//! it, on SIGTERM and SIGHUP — SIGKILLs every job through its cgroup (which reaches processes
//! that left the job's session or process group) and its process group, and removes the
//! cgroups. A Sophon killed with SIGKILL cannot do that: its jobs' roots die with it (they have
//! `PR_SET_PDEATHSIG`, and bubblewrap's `--die-with-parent` takes the sandbox's pid namespace
//! down), and the next executor on the machine removes the cgroups of dead processes
//! ([`sweep_stale`]).
//!
//! Cluster jobs register too: [`cancel_cluster_jobs`] asks their scheduler to stop them.

use super::batch_api::BatchApi;
use super::cgroup::{CgroupSupport, JobCgroup};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Tracked {
    root: Option<i32>,
    cgroup: Option<Arc<JobCgroup>>,
}

static LIVE: Mutex<BTreeMap<String, Tracked>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<String, Tracked>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Record job `id` (its root pid once started, and its cgroup).
pub fn track(id: &str, root: Option<i32>, cgroup: Option<Arc<JobCgroup>>) {
    live().insert(id.to_string(), Tracked { root, cgroup });
}

/// Forget job `id` (it has ended and been cleaned up).
pub fn untrack(id: &str) {
    live().remove(id);
}

/// How many jobs of this process are registered.
pub fn live_jobs() -> usize {
    live().len()
}

type ClusterJobs = BTreeMap<String, (String, Arc<dyn BatchApi>)>;

static CLUSTER: Mutex<ClusterJobs> = Mutex::new(BTreeMap::new());

fn cluster() -> std::sync::MutexGuard<'static, ClusterJobs> {
    CLUSTER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Record cluster job `id`, known to its scheduler (`api`) as `native_id`.
pub fn track_cluster(id: &str, native_id: &str, api: &Arc<dyn BatchApi>) {
    cluster().insert(id.to_string(), (native_id.to_string(), api.clone()));
}

/// Forget cluster job `id` (it has ended).
pub fn untrack_cluster(id: &str) {
    cluster().remove(id);
}

/// Ask the schedulers to stop every cluster job of this process still running, waiting at
/// most `limit` for them to answer. Returns how many were asked.
pub async fn cancel_cluster_jobs(limit: Duration) -> usize {
    let jobs = std::mem::take(&mut *cluster());
    let count = jobs.len();
    let cancels = jobs.into_iter().map(|(id, (native, api))| async move {
        if let Err(e) = api.kill(&native).await {
            tracing::warn!(job = %id, "cancelling the cluster job: {e}");
        }
    });
    if tokio::time::timeout(limit, futures_util::future::join_all(cancels))
        .await
        .is_err()
    {
        tracing::warn!("some cluster jobs did not answer their cancel within {limit:?}");
    }
    count
}

/// Kill every job of this process and remove their cgroups. Returns how many there were.
pub fn kill_all() -> usize {
    let jobs = std::mem::take(&mut *live());
    for tracked in jobs.values() {
        if let Some(root) = tracked.root {
            // SAFETY: kill(2) on the job's own process group and root; the root is not reaped
            // while it is registered (the executor untracks it first), so its pid is not reused.
            unsafe {
                libc::kill(-root, libc::SIGKILL);
                libc::kill(root, libc::SIGKILL);
            }
        }
        if let Some(cgroup) = &tracked.cgroup {
            cgroup.kill_all();
        }
    }
    for tracked in jobs.values() {
        if let Some(cgroup) = &tracked.cgroup {
            cgroup.remove();
        }
    }
    jobs.len()
}

/// Remove the job cgroups under Sophon's parent groups whose Sophon process has died (killing
/// whatever is still in them). Job groups are named `local-<millis>-<pid>-<n>`; groups of
/// live processes, groups holding processes of another pid namespace, and names that are not a
/// job's are left alone.
pub fn sweep_stale(support: &CgroupSupport) -> usize {
    let parents: Vec<&Path> = match support {
        CgroupSupport::V2 { parent } => vec![parent],
        CgroupSupport::V1 {
            memory,
            pids,
            cpuacct,
        } => {
            let mut parents = vec![memory.as_path(), pids.as_path()];
            parents.extend(cpuacct.as_deref());
            parents
        }
        CgroupSupport::Unavailable(_) => return 0,
    };
    let mut swept = 0;
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(owner_pid) else {
                continue;
            };
            if process_alive(pid) || !entry.path().is_dir() {
                continue;
            }
            let group = JobCgroup::at(support, entry.path());
            // Processes this process cannot see belong to another pid namespace (another
            // container sharing the hierarchy), whose Sophon may well be alive: leave them.
            if !group
                .pids()
                .into_iter()
                .all(|p| Path::new(&format!("/proc/{p}")).exists())
            {
                continue;
            }
            group.kill_all();
            group.remove();
            swept += 1;
        }
    }
    if swept > 0 {
        tracing::warn!("removed {swept} job cgroups left by Sophon processes that died");
    }
    swept
}

/// The pid of the Sophon process that named job group `name` (`local-<millis>-<pid>-<n>`).
fn owner_pid(name: &str) -> Option<i32> {
    let mut parts = name.strip_prefix("local-")?.split('-');
    let (_millis, pid, _n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    pid.parse().ok()
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_group_names_give_their_owner() {
        assert_eq!(owner_pid("local-1733160000000-4242-7"), Some(4242));
        for other in [
            "sophon",
            "local-1-2",
            "local-1-x-3",
            "local-1-2-3-4",
            "slurm-1-2-3",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
        assert!(process_alive(std::process::id() as i32));
    }
}
