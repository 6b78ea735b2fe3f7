//! A tap on accepted records, for live tails (`tail`). With no subscriber it costs a
//! request one atomic load. With subscribers, a batch goes only to those that read its
//! account and kind and whose `Interest` its payloads pass (a byte search, far cheaper
//! than parsing), each through its own bounded inbox; a batch nobody wants is not even
//! cloned. Matching and rendering run in each subscriber's task, off the request path. A
//! subscriber whose inbox is full loses batches and is told how many (`Lagged`), never
//! slowing ingest or the other subscribers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use memchr::memmem;
use tokio::sync::{Notify, mpsc};

use super::record::{ContentType, RecordBatch};
use crate::model::{AccountId, Kind};

/// Batches one subscriber may have waiting.
pub const INBOX_BATCHES: usize = 1024;

/// Payload bytes one subscriber may have waiting (past the first batch): what a slow
/// tail can keep alive, since a waiting batch holds its request's body.
pub const INBOX_BYTES: usize = 8 << 20;

/// What a subscriber wants handed to it.
pub struct Interest {
    /// Sorted.
    accounts: Vec<AccountId>,
    kind: Kind,
    /// Byte strings a Logz.io log line must contain to be worth parsing: every clause
    /// needs one of its alternatives (searchers built once). Empty: every payload passes.
    clauses: Vec<Vec<memmem::Finder<'static>>>,
}

impl Interest {
    /// Batches of `kind` for `accounts` (sorted), whose lines contain, for every clause,
    /// one of its byte strings.
    pub fn new(accounts: Vec<AccountId>, kind: Kind, clauses: Vec<Vec<Box<[u8]>>>) -> Interest {
        Interest {
            accounts,
            kind,
            clauses: clauses
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|n| memmem::Finder::new(n).into_owned())
                        .collect()
                })
                .collect(),
        }
    }

    /// Whether two subscribers want the same batches of an account they both read.
    fn same_filter(&self, other: &Interest) -> bool {
        let same_clause = |a: &Vec<memmem::Finder<'static>>, b: &Vec<memmem::Finder<'static>>| {
            a.iter()
                .map(|f| f.needle())
                .eq(b.iter().map(|f| f.needle()))
        };
        self.kind == other.kind
            && self.clauses.len() == other.clauses.len()
            && self
                .clauses
                .iter()
                .zip(&other.clauses)
                .all(|(a, b)| same_clause(a, b))
    }

    /// Whether some payload of `batch` could be wanted. Only plain JSON lines are searched:
    /// in OTLP, or where an escape (`\`) could spell a value differently, all pass.
    fn passes(&self, batch: &RecordBatch) -> bool {
        if self.clauses.is_empty() || batch.envelope.content_type != ContentType::JsonObject {
            return true;
        }
        batch.payloads.iter().any(|p| {
            memchr::memchr(b'\\', p).is_some()
                || self
                    .clauses
                    .iter()
                    .all(|alternatives| alternatives.iter().any(|finder| finder.find(p).is_some()))
        })
    }
}

/// One subscriber's side of the tap.
struct Inbox {
    tx: mpsc::Sender<Arc<RecordBatch>>,
    /// Copied into the routes, which are what `readers` consults.
    interest: Mutex<Arc<Interest>>,
    /// Batches lost since the subscriber last looked.
    lost: AtomicU64,
    /// Payload bytes waiting.
    queued_bytes: AtomicUsize,
}

impl Inbox {
    fn hand(&self, batch: &Arc<RecordBatch>) {
        let bytes = batch.payload_bytes();
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if (queued > 0 && queued + bytes > INBOX_BYTES)
            || self.tx.try_send(Arc::clone(batch)).is_err()
        {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Subscribers of one account that want the same batches: a batch is tested once for
/// all of them (ten people watching one shared link cost one search).
struct Group {
    interest: Arc<Interest>,
    inboxes: Vec<Arc<Inbox>>,
}

/// Who reads each account.
type Routes = HashMap<AccountId, Vec<Group>>;

pub struct Tap {
    subscribers: AtomicUsize,
    routes: ArcSwap<Routes>,
    /// Every inbox, to rebuild `routes` when a subscriber comes, goes or changes reach.
    inboxes: Mutex<Vec<Arc<Inbox>>>,
    /// Woken when the first subscriber arrives: a source that reads only while someone
    /// tails (the Kafka one) waits on it.
    watched: Notify,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            subscribers: AtomicUsize::new(0),
            routes: ArcSwap::from_pointee(Routes::new()),
            inboxes: Mutex::new(Vec::new()),
            watched: Notify::new(),
        }
    }
}

/// The subscribers a batch is for; empty when nobody wants it.
pub struct Readers(Vec<Arc<Inbox>>);

impl Readers {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands `batch` to each reader (a full inbox loses it, and counts the loss).
    pub fn hand(self, batch: Arc<RecordBatch>) {
        for inbox in &self.0 {
            inbox.hand(&batch);
        }
    }
}

impl Tap {
    /// Whether anyone is listening: the one check ingest pays for when nobody is.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Resolves once someone is subscribed.
    pub async fn until_watched(&self) {
        while !self.is_watched() {
            // `notify_one` keeps a permit when nobody waits yet: no wake-up is lost.
            self.watched.notified().await;
        }
    }

