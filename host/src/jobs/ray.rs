//! The Ray backend: a [`BatchApi`] over the Ray Jobs REST API (the dashboard, `:8265`). A job is
//! submitted with entrypoint resources (`entrypoint_num_cpus`, `entrypoint_num_gpus`,
//! `entrypoint_memory`; Ray then sets `CUDA_VISIBLE_DEVICES`) and runs the shared batch script
//! from the shared filesystem; `stop` ends it. Everything else is the [`BatchExecutor`]'s.

use super::batch::{BatchExecutor, BatchSettings, BatchSetupError, SCRIPT_FILE, shell_quote};
use super::batch_api::{BatchApi, BatchState, Submission};
use super::config::ClusterConfig;
use super::*;
use crate::capability::{CapResult, CapabilityError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The executor `[jobs.ray]` describes.
pub fn executor(
    config: &ClusterConfig,
    datasets: BTreeMap<String, PathBuf>,
) -> Result<BatchExecutor, BatchSetupError> {
    let settings = BatchSettings::from_config(config, "ray")?;
    let url = config
        .url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8265".into());
    BatchExecutor::new(Arc::new(RayApi::new(&url)), settings, datasets)
}

/// Ray's job states as Sophon's.
pub fn map_state(status: &str) -> JobState {
    match status {
        "PENDING" => JobState::Queued,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "STOPPED" => JobState::Cancelled,
        _ => JobState::Failed,
    }
}

/// The Ray Jobs REST API.
pub struct RayApi {
    http: reqwest::Client,
    base: String,
}

impl RayApi {
    pub fn new(url: &str) -> RayApi {
        RayApi {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base: format!("{}/api/jobs", url.trim_end_matches('/')),
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> CapResult<(reqwest::StatusCode, Value)> {
        let response = request.send().await.map_err(|e| {
            CapabilityError::Unavailable(format!(
                "cannot reach the Ray Jobs API at {}: {e}",
                self.base
            ))
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

#[async_trait::async_trait]
impl BatchApi for RayApi {
    fn backend(&self) -> &'static str {
        "ray"
    }

    async fn probe(&self) -> CapResult<String> {
        let (status, reply) = self.send(self.http.get(format!("{}/", self.base))).await?;
        if !status.is_success() || !reply.is_array() {
            return Err(CapabilityError::Upstream(format!(
                "{} is not a Ray Jobs API (HTTP {status} listing jobs): {}",
                self.base,
                crate::term::line(&reply.to_string().chars().take(200).collect::<String>())
            )));
        }
        Ok(format!("the Ray Jobs API at {}", self.base))
    }

    async fn submit(&self, job: &Submission) -> CapResult<String> {
        let mut body = json!({
            "entrypoint": format!("sh {}", shell_quote(&job.dir.join(SCRIPT_FILE).to_string_lossy())),
            "submission_id": job.id,
            "entrypoint_num_cpus": job.cpus,
            "entrypoint_memory": job.memory_mb * 1024 * 1024,
            "metadata": { "sophon.job": job.name },
        });
        if job.gpus > 0 {
            body["entrypoint_num_gpus"] = json!(job.gpus);
        }
        let (status, reply) = self
            .send(self.http.post(format!("{}/", self.base)).json(&body))
            .await?;
        if !status.is_success() {
            return Err(CapabilityError::Upstream(format!(
                "Ray refused the job (HTTP {status}): {reply}"
            )));
        }
        reply
            .get("submission_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                CapabilityError::MalformedReply(format!(
                    "Ray's submit reply has no submission_id: {reply}"
                ))
            })
    }

    async fn query(&self, id: &str) -> CapResult<Option<BatchState>> {
        let (status, reply) = self
            .send(self.http.get(format!("{}/{id}", self.base)))
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(CapabilityError::Upstream(format!(
                "Ray (HTTP {status}): {reply}"
            )));
        }
        let native = reply
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        let millis = |key: &str| reply.get(key).and_then(Value::as_u64).filter(|&t| t > 0);
        Ok(Some(BatchState {
            state: map_state(&native),
            exit: reply
                .get("driver_exit_code")
                .and_then(Value::as_i64)
                .map(|c| ExitStatus::Code(c as i32)),
            native,
            start_ms: millis("start_time"),
            end_ms: millis("end_time"),
        }))
    }

    async fn interrupt(&self, id: &str) -> CapResult<()> {
        self.kill(id).await
    }

    async fn kill(&self, id: &str) -> CapResult<()> {
        let (status, reply) = self
            .send(self.http.post(format!("{}/{id}/stop", self.base)))
            .await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(CapabilityError::Upstream(format!(
                "Ray could not stop job {id} (HTTP {status}): {reply}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn states() {
        use super::*;
        assert_eq!(map_state("PENDING"), JobState::Queued);
        assert_eq!(map_state("SUCCEEDED"), JobState::Succeeded);
        assert_eq!(map_state("STOPPED"), JobState::Cancelled);
        assert_eq!(map_state("FAILED"), JobState::Failed);
    }
}
