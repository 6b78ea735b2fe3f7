//! A tap on accepted records, for live tails (`tail`). With no subscriber it costs a
//! request one atomic load; with subscribers, one `Arc` and a broadcast send. Matching
//! and rendering run in each subscriber's task, off the request path. A subscriber that
//! falls `CAPACITY` batches behind loses the oldest and is told how many (`Lagged`),
//! never slowing ingest or the other subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, broadcast};

use super::record::RecordBatch;

/// Batches a subscriber may be behind before it starts losing the oldest.
pub const CAPACITY: usize = 1024;

pub struct Tap {
    subscribers: AtomicUsize,
    tx: broadcast::Sender<Arc<RecordBatch>>,
    /// Woken when the first subscriber arrives: a source that reads only while someone
    /// tails (the Kafka one) waits on it.
    watched: Notify,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            subscribers: AtomicUsize::new(0),
            tx: broadcast::Sender::new(CAPACITY),
            watched: Notify::new(),
        }
    }
}

impl Tap {
    /// Whether anyone is listening: the one check ingest pays for when nobody is.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Hands an accepted batch to every subscriber.
    pub fn offer(&self, batch: Arc<RecordBatch>) {
        // No receiver left (the last one just went): nothing to do.
        let _ = self.tx.send(batch);
    }

    /// Resolves once someone is subscribed.
    pub async fn until_watched(&self) {
        while !self.is_watched() {
            // `notify_one` keeps a permit when nobody waits yet: no wake-up is lost.
            self.watched.notified().await;
        }
    }

    pub fn subscribe(self: &Arc<Tap>) -> Subscription {
        let rx = self.tx.subscribe();
        if self.subscribers.fetch_add(1, Ordering::Relaxed) == 0 {
            self.watched.notify_one();
        }
        Subscription {
            rx,
            tap: Arc::clone(self),
        }
    }
}

/// One subscriber's view of the tap; dropping it unsubscribes.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<RecordBatch>>,
    tap: Arc<Tap>,
}

/// What a subscriber receives next.
pub enum Next {
    Batch(Arc<RecordBatch>),
    /// This many batches were lost because the subscriber fell behind.
    Lagged(u64),
}

impl Subscription {
    /// The next batch, or how many were lost; `None` once the tap is gone.
    pub async fn recv(&mut self) -> Option<Next> {
        match self.rx.recv().await {
            Ok(batch) => Some(Next::Batch(batch)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Next::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tap.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::record::{ContentType, Envelope};
    use crate::model::{AccountId, Kind};

    fn batch(n: u8) -> Arc<RecordBatch> {
        Arc::new(RecordBatch {
            envelope: Envelope {
                kind: Kind::Logs,
                account_id: AccountId(1),
                token_id: crate::model::TokenId("1".into()),
                log_type: None,
                content_type: ContentType::JsonObject,
            },
            payloads: vec![bytes::Bytes::from(vec![n])],
        })
    }

    #[tokio::test]
    async fn subscribers_are_counted_and_a_slow_one_learns_what_it_lost() {
        let tap = Arc::new(Tap::default());
        assert!(!tap.is_watched());
        let mut sub = tap.subscribe();
        assert!(tap.is_watched());
        for n in 0..(CAPACITY + 3) {
            tap.offer(batch(n as u8));
        }
        assert!(matches!(sub.recv().await, Some(Next::Lagged(3))));
        assert!(matches!(sub.recv().await, Some(Next::Batch(b)) if b.payloads[0][0] == 3));
        drop(sub);
        assert!(!tap.is_watched());
    }
}
