//! `wasi:io/poll` for plugins in a journaled run. Which pollables a `poll` (or `ready`) found
//! ready is journaled; on resume the recorded answer is given again — waiting until those
//! pollables are ready — so a strategy racing concurrent LLM calls and jobs sees them finish in
//! the order it saw the first time. Without a journal this is WASI's own `poll`.

use crate::journal::Journal;
use std::sync::Arc;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll;

pub(crate) struct JournaledPoll<'a> {
    pub table: &'a mut ResourceTable,
    pub journal: Option<Arc<Journal>>,
}

pub(crate) struct JournaledPollData;

impl HasData for JournaledPollData {
    type Data<'a> = JournaledPoll<'a>;
}

fn borrow(pollable: &Resource<DynPollable>) -> Resource<DynPollable> {
    Resource::new_borrow(pollable.rep())
}

impl poll::Host for JournaledPoll<'_> {
    async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let Some(journal) = self.journal.clone() else {
            return poll::Host::poll(self.table, pollables).await;
        };
        let key = journal.key("poll", &());
        if let Some(ready) = journal.recorded::<Vec<u32>>("poll", &key)
            && !ready.is_empty()
            && ready.iter().all(|&i| (i as usize) < pollables.len())
        {
            for &i in &ready {
                poll::HostPollable::block(self.table, borrow(&pollables[i as usize])).await?;
            }
            return Ok(ready);
        }
        let ready = poll::Host::poll(self.table, pollables).await?;
        journal.record("poll", &key, &ready);
        Ok(ready)
    }
}

impl poll::HostPollable for JournaledPoll<'_> {
    async fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        let Some(journal) = self.journal.clone() else {
            return poll::HostPollable::ready(self.table, pollable).await;
        };
        let key = journal.key("pollable-ready", &());
        match journal.recorded::<bool>("pollable-ready", &key) {
            Some(true) => {
                poll::HostPollable::block(self.table, pollable).await?;
                Ok(true)
            }
            Some(false) => Ok(false),
            None => {
                let ready = poll::HostPollable::ready(self.table, pollable).await?;
                journal.record("pollable-ready", &key, &ready);
                Ok(ready)
            }
        }
    }

    async fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::block(self.table, pollable).await
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}
