//! `sophon:host/artifacts`.

use super::answer;
use crate::runtime::bindings::host::sophon::host::{artifacts, types};
use crate::runtime::manifest::Capability;
use crate::runtime::state::PluginState;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

impl artifacts::Host for PluginState {
    async fn create(&mut self, name: String, contents: Vec<u8>) -> WitResult<types::Artifact> {
        answer(
            self.service(Capability::Artifacts, &self.services.artifacts)
                .and_then(|store| store.create(&name, &contents)),
        )
    }

    async fn read(&mut self, id: String, offset: u64, max_bytes: u32) -> WitResult<Vec<u8>> {
        answer(
            self.service(Capability::Artifacts, &self.services.artifacts)
                .and_then(|store| store.read(&id, offset, max_bytes.min(16 << 20))),
        )
    }

    async fn stat(&mut self, id: String) -> WitResult<types::Artifact> {
        answer(
            self.service(Capability::Artifacts, &self.services.artifacts)
                .and_then(|store| store.stat(&id)),
        )
    }
}
