//! tollgate: a high-throughput ingest gateway. Shippers POST logs, metrics and traces
//! (Logz.io bulk, OTLP/HTTP, Prometheus remote_write) with a shipping token; tollgate
//! authenticates the token against a lock-free, hot-reloaded table and forwards the
//! records downstream in batches.
//!
//! Module map (dependencies point one way: `ingest` → `tokens`, `forward`; `tail` →
//! `tokens`, `forward`; `control` → `tokens::wire` only; everything may use `config`,
//! `model`, `proto`, `telemetry`, `backoff`, `private_files`, `thread_priority`; only `app`
//! wires the parts together):
//! - `app`: the composition root: builds every part from `Config`, runs and drains them.
//! - `config`: the typed configuration, its defaults, overrides and validation.
//! - `model`: the shared vocabulary (kinds, account and token ids, label enums).
//! - `telemetry`: every metric, registered where each part's handles are built; logging.
//! - `server`: the front door (accept loop, timeouts, TLS, graceful shutdown) and admin.
//! - `ingest`: routes, capped body reading, per-line decisions, the status-code mapping.
//! - `tokens`: the token table, its sources, the persisted snapshot, the read grants.
//! - `forward`: the `submit` → ack seam, the spool, the batcher and the sinks.
//! - `tail`: the read path: live tails for API and shared tokens.
//! - `filters`: drop filters' shapes, checks and matching, shared by the control plane
//!   and the gateway.
//! - `volume`: what each account may still send today: leases from the fleet's daily
//!   counts, spent from local state on the request path.
//! - `control`: the control plane: management API and page, use cases, product rules,
//!   its store, and the token feed gateways follow.
//! - `clock`: "now" for everything that counts days and expiries, movable by tests.
//! - `backoff`: the retry pacing the batcher and the token feed share.
//! - `proto`: wire messages (OTLP, `google.rpc.Status`, remote_write) shared by both.
//! - `private_files`: state files and directories readable by their owner only.
//! - `thread_priority`: how a background thread steps aside for the request workers.
#![forbid(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod control;
pub mod filters;
pub mod forward;
pub mod ingest;
pub mod model;
pub mod on_wake;
pub mod private_files;
pub mod proto;
pub mod server;
pub mod tail;
pub mod telemetry;
pub mod thread_priority;
pub mod tokens;
pub mod volume;
