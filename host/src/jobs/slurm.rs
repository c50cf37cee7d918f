//! The Slurm backend: a [`BatchApi`] over slurmrestd ([`REST_API`], JWT in
//! `X-SLURM-USER-TOKEN`) or, where no slurmrestd runs, over `sbatch`/`scontrol`/`scancel`.
//! GPUs are requested as GRES (`gpu[:kind]:N`; Slurm then sets `CUDA_VISIBLE_DEVICES`); the time
//! limit is the job's timeout rounded up to minutes, plus one (Sophon enforces the exact timeout
//! itself). Everything else — the job directory, the sandboxed script, polling, collecting — is
//! the shared [`BatchExecutor`]'s.

use super::batch::{BatchExecutor, BatchSettings, BatchSetupError};
use super::batch_api::{BatchApi, BatchState, Submission};
use super::config::ClusterConfig;
use super::*;
use crate::capability::{CapResult, CapabilityError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The slurmrestd OpenAPI version spoken (Slurm 22.05 serves only v0.0.38). Every REST path and
/// field name in [`RestApi`] belongs to it; a newer version is another [`BatchApi`].
pub const REST_API: &str = "v0.0.38";

/// The executor `[jobs.slurm]` describes: REST when `url` is set, else the commands. `env`
/// reads the JWT's variable.
pub fn executor(
    config: &ClusterConfig,
    datasets: BTreeMap<String, PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BatchExecutor, BatchSetupError> {
    let settings = BatchSettings::from_config(config, "slurm")?;
    let api: Arc<dyn BatchApi> = match &config.url {
        Some(url) => {
            let token_env = config.token_env.as_deref().unwrap_or("SLURM_JWT");
            let token = env(token_env).filter(|t| !t.is_empty()).ok_or_else(|| {
                BatchSetupError::NoSlurmToken {
                    token_env: token_env.to_string(),
                }
            })?;
            let user = config
                .user
                .clone()
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "root".into());
            Arc::new(RestApi::new(url, &user, &token, config.partition.clone()))
        }
        None => Arc::new(CliApi {
            partition: config.partition.clone(),
        }),
    };
    BatchExecutor::new(api, settings, datasets)
}

/// Slurm's job states as Sophon's.
pub fn map_state(state: &str) -> JobState {
    match state {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "RESIZING" | "SUSPENDED" => JobState::Queued,
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" => JobState::Running,
        "COMPLETED" => JobState::Succeeded,
        "TIMEOUT" | "DEADLINE" => JobState::TimedOut,
        "OUT_OF_MEMORY" => JobState::OutOfMemory,
        "CANCELLED" => JobState::Cancelled,
        _ => JobState::Failed,
    }
}

fn gres(job: &Submission) -> Option<String> {
    (job.gpus > 0).then(|| match &job.gpu_kind {
        Some(kind) => format!("gpu:{kind}:{}", job.gpus),
        None => format!("gpu:{}", job.gpus),
    })
}

fn time_limit_minutes(timeout: Duration) -> u64 {
    timeout.as_secs().div_ceil(60).max(1) + 1
}

/// slurmrestd, OpenAPI [`REST_API`].
pub struct RestApi {
    http: reqwest::Client,
    base: String,
    user: String,
    token: String,
    partition: Option<String>,
}

impl RestApi {
    pub fn new(url: &str, user: &str, token: &str, partition: Option<String>) -> RestApi {
        RestApi {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base: format!("{}/slurm/{REST_API}", url.trim_end_matches('/')),
            user: user.to_string(),
            token: token.to_string(),
            partition,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> CapResult<Value> {
        let response = request
            .header("X-SLURM-USER-NAME", &self.user)
            .header("X-SLURM-USER-TOKEN", &self.token)
            .send()
            .await
            .map_err(|e| {
                CapabilityError::Unavailable(format!(
                    "cannot reach slurmrestd at {}: {e}",
                    self.base
                ))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(CapabilityError::Upstream(format!(
                "slurmrestd refused the credentials (HTTP {status}): check the JWT (token-env) and user"
            )));
        }
        response.json().await.map_err(|e| {
            CapabilityError::MalformedReply(format!(
                "slurmrestd answered HTTP {status} with no JSON: {e}"
            ))
        })
    }
}

fn rest_errors(body: &Value) -> Option<String> {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            e.get("error")
                .or_else(|| e.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string()
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

#[async_trait::async_trait]
impl BatchApi for RestApi {
    fn backend(&self) -> &'static str {
        "slurm"
    }

    async fn probe(&self) -> CapResult<String> {
        let body = self
            .call(self.http.get(format!("{}/ping", self.base)))
            .await?;
        if let Some(errors) = rest_errors(&body) {
            return Err(CapabilityError::Upstream(format!(
                "slurmrestd at {} answered the ping with errors: {errors}",
                self.base
            )));
        }
        Ok(format!("slurmrestd at {}", self.base))
    }

    async fn submit(&self, job: &Submission) -> CapResult<String> {
        let log = job.dir.join("scheduler.log");
        let mut properties = json!({
            "name": job.name,
            "current_working_directory": job.dir,
            "standard_output": log,
            "standard_error": log,
            "environment": { "PATH": "/usr/local/bin:/usr/bin:/bin" },
            "cpus_per_task": job.cpus,
            "memory_per_node": job.memory_mb,
            "time_limit": time_limit_minutes(job.timeout),
        });
        if let Some(gres) = gres(job) {
            properties["gres"] = json!(gres);
        }
        if let Some(partition) = &self.partition {
            properties["partition"] = json!(partition);
        }
        let body = json!({ "script": job.script, "job": properties });
        let reply = self
            .call(
                self.http
                    .post(format!("{}/job/submit", self.base))
                    .json(&body),
            )
            .await?;
        if let Some(errors) = rest_errors(&reply) {
            return Err(CapabilityError::Upstream(format!(
                "Slurm refused the job: {errors}"
            )));
        }
        reply
            .get("job_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string())
            .ok_or_else(|| {
                CapabilityError::MalformedReply(format!(
                    "slurmrestd's submit reply has no job_id: {reply}"
                ))
            })
    }

    async fn query(&self, id: &str) -> CapResult<Option<BatchState>> {
        let reply = self
            .call(self.http.get(format!("{}/job/{id}", self.base)))
            .await?;
        let Some(job) = reply.get("jobs").and_then(|j| j.get(0)) else {
            return match rest_errors(&reply) {
                Some(e)
                    if e.to_lowercase().contains("invalid job id")
                        || e.contains("Unable to query") =>
                {
                    Ok(None)
                }
                Some(e) => Err(CapabilityError::Upstream(format!("Slurm: {e}"))),
                None => Ok(None),
            };
        };
        // v0.0.38 reports the raw wait status: the exit code in bits 8-15, a signal in 0-6.
        let exit = job.get("exit_code").and_then(Value::as_i64).map(|raw| {
            let (code, signal) = ((raw >> 8) & 0xff, raw & 0x7f);
            if signal != 0 {
                ExitStatus::Signal(signal as i32)
            } else {
                ExitStatus::Code(code as i32)
            }
        });
        let millis = |key: &str| {
            job.get(key)
                .and_then(Value::as_u64)
                .filter(|&t| t > 0)
                .map(|t| t * 1000)
        };
        let native = job
            .get("job_state")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        Ok(Some(BatchState {
            state: map_state(&native),
            native,
            exit,
            start_ms: millis("start_time"),
            end_ms: millis("end_time"),
        }))
    }

    async fn interrupt(&self, id: &str) -> CapResult<()> {
        self.signal(id, "SIGINT").await
    }

    async fn kill(&self, id: &str) -> CapResult<()> {
        self.signal(id, "SIGKILL").await
    }
}

impl RestApi {
    async fn signal(&self, id: &str, signal: &str) -> CapResult<()> {
        let reply = self
            .call(
                self.http
                    .delete(format!("{}/job/{id}?signal={signal}", self.base)),
            )
            .await?;
        match rest_errors(&reply) {
            Some(errors) => Err(CapabilityError::Upstream(format!(
                "Slurm could not signal job {id}: {errors}"
            ))),
            None => Ok(()),
        }
    }
}

/// `sbatch`, `scontrol` and `scancel`, for clusters without slurmrestd.
pub struct CliApi {
    pub partition: Option<String>,
}

async fn command_output(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
) -> CapResult<(bool, String, String)> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            CapabilityError::Unavailable(format!(
                "cannot run `{program}` (is Slurm's client installed?): {e}"
            ))
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| CapabilityError::Internal(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| CapabilityError::Internal(e.to_string()))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

impl CliApi {
    async fn scancel(&self, id: &str, signal: &str) -> CapResult<()> {
        let (ok, _, stderr) = command_output(
            "scancel",
            &[
                format!("--signal={signal}"),
                "--full".into(),
                id.to_string(),
            ],
            None,
        )
        .await?;
        if ok || stderr.contains("already completing") || stderr.contains("Invalid job id") {
            Ok(())
        } else {
            Err(CapabilityError::Upstream(format!(
                "scancel: {}",
                stderr.trim()
            )))
        }
    }
}

#[async_trait::async_trait]
impl BatchApi for CliApi {
    fn backend(&self) -> &'static str {
        "slurm"
    }

    async fn probe(&self) -> CapResult<String> {
        let mut args = vec!["-h".to_string(), "-o".into(), "%P %a".into()];
        args.extend(self.partition.as_ref().map(|p| format!("--partition={p}")));
        let (ok, stdout, stderr) = command_output("sinfo", &args, None).await?;
        if !ok {
            return Err(CapabilityError::Unavailable(format!(
                "sinfo cannot reach the Slurm controller: {}",
                stderr.trim()
            )));
        }
        if stdout.trim().is_empty() {
            return Err(CapabilityError::Unavailable(format!(
                "Slurm lists no partition{}",
                self.partition.as_ref().map_or(String::new(), |p| format!(
                    " named `{p}` ([jobs.slurm] partition)"
                ))
            )));
        }
        Ok(format!(
            "Slurm partitions {}",
            stdout.split_whitespace().collect::<Vec<_>>().join(" ")
        ))
    }

    async fn submit(&self, job: &Submission) -> CapResult<String> {
        let log = job.dir.join("scheduler.log");
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", job.name),
            format!("--chdir={}", job.dir.display()),
            format!("--output={}", log.display()),
            format!("--cpus-per-task={}", job.cpus),
            format!("--mem={}M", job.memory_mb),
            format!("--time={}", time_limit_minutes(job.timeout)),
        ];
        args.extend(gres(job).map(|g| format!("--gres={g}")));
        args.extend(self.partition.as_ref().map(|p| format!("--partition={p}")));
        let (ok, stdout, stderr) = command_output("sbatch", &args, Some(&job.script)).await?;
        if !ok {
            return Err(CapabilityError::Upstream(format!(
                "sbatch refused the job: {}",
                stderr.trim()
            )));
        }
        stdout
            .trim()
            .split(';')
            .next()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| {
                CapabilityError::MalformedReply(format!("sbatch printed no job id: {stdout:?}"))
            })
    }

    async fn query(&self, id: &str) -> CapResult<Option<BatchState>> {
        let (ok, stdout, stderr) = command_output(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.to_string()],
            None,
        )
        .await?;
        if !ok {
            return if stderr.contains("Invalid job id") {
                Ok(None)
            } else {
                Err(CapabilityError::Upstream(format!(
                    "scontrol: {}",
                    stderr.trim()
                )))
            };
        }
        let fields: BTreeMap<&str, &str> = stdout
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let exit = fields
            .get("ExitCode")
            .and_then(|v| v.split_once(':'))
            .map(|(code, signal)| match signal.parse::<i32>() {
                Ok(signal) if signal != 0 => ExitStatus::Signal(signal),
                _ => ExitStatus::Code(code.parse().unwrap_or(0)),
            });
        let native = fields
            .get("JobState")
            .copied()
            .unwrap_or("UNKNOWN")
            .to_string();
        Ok(Some(BatchState {
            state: map_state(&native),
            native,
            exit,
            start_ms: None,
            end_ms: None,
        }))
    }

    async fn interrupt(&self, id: &str) -> CapResult<()> {
        self.scancel(id, "INT").await
    }

    async fn kill(&self, id: &str) -> CapResult<()> {
        self.scancel(id, "KILL").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_time_limits_and_gres() {
        assert_eq!(map_state("PENDING"), JobState::Queued);
        assert_eq!(map_state("COMPLETED"), JobState::Succeeded);
        assert_eq!(map_state("TIMEOUT"), JobState::TimedOut);
        assert_eq!(map_state("OUT_OF_MEMORY"), JobState::OutOfMemory);
        assert_eq!(map_state("NODE_FAIL"), JobState::Failed);
        assert_eq!(time_limit_minutes(Duration::from_secs(30)), 2);
        assert_eq!(time_limit_minutes(Duration::from_secs(3600)), 61);
        let mut job = Submission {
            id: "j".into(),
            name: "n".into(),
            dir: PathBuf::from("/d"),
            script: String::new(),
            cpus: 1,
            memory_mb: 1,
            timeout: Duration::from_secs(1),
            gpus: 2,
            gpu_kind: Some("a100".into()),
        };
        assert_eq!(gres(&job).as_deref(), Some("gpu:a100:2"));
        job.gpus = 0;
        assert_eq!(gres(&job), None);
    }
}
