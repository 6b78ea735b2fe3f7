//! A future polled only when it has something to say: on its first poll, and again only
//! after its own waker fired (or it was changed). A task that `select!`s over a busy
//! future and a quiet one — a connection's requests and its shutdown and timer, the
//! batcher's inbox and its age timer — polls every branch on every wake-up; a shutdown
//! token's future takes the token's lock twice a poll, and a timer registers the task's
//! waker again each time. Through `OnWake`, those polls cost two atomics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Wraps `inner`, which is polled with a waker of its own (see the module comment).
pub struct OnWake<F> {
    inner: Pin<Box<F>>,
    signal: Arc<WakeSignal>,
    waker: Waker,
    /// `inner` must be polled (first poll, its waker fired, or it was changed).
    due: bool,
}

/// The waker the inner future holds: it marks the signal and wakes the task.
struct WakeSignal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> OnWake<F> {
    pub fn new(inner: F) -> OnWake<F> {
        let signal = Arc::new(WakeSignal {
            fired: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        OnWake {
            inner: Box::pin(inner),
            waker: Waker::from(Arc::clone(&signal)),
            signal,
            due: true,
        }
    }

    /// Changes the inner future (a timer's deadline); it is polled at the next poll.
    pub fn change(&mut self, f: impl FnOnce(Pin<&mut F>)) {
        f(self.inner.as_mut());
        self.due = true;
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.signal.task.register(cx.waker());
        if !this.due && !this.signal.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.due = false;
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

impl<F> Unpin for OnWake<F> {}
