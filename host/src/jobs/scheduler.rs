//! The local machine's resources and who gets them: a CPU/GPU/memory [`Inventory`] and a
//! [`Scheduler`] that hands out exclusive allocations (specific cores to pin, specific GPUs for
//! `CUDA_VISIBLE_DEVICES`) to queued jobs, fairly between owners (runs): owners with waiting jobs
//! are served in turn, each owner's jobs in submission order. An allocation is returned when its
//! [`Allocation`] is dropped.

use crate::capability::{CapResult, CapabilityError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// One GPU of the inventory (in `[jobs.local] gpus`: `{ index, name, memory-mb }`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// The index `CUDA_VISIBLE_DEVICES` uses.
    pub index: u32,
    pub name: String,
    #[serde(default, alias = "memory-mb")]
    pub memory_mb: u64,
}

/// What the machine offers to jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// CPU core ids jobs may be pinned to.
    pub cores: Vec<usize>,
    pub gpus: Vec<Gpu>,
    pub memory_mb: u64,
}

impl Inventory {
    /// This machine: the cores this process may run on, GPUs from `nvidia-smi` (none if it is
    /// absent or fails), physical memory.
    pub fn detect() -> Inventory {
        Inventory {
            cores: allowed_cores(),
            gpus: nvidia_smi_gpus(),
            memory_mb: physical_memory_mb(),
        }
    }
}

fn allowed_cores() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let cores: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect();
            if !cores.is_empty() {
                return cores;
            }
        }
    }
    (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

fn physical_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// GPUs as `nvidia-smi` lists them; none when it is missing or fails.
pub fn nvidia_smi_gpus() -> Vec<Gpu> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout))
        }
        _ => Vec::new(),
    }
}

/// `0, NVIDIA H100 80GB HBM3, 81559` lines → GPUs.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(',').map(str::trim);
            let index = fields.next()?.parse().ok()?;
            let name = fields.next()?.to_string();
            let memory_mb = fields.next().and_then(|m| m.parse().ok()).unwrap_or(0);
            Some(Gpu {
                index,
                name,
                memory_mb,
            })
        })
        .collect()
}

/// What a job asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub cpus: usize,
    pub gpus: usize,
    /// GPU model the job needs (matched as a case-insensitive substring of the name).
    pub gpu_kind: Option<String>,
    pub memory_mb: u64,
}

/// Resources held by one job; returned on drop.
#[derive(Debug)]
pub struct Allocation {
    pub cores: Vec<usize>,
    pub gpus: Vec<Gpu>,
    pub memory_mb: u64,
    /// `None` once the resources went back some other way.
    scheduler: Option<Arc<SchedulerState>>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            let mut state = scheduler.lock();
            state.give_back(self);
            state.dispatch(&scheduler);
        }
    }
}

struct Waiter {
    request: Request,
    reply: oneshot::Sender<Allocation>,
}

struct State {
    free_cores: BTreeSet<usize>,
    free_gpus: BTreeSet<u32>,
    free_memory_mb: u64,
    queues: BTreeMap<String, VecDeque<Waiter>>,
    /// The owner served last, so the next dispatch starts after it.
    last_served: Option<String>,
}

struct SchedulerState {
    inventory: Inventory,
    state: Mutex<State>,
}

impl std::fmt::Debug for SchedulerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("inventory", &self.inventory)
            .finish_non_exhaustive()
    }
}

impl SchedulerState {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl State {
    fn give_back(&mut self, allocation: &Allocation) {
        self.free_cores.extend(&allocation.cores);
        self.free_gpus
            .extend(allocation.gpus.iter().map(|g| g.index));
        self.free_memory_mb += allocation.memory_mb;
    }

