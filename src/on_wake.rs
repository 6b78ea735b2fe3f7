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
    /// The task's waker as last registered with `signal`: the same task polling again
    /// need not register it again.
    registered: Option<Waker>,
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
            registered: None,
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
        let same_task = this
            .registered
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()));
        if !same_task {
            this.signal.task.register(cx.waker());
            this.registered = Some(cx.waker().clone());
        }
        if !this.due && !this.signal.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        // The wake that set `fired` took the task's waker out of `signal`: put it back
        // before the inner future can wake it again.
        this.signal.task.register(cx.waker());
        this.due = false;
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

impl<F> Unpin for OnWake<F> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tokio::time::{Instant, sleep_until};

    /// Counts its polls and is ready once its flag is set (waking whoever polled it).
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<AtomicWaker>,
    }

    impl Future for Counted {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.waker.register(cx.waker());
            if self.ready.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[tokio::test]
    async fn the_inner_future_is_polled_only_first_and_after_it_woke() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(AtomicWaker::new());
        let mut quiet = OnWake::new(Counted {
            polls: Arc::clone(&polls),
            ready: Arc::clone(&ready),
            waker: Arc::clone(&waker),
        });
        for _ in 0..100 {
            assert!(futures_util::poll!(&mut quiet).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        ready.store(true, Ordering::SeqCst);
        waker.wake();
        assert!(futures_util::poll!(&mut quiet).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_moved_after_it_fired_wakes_the_task_again() {
        let start = Instant::now();
        let mut timer = OnWake::new(sleep_until(start + Duration::from_secs(1)));
        for round in 1..=3u32 {
            // Only the timer can wake this task: a lost wake-up would hang the test
            // (tokio's paused clock then reports no progress).
            tokio::time::timeout(Duration::from_secs(10), &mut timer)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the timer never woke the task"));
            assert_eq!(start.elapsed(), Duration::from_secs(u64::from(round)));
            let next = start + Duration::from_secs(u64::from(round + 1));
            timer.change(|sleep| sleep.reset(next));
        }
    }
}