    /// Who wants `batch`: subscribers to its account and kind that its payloads pass.
    pub fn readers(&self, batch: &RecordBatch) -> Readers {
        let routes = self.routes.load();
        let mut readers = Vec::new();
        for group in routes.get(&batch.envelope.account_id).into_iter().flatten() {
            let interest = &group.interest;
            if interest.kind == batch.envelope.kind && interest.passes(batch) {
                readers.extend(group.inboxes.iter().cloned());
            }
        }
        Readers(readers)
    }

    /// Hands an accepted batch to whoever wants it.
    pub fn offer(&self, batch: RecordBatch) {
        let readers = self.readers(&batch);
        if !readers.is_empty() {
            readers.hand(Arc::new(batch));
        }
    }

    pub fn subscribe(self: &Arc<Tap>, interest: Interest) -> Subscription {
        let (tx, rx) = mpsc::channel(INBOX_BATCHES);
        let inbox = Arc::new(Inbox {
            tx,
            interest: Mutex::new(Arc::new(interest)),
            lost: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
        });
        self.inboxes
            .lock()
            .expect("the inbox list is never poisoned")
            .push(Arc::clone(&inbox));
        self.reroute();
        if self.subscribers.fetch_add(1, Ordering::Relaxed) == 0 {
            self.watched.notify_one();
        }
        Subscription {
            rx,
            inbox,
            tap: Arc::clone(self),
        }
    }

    /// Rebuilds the routes from every inbox's interest (rare: subscribers come and go,
    /// and change what they want when grants change).
    fn reroute(&self) {
        let inboxes = self
            .inboxes
            .lock()
            .expect("the inbox list is never poisoned");
        let mut routes = Routes::new();
        for inbox in inboxes.iter() {
            let interest = Arc::clone(&inbox.interest.lock().expect("never poisoned"));
            for account in &interest.accounts {
                let groups = routes.entry(*account).or_default();
                match groups
                    .iter_mut()
                    .find(|g| g.interest.same_filter(&interest))
                {
                    Some(group) => group.inboxes.push(Arc::clone(inbox)),
                    None => groups.push(Group {
                        interest: Arc::clone(&interest),
                        inboxes: vec![Arc::clone(inbox)],
                    }),
                }
            }
        }
        self.routes.store(Arc::new(routes));
    }
}

/// One subscriber's view of the tap; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Arc<RecordBatch>>,
    inbox: Arc<Inbox>,
    tap: Arc<Tap>,
}

/// What a subscriber receives next.
pub enum Next {
    Batch(Arc<RecordBatch>),
    /// This many batches were lost because the subscriber fell behind.
    Lagged(u64),
}

impl Subscription {
    /// How many batches were lost, if any, else the next batch; `None` once the tap is
    /// gone.
    pub async fn recv(&mut self) -> Option<Next> {
        let lost = self.inbox.lost.swap(0, Ordering::Relaxed);
        if lost > 0 {
            return Some(Next::Lagged(lost));
        }
        let batch = self.rx.recv().await?;
        self.inbox
            .queued_bytes
            .fetch_sub(batch.payload_bytes(), Ordering::Relaxed);
        Some(Next::Batch(batch))
    }