    /// Start every waiting job that fits, owners in turn after the last one served.
    fn dispatch(&mut self, scheduler: &Arc<SchedulerState>) {
        loop {
            let owners: Vec<String> = self.queues.keys().cloned().collect();
            if owners.is_empty() {
                return;
            }
            let start = self
                .last_served
                .as_ref()
                .and_then(|last| owners.iter().position(|o| o > last))
                .unwrap_or(0);
            let mut served = false;
            for owner in owners[start..].iter().chain(&owners[..start]) {
                let queue = self.queues.get_mut(owner).expect("listed");
                // Drop waiters whose job was cancelled while queued.
                while queue.front().is_some_and(|w| w.reply.is_closed()) {
                    queue.pop_front();
                }
                let Some(request) = queue.front().map(|w| w.request.clone()) else {
                    continue;
                };
                let Some((cores, gpus)) = self.fit(&request, &scheduler.inventory) else {
                    continue;
                };
                let waiter = self
                    .queues
                    .get_mut(owner)
                    .and_then(VecDeque::pop_front)
                    .expect("front exists");
                for core in &cores {
                    self.free_cores.remove(core);
                }
                for gpu in &gpus {
                    self.free_gpus.remove(&gpu.index);
                }
                self.free_memory_mb -= waiter.request.memory_mb;
                let allocation = Allocation {
                    cores,
                    gpus,
                    memory_mb: waiter.request.memory_mb,
                    scheduler: Some(scheduler.clone()),
                };
                if let Err(mut allocation) = waiter.reply.send(allocation) {
                    // The job went away between the check and now: give everything back here
                    // (its drop must not dispatch again under this lock).
                    allocation.scheduler = None;
                    self.give_back(&allocation);
                }
                self.last_served = Some(owner.clone());
                served = true;
                break;
            }
            self.queues.retain(|_, q| !q.is_empty());
            if !served {
                return;
            }
        }
    }

    fn fit(&self, request: &Request, inventory: &Inventory) -> Option<(Vec<usize>, Vec<Gpu>)> {
        if self.free_cores.len() < request.cpus || self.free_memory_mb < request.memory_mb {
            return None;
        }
        let gpus: Vec<Gpu> = inventory
            .gpus
            .iter()
            .filter(|g| self.free_gpus.contains(&g.index))
            .filter(|g| kind_matches(g, request.gpu_kind.as_deref()))
            .take(request.gpus)
            .cloned()
            .collect();
        if gpus.len() < request.gpus {
            return None;
        }
        Some((
            self.free_cores.iter().take(request.cpus).copied().collect(),
            gpus,
        ))
    }
}

fn kind_matches(gpu: &Gpu, kind: Option<&str>) -> bool {
    kind.is_none_or(|k| gpu.name.to_lowercase().contains(&k.to_lowercase()))
}

/// Hands out the inventory.
#[derive(Clone, Debug)]
pub struct Scheduler {
    inner: Arc<SchedulerState>,
}

impl Scheduler {
    pub fn new(inventory: Inventory) -> Scheduler {
        let state = State {
            free_cores: inventory.cores.iter().copied().collect(),
            free_gpus: inventory.gpus.iter().map(|g| g.index).collect(),
            free_memory_mb: inventory.memory_mb,
            queues: BTreeMap::new(),
            last_served: None,
        };
        Scheduler {
            inner: Arc::new(SchedulerState {
                inventory,
                state: Mutex::new(state),
            }),
        }
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inner.inventory
    }

    /// Free resources now: (cores, GPUs, memory MB).
    pub fn free(&self) -> (usize, usize, u64) {
        let state = self.inner.lock();
        (
            state.free_cores.len(),
            state.free_gpus.len(),
            state.free_memory_mb,
        )
    }

