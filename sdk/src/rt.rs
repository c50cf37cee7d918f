//! A tiny single-threaded executor for plugins, driven by `wasi:io/poll`.
//!
//! Host operations that take time (a chat call, a job) hand out pollables. [`wait`] turns one
//! into a future; [`block_on`] runs a future to completion, and whenever every task is waiting
//! it asks the host which pollables are ready with one `poll` call — so `futures::join!`,
//! `join_all` or `select` over several host operations run them concurrently.
//!
//! ```ignore
//! use sophon_sdk::{llm, rt};
//! let replies = rt::block_on(futures::future::join_all(
//!     prompts.iter().map(|p| llm::chat_async(llm::ChatRequest::user(p))),
//! ));
//! ```
//!
//! Invariant: a future driven by [`block_on`] may only wait on Sophon pollables (through
//! [`wait`] or the `*_async` helpers); waiting on anything else would never wake, so
//! `block_on` panics with an explanation instead of hanging.

/// A host operation's readiness (`wasi:io/poll.pollable`).
#[cfg(target_arch = "wasm32")]
pub use crate::bindings::host::wasi::io::poll::Pollable;
#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing::MockPollable as Pollable;

/// Which of `pollables` are ready, blocking until one is.
fn poll(pollables: &[&Pollable]) -> Vec<u32> {
    host!(
        crate::bindings::host::wasi::io::poll::poll(pollables),
        (0..pollables.len() as u32).collect()
    )
}
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

thread_local! {
    /// Pollables that pending futures wait on, with the waker to call when each is ready.
    static WAITING: RefCell<Vec<(Rc<Pollable>, Waker)>> = const { RefCell::new(Vec::new()) };
}

/// A future that completes once `pollable` is ready.
pub fn wait(pollable: Pollable) -> Ready {
    Ready {
        pollable: Rc::new(pollable),
    }
}

/// Future returned by [`wait`].
pub struct Ready {
    pollable: Rc<Pollable>,
}

impl Future for Ready {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.pollable.ready() {
            return Poll::Ready(());
        }
        WAITING.with(|w| {
            w.borrow_mut()
                .push((self.pollable.clone(), cx.waker().clone()))
        });
        Poll::Pending
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Run `future` to completion, blocking in `wasi:io/poll.poll` while it waits on the host.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        flag.0.store(false, Ordering::Release);
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            WAITING.with(|w| w.borrow_mut().clear());
            return value;
        }
        if flag.0.load(Ordering::Acquire) {
            continue;
        }
        let waiting = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
        assert!(
            !waiting.is_empty(),
            "sophon_sdk::rt::block_on: the future is pending but waits on no host pollable; \
             only Sophon futures (rt::wait and the *_async helpers) can make progress here"
        );
        let pollables: Vec<&Pollable> = waiting.iter().map(|(p, _)| p.as_ref()).collect();
        for index in poll(&pollables) {
            waiting[index as usize].1.wake_by_ref();
        }
    }
}
