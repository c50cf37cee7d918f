//! `sophon:host/jobs`: submit jobs to the run's job service and follow them through `job`
//! resources whose pollable is ready once the job is final.

use super::answer;
use super::convert::{Conv, record, unit_enum};
use crate::jobs as cap;
use crate::runtime::bindings::host::sophon::host::{jobs, types};
use crate::runtime::manifest::Capability;
use crate::runtime::resources::RunningJob;
use crate::runtime::state::{PluginState, bounded, call};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, subscribe};

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

impl jobs::HostJob for PluginState {
    async fn id(&mut self, this: Resource<RunningJob>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.handle.id())
    }

    async fn state(&mut self, this: Resource<RunningJob>) -> wasmtime::Result<jobs::JobState> {
        Ok(self.table.get(&this)?.handle.state().conv())
    }

    async fn subscribe(
        &mut self,
        this: Resource<RunningJob>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<RunningJob>,
    ) -> wasmtime::Result<Option<jobs::JobResult>> {
        let handle = self.table.get(&this)?.handle.clone();
        let result = handle.result();
        match &self.services.journal {
            // Whether the job had finished when the plugin looked is replayed too.
            Some(journal) if journal.answer_timing("job-get", result.is_some()) => {
                Ok(Some(handle.wait().await.conv()))
            }
            Some(_) => Ok(None),
            None => Ok(result.conv()),
        }
    }

    async fn cancel(&mut self, this: Resource<RunningJob>) -> wasmtime::Result<()> {
        let handle = self.table.get(&this)?.handle.clone();
        handle.cancel().await;
        Ok(())
    }

    async fn logs(
        &mut self,
        this: Resource<RunningJob>,
        stream: jobs::LogStream,
        offset: u64,
        max_bytes: u32,
    ) -> WitResult<String> {
        let handle = self.table.get(&this)?.handle.clone();
        let logs = handle.logs(stream.conv(), offset, max_bytes.min(1 << 20));
        let result = bounded(self.deadline(), "reading job logs", logs).await;
        answer(result)
    }

    async fn drop(&mut self, this: Resource<RunningJob>) -> wasmtime::Result<()> {
        // Dropping the handle does not stop the job: the run owns its jobs.
        self.table.delete(this)?;
        Ok(())
    }
}

impl jobs::Host for PluginState {
    async fn submit(&mut self, spec: jobs::JobSpec) -> WitResult<Resource<RunningJob>> {
        let service = self.service(Capability::Jobs, &self.services.jobs);
        let limit = self.deadline();
        let submitted = call(service, limit, "submitting a job", |s| async move {
            s.submit(spec.conv()).await
        });
        match submitted.await {
            Ok(handle) => Ok(Ok(self.table.push(RunningJob { handle })?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn inventory(&mut self) -> wasmtime::Result<jobs::JobInventory> {
        Ok(match self.service(Capability::Jobs, &self.services.jobs) {
            Ok(service) => service.inventory().conv(),
            Err(_) => cap::JobInventory::default().conv(),
        })
    }
}

unit_enum!(
    cap::JobState,
    jobs::JobState {
        Queued,
        Running,
        Succeeded,
        Failed,
        TimedOut,
        OutOfMemory,
        Cancelled
    }
);
unit_enum!(cap::LogStream, jobs::LogStream { Stdout, Stderr });
record!(jobs::JobFile => cap::JobFile { path, contents, executable });
record!(jobs::Mount => cap::Mount { source, target });
record!(jobs::Resources => cap::Resources { cpus, gpus, gpu_kind, memory_mb, timeout_ms });
record!(jobs::JobSpec => cap::JobSpec {
    name, files, command, env, resources, mounts, outputs, backend
});
record!(cap::OutputExcerpt => jobs::OutputExcerpt { head, tail, total_bytes });
record!(cap::JobResult => jobs::JobResult {
    state, exit, stdout, stderr, wall_ms, cpu_ms, peak_memory_bytes, artifacts, message
});
record!(cap::JobInventory => jobs::JobInventory {
    cpus, gpus, gpu_kinds, memory_mb, backends, job_slots_free, gpu_hours_left
});

impl Conv<cap::FileContents> for jobs::FileContents {
    fn conv(self) -> cap::FileContents {
        match self {
            jobs::FileContents::Text(t) => cap::FileContents::Text(t),
            jobs::FileContents::Bytes(b) => cap::FileContents::Bytes(b),
            jobs::FileContents::Artifact(id) => cap::FileContents::Artifact(id),
        }
    }
}

impl Conv<cap::MountSource> for jobs::MountSource {
    fn conv(self) -> cap::MountSource {
        match self {
            jobs::MountSource::TaskPublic => cap::MountSource::TaskPublic,
            jobs::MountSource::Artifact(id) => cap::MountSource::Artifact(id),
            jobs::MountSource::Named(name) => cap::MountSource::Named(name),
        }
    }
}

impl Conv<jobs::ExitStatus> for cap::ExitStatus {
    fn conv(self) -> jobs::ExitStatus {
        match self {
            cap::ExitStatus::Code(c) => jobs::ExitStatus::Code(c),
            cap::ExitStatus::Signal(s) => jobs::ExitStatus::Signal(s),
        }
    }
}
