//! A job's disk: what its working directory holds against the job's quota, and the free space
//! left on the filesystem the runs share.
//!
//! Three layers: the kernel refuses any single file larger than the quota (`RLIMIT_FSIZE`, set
//! by the executor), [`watch`] measures the working directory while the job runs and names the
//! limit a job went past (bytes allocated, files, or the filesystem's reserve), and the working
//! directory is removed once its outputs are collected ([`remove_tree`]). The job's `/tmp` and
//! `/dev/shm` are in memory and count against its memory limit instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A job's disk limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskQuota {
    /// Bytes allocated in the working directory.
    pub max_bytes: u64,
    /// Files and directories in the working directory.
    pub max_files: u64,
    /// Free bytes the filesystem must keep: a job that grows while it has less is stopped.
    pub min_free_bytes: u64,
}

/// What a working directory holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Allocated bytes (holes in sparse files take none).
    pub bytes: u64,
    /// Files, directories and links.
    pub entries: u64,
}

/// Walk `dir` (not following symlinks), stopping once more than `max_entries` were seen.
/// Unreadable parts count as empty.
pub fn usage(dir: &Path, max_entries: u64) -> Usage {
    use std::os::unix::fs::MetadataExt;
    let mut usage = Usage::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            usage.entries += 1;
            if usage.entries > max_entries {
                return usage;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            usage.bytes += metadata.blocks() * 512;
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    usage
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs(3) fills the zeroed struct for a valid NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Why a job must stop, if it must: `now` is its directory's usage, `before` the previous one,
/// `free` the filesystem's free bytes.
pub fn verdict(quota: &DiskQuota, now: Usage, before: Usage, free: Option<u64>) -> Option<String> {
    const MB: u64 = 1 << 20;
    if now.bytes >= quota.max_bytes {
        return Some(format!(
            "stopped for filling its {} MB of disk ([jobs.local] disk-mb)",
            quota.max_bytes / MB
        ));
    }
    if now.entries > quota.max_files {
        return Some(format!(
            "stopped for creating more than {} files ([jobs.local] max-files)",
            quota.max_files
        ));
    }
    if let Some(free) = free
        && free < quota.min_free_bytes
        && now.bytes > before.bytes
    {
        return Some(format!(
            "stopped while writing to a disk with only {} MB free (the jobs keep {} MB free for \
             the runs: [jobs.local] min-free-disk-mb)",
            free / MB,
            quota.min_free_bytes / MB
        ));
    }
    None
}

/// Resolves, with the reason, once the job whose working directory is `dir` goes past
/// `quota`; checks every second, less often when the directory is slow to walk.
pub async fn watch(dir: PathBuf, quota: DiskQuota) -> String {
    let mut before = Usage::default();
    let mut interval = Duration::from_secs(1);
    loop {
        tokio::time::sleep(interval).await;
        let walked = dir.clone();
        let started = Instant::now();
        let measured = tokio::task::spawn_blocking(move || {
            (
                usage(&walked, quota.max_files),
                free_bytes(walked.parent().unwrap_or(&walked)),
            )
        })
        .await;
        let Ok((now, free)) = measured else {
            continue;
        };
        if let Some(reason) = verdict(&quota, now, before, free) {
            return reason;
        }
        before = now;
        interval = Duration::from_secs(1).max(started.elapsed() * 20);
    }
}

/// Remove `dir` and everything in it, making directories a job left unreadable (mode 000)
/// readable first. Failures are logged: a leftover directory costs disk, not the run.
pub fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if std::fs::remove_dir_all(dir).is_ok() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), "cannot remove a job's working directory: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: DiskQuota = DiskQuota {
        max_bytes: 1 << 20,
        max_files: 10,
        min_free_bytes: 100,
    };

    #[test]
    fn usage_counts_allocated_blocks_not_holes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), vec![1u8; 64 << 10]).unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(3 << 30).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x"), b"x").unwrap();
        let used = usage(dir.path(), 100);
        assert_eq!(used.entries, 4);
        assert!(
            (64 << 10..1 << 20).contains(&used.bytes),
            "{} bytes allocated",
            used.bytes
        );
        assert_eq!(
            usage(dir.path(), 2).entries,
            3,
            "the walk stops past the limit"
        );
    }

    #[test]
    fn verdicts_name_the_limit() {
        let small = Usage {
            bytes: 10,
            entries: 1,
        };
        assert_eq!(verdict(&QUOTA, small, small, Some(1 << 30)), None);
        let big = Usage {
            bytes: 2 << 20,
            entries: 1,
        };
        assert!(
            verdict(&QUOTA, big, small, None)
                .unwrap()
                .contains("disk-mb")
        );
        let many = Usage {
            bytes: 10,
            entries: 11,
        };
        assert!(
            verdict(&QUOTA, many, small, None)
                .unwrap()
                .contains("max-files")
        );
        // A nearly full disk stops a job that is growing, not one that is not.
        let grown = Usage {
            bytes: 20,
            entries: 1,
        };
        assert!(
            verdict(&QUOTA, grown, small, Some(50))
                .unwrap()
                .contains("min-free-disk-mb")
        );
        assert_eq!(verdict(&QUOTA, small, small, Some(50)), None);
    }

    #[test]
    fn trees_a_job_locked_are_still_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("locked/inner")).unwrap();
        std::fs::write(work.join("locked/inner/f"), b"x").unwrap();
        std::fs::set_permissions(work.join("locked"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        remove_tree(&work);
        assert!(!work.exists());
    }
}