    /// Refuse a request that could never be met on this machine.
    pub fn check(&self, request: &Request) -> CapResult<()> {
        let inventory = &self.inner.inventory;
        let matching = inventory
            .gpus
            .iter()
            .filter(|g| kind_matches(g, request.gpu_kind.as_deref()))
            .count();
        let problem = if request.cpus > inventory.cores.len() {
            Some(format!(
                "{} CPU cores; the machine offers {}",
                request.cpus,
                inventory.cores.len()
            ))
        } else if request.gpus > matching {
            Some(format!(
                "{} GPUs{}; the machine offers {matching}",
                request.gpus,
                request
                    .gpu_kind
                    .as_ref()
                    .map(|k| format!(" of kind {k:?}"))
                    .unwrap_or_default()
            ))
        } else if request.memory_mb > inventory.memory_mb {
            Some(format!(
                "{} MB of memory; the machine offers {} MB",
                request.memory_mb, inventory.memory_mb
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(CapabilityError::InvalidArgument(format!(
                "the job asks for {p}"
            ))),
            None => Ok(()),
        }
    }

    /// Wait for `request`'s resources, queued behind `owner`'s earlier jobs and served in turn
    /// with other owners. Dropping the future leaves the queue.
    pub async fn acquire(&self, owner: &str, request: Request) -> CapResult<Allocation> {
        self.check(&request)?;
        let (reply, allocation) = oneshot::channel();
        {
            let mut state = self.inner.lock();
            state
                .queues
                .entry(owner.to_string())
                .or_default()
                .push_back(Waiter { request, reply });
            state.dispatch(&self.inner);
        }
        allocation
            .await
            .map_err(|_| CapabilityError::Internal("the job scheduler went away".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inventory(cores: usize, gpus: &[&str]) -> Inventory {
        Inventory {
            cores: (0..cores).collect(),
            gpus: gpus
                .iter()
                .enumerate()
                .map(|(i, n)| Gpu {
                    index: i as u32,
                    name: n.to_string(),
                    memory_mb: 0,
                })
                .collect(),
            memory_mb: 64_000,
        }
    }

    fn request(cpus: usize, gpus: usize) -> Request {
        Request {
            cpus,
            gpus,
            gpu_kind: None,
            memory_mb: 1000,
        }
    }

    #[test]
    fn parses_nvidia_smi() {
        let gpus =
            parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559\n");
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            gpus[1],
            Gpu {
                index: 1,
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_mb: 81559
            }
        );
    }

    #[tokio::test]
    async fn allocations_are_exclusive_and_returned_on_drop() {
        let scheduler = Scheduler::new(inventory(4, &["a100", "a100"]));
        let a = scheduler.acquire("run", request(2, 1)).await.unwrap();
        let b = scheduler.acquire("run", request(2, 1)).await.unwrap();
        assert!(a.cores.iter().all(|c| !b.cores.contains(c)));
        assert_ne!(a.gpus[0].index, b.gpus[0].index);
        assert_eq!(scheduler.free(), (0, 0, 62_000));
        let waiting = tokio::spawn({
            let scheduler = scheduler.clone();
            async move {
                scheduler
                    .acquire("run", request(1, 0))
                    .await
                    .unwrap()
                    .cores
                    .clone()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no free core yet");
        drop(a);
        let cores = waiting.await.unwrap();
        assert_eq!(cores.len(), 1);
        drop(b);
        assert_eq!(scheduler.free(), (4, 2, 64_000));
        let err = scheduler
            .acquire("run", request(1, 3))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 GPUs; the machine offers 2"), "{err}");
        let mut wrong_kind = request(1, 1);
        wrong_kind.gpu_kind = Some("h100".into());
        assert!(scheduler.check(&wrong_kind).is_err());
    }

    #[tokio::test]
    async fn owners_are_served_in_turn() {
        let scheduler = Scheduler::new(inventory(1, &[]));
        let held = scheduler.acquire("a", request(1, 0)).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Run "a" queues three jobs before run "b" queues one: "b" must not wait for all of them.
        for (owner, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
            let (scheduler, order) = (scheduler.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let allocation = scheduler.acquire(owner, request(1, 0)).await.unwrap();
                order.lock().unwrap().push(format!("{owner}{n}"));
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(allocation);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["b1", "a1", "a2", "a3"]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let scheduler = Scheduler::new(inventory(1, &[]));
        let held = scheduler.acquire("a", request(1, 0)).await.unwrap();
        let gave_up = tokio::time::timeout(
            Duration::from_millis(20),
            scheduler.acquire("a", request(1, 0)),
        )
        .await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(scheduler.free().0, 1, "the abandoned request took nothing");
        scheduler.acquire("b", request(1, 0)).await.unwrap();
    }
}