    /// Changes what this subscriber is handed from now on.
    pub fn set_interest(&self, interest: Interest) {
        *self.inbox.interest.lock().expect("never poisoned") = Arc::new(interest);
        self.tap.reroute();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tap
            .inboxes
            .lock()
            .expect("the inbox list is never poisoned")
            .retain(|inbox| !Arc::ptr_eq(inbox, &self.inbox));
        self.tap.reroute();
        self.tap.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::record::{Envelope, Payloads};
    use crate::model::TokenId;

    fn batch(account: u64, kind: Kind, line: &str) -> RecordBatch {
        RecordBatch {
            envelope: Envelope {
                kind,
                account_id: AccountId(account),
                token_id: TokenId("1".into()),
                log_type: None,
                content_type: ContentType::JsonObject,
            },
            payloads: Payloads::from_buf([bytes::Bytes::from(line.to_owned())]),
        }
    }

    fn interest(accounts: &[u64], clauses: &[&[&str]]) -> Interest {
        Interest::new(
            accounts.iter().map(|a| AccountId(*a)).collect(),
            Kind::Logs,
            clauses
                .iter()
                .map(|c| c.iter().map(|s| s.as_bytes().into()).collect())
                .collect(),
        )
    }

    async fn next_line(sub: &mut Subscription) -> String {
        match sub.recv().await {
            Some(Next::Batch(b)) => String::from_utf8(b.payloads[0].to_vec()).unwrap(),
            _ => panic!("a batch"),
        }
    }

    #[tokio::test]
    async fn batches_go_only_to_subscribers_of_their_account_kind_and_needles() {
        let tap = Arc::new(Tap::default());
        assert!(!tap.is_watched());
        let mut all_of_1 = tap.subscribe(interest(&[1], &[]));
        let mut errors_of_1 = tap.subscribe(interest(&[1, 2], &[&["error", "fatal"]]));
        assert!(tap.is_watched());
        for (account, kind, line) in [
            (1, Kind::Logs, r#"{"level":"info"}"#),
            (3, Kind::Logs, r#"{"level":"error"}"#),
            (1, Kind::Traces, r#"{"level":"error"}"#),
            (2, Kind::Logs, r#"{"level":"fatal"}"#),
            (1, Kind::Logs, r#"{"msg":"\u0065rror"}"#),
        ] {
            tap.offer(batch(account, kind, line));
        }
        assert_eq!(next_line(&mut all_of_1).await, r#"{"level":"info"}"#);
        assert_eq!(next_line(&mut all_of_1).await, r#"{"msg":"\u0065rror"}"#);
        // An escape could spell a needle: that line passes, for the tail to parse.
        assert_eq!(next_line(&mut errors_of_1).await, r#"{"level":"fatal"}"#);
        assert_eq!(next_line(&mut errors_of_1).await, r#"{"msg":"\u0065rror"}"#);

        // Narrowed to account 2 only: account 1's batches stop.
        errors_of_1.set_interest(interest(&[2], &[]));
        assert_eq!(tap.readers(&batch(1, Kind::Logs, "error")).0.len(), 1);
        // Two subscribers with one filter on an account form one group.
        let a = tap.subscribe(interest(&[7], &[&["error"]]));
        let b = tap.subscribe(interest(&[7, 8], &[&["error"]]));
        assert_eq!(tap.routes.load()[&AccountId(7)].len(), 1);
        assert_eq!(tap.readers(&batch(7, Kind::Logs, "error")).0.len(), 2);
        drop((a, b));
        drop(all_of_1);
        drop(errors_of_1);
        assert!(!tap.is_watched());
        assert!(tap.readers(&batch(1, Kind::Logs, "{}")).is_empty());
    }

    #[tokio::test]
    async fn a_full_inbox_loses_batches_and_says_how_many() {
        let tap = Arc::new(Tap::default());
        let mut sub = tap.subscribe(interest(&[1], &[]));
        for _ in 0..INBOX_BATCHES + 5 {
            tap.offer(batch(1, Kind::Logs, "{}"));
        }
        assert!(matches!(sub.recv().await, Some(Next::Lagged(5))));
        assert!(matches!(sub.recv().await, Some(Next::Batch(_))));
    }

    #[tokio::test]
    async fn waiting_bytes_are_capped_past_the_first_batch() {
        let tap = Arc::new(Tap::default());
        let mut sub = tap.subscribe(interest(&[1], &[]));
        let big = "x".repeat(INBOX_BYTES);
        tap.offer(batch(1, Kind::Logs, &big));
        tap.offer(batch(1, Kind::Logs, "{}"));
        assert!(matches!(sub.recv().await, Some(Next::Lagged(1))));
        assert!(matches!(sub.recv().await, Some(Next::Batch(_))));
        // Read: room again.
        tap.offer(batch(1, Kind::Logs, "{}"));
        assert!(matches!(sub.recv().await, Some(Next::Batch(_))));
    }
}
