//! Capturing a job's stdout or stderr: the first and last bytes in memory (for the result's
//! excerpt), everything up to a cap in a log file (for live `logs`), and a byte count. A job
//! printing gigabytes costs reading them, nothing more: memory is bounded and the file is capped.

use super::OutputExcerpt;
use std::collections::VecDeque;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug)]
pub struct CaptureLimits {
    pub head_bytes: usize,
    pub tail_bytes: usize,
    pub log_max_bytes: u64,
}

/// Read `stream` to its end; returns the excerpt. The log goes to `log_path`.
pub async fn capture(
    mut stream: impl AsyncRead + Unpin,
    limits: CaptureLimits,
    log_path: &Path,
) -> OutputExcerpt {
    let mut log = tokio::fs::File::create(log_path).await.ok();
    let mut head = Vec::with_capacity(limits.head_bytes.min(64 << 10));
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut total: u64 = 0;
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buffer[..n];
        if let Some(file) = &mut log
            && total < limits.log_max_bytes
        {
            let keep = (limits.log_max_bytes - total).min(n as u64) as usize;
            if file.write_all(&chunk[..keep]).await.is_err() {
                log = None;
            }
        }
        total += n as u64;
        let into_head = (limits.head_bytes - head.len()).min(n);
        head.extend_from_slice(&chunk[..into_head]);
        let rest = &chunk[into_head..];
        if !rest.is_empty() && limits.tail_bytes > 0 {
            let rest = &rest[rest.len().saturating_sub(limits.tail_bytes)..];
            let overflow = (tail.len() + rest.len()).saturating_sub(limits.tail_bytes);
            tail.drain(..overflow);
            tail.extend(rest);
        }
    }
    if let Some(file) = &mut log {
        let _ = file.flush().await;
    }
    let tail: Vec<u8> = tail.into();
    OutputExcerpt {
        head: String::from_utf8_lossy(&head).into_owned(),
        tail: String::from_utf8_lossy(&tail).into_owned(),
        total_bytes: total,
    }
}

/// The excerpt of an output already on disk (a cluster job's log): its first and last bytes.
pub fn excerpt_of_file(path: &Path, limits: CaptureLimits) -> OutputExcerpt {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return OutputExcerpt::default();
    };
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = Vec::new();
    let _ = (&mut file)
        .take(limits.head_bytes as u64)
        .read_to_end(&mut head);
    let mut tail = Vec::new();
    let after_head = head.len() as u64;
    if total > after_head {
        let start = after_head.max(total.saturating_sub(limits.tail_bytes as u64));
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.take(limits.tail_bytes as u64).read_to_end(&mut tail);
        }
    }
    OutputExcerpt {
        head: String::from_utf8_lossy(&head).into_owned(),
        tail: String::from_utf8_lossy(&tail).into_owned(),
        total_bytes: total,
    }
}

/// Up to `max_bytes` of a job's `stream` log (in `job_dir`) from byte `offset`; empty when the
/// job has not written it yet.
pub async fn read_log(
    job_dir: &Path,
    stream: super::LogStream,
    offset: u64,
    max_bytes: u32,
) -> crate::capability::CapResult<String> {
    use crate::capability::CapabilityError;
    let name = match stream {
        super::LogStream::Stdout => "stdout.log",
        super::LogStream::Stderr => "stderr.log",
    };
    let path = job_dir.join(name);
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::new();
        file.take(u64::from(max_bytes)).read_to_end(&mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| CapabilityError::Internal(e.to_string()))?
    .map_err(|e| CapabilityError::Internal(format!("reading the job's {name}: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_head_tail_and_a_capped_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let limits = CaptureLimits {
            head_bytes: 10,
            tail_bytes: 5,
            log_max_bytes: 1000,
        };
        let excerpt = capture(&data[..], limits, &log).await;
        assert_eq!(excerpt.head, "abcdefghij");
        let expected_tail: String = data[data.len() - 5..].iter().map(|&b| b as char).collect();
        assert_eq!(excerpt.tail, expected_tail);
        assert_eq!(excerpt.total_bytes, 100_000);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 1000);

        let small = capture(&b"hello"[..], limits, &log).await;
        assert_eq!(
            (small.head.as_str(), small.tail.as_str(), small.total_bytes),
            ("hello", "", 5)
        );
    }
}
