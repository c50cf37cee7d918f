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
