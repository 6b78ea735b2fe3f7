//! `[server]`: the front door's listeners, limits and timeouts (DESIGN §1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, refuse_zero, secs};

/// The front door: listeners, limits and timeouts (DESIGN §1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Public ingest listener.
    pub listen: SocketAddr,
    /// Admin listener: `/metrics`, `/healthz`, `/readyz`. Keep it off the public network.
    pub admin_listen: SocketAddr,
    /// Largest request body accepted as sent (before decompression); larger is 413.
    pub max_body_bytes: u64,
    /// Largest body after decompression (gzip bomb guard); larger is 413.
    pub max_decompressed_bytes: u64,
    /// Longest log line; a longer one is counted as oversized and dropped.
    pub max_line_bytes: usize,
    /// Largest request head (request line + headers) a client may send.
    pub max_header_bytes: usize,
    /// A request head must be complete within this (slowloris guard): the first request's
    /// from accept (TLS handshake included), a later one's (HTTP/1.1) from its first byte.
    #[serde(deserialize_with = "secs")]
    pub header_read_timeout_secs: Duration,
    /// A client must send its whole body within this time, or gets 408.
    #[serde(deserialize_with = "secs")]
    pub body_read_timeout_secs: Duration,
    /// A keep-alive connection (HTTP/1.1 or h2) with no request in progress this long
    /// after its last one ended is closed.
    #[serde(deserialize_with = "secs")]
    pub idle_timeout_secs: Duration,
    /// Requests in flight at once; more are shed with 503 before their body is read.
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies being read at once, across requests: a body with
    /// `Content-Length` takes its length before it is read, one without takes its bytes as
    /// they arrive; past it, 503 (before the body is read, or mid-body).
    pub max_inflight_body_bytes: u64,
    /// Bytes that requests hold once their body is read, across requests: the body, its
    /// decompressed form, its lines or decoded structs, each counted before it is
    /// allocated, beyond each request's first 64 KiB; past it, 503 (413 for a request that
    /// alone would need more).
    pub max_inflight_decoded_bytes: u64,
    /// How long shutdown waits for in-flight requests before closing connections.
    #[serde(deserialize_with = "secs")]
    pub shutdown_grace_secs: Duration,
    /// TLS on the public listener; plain HTTP (with h2c) when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8070)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_body_bytes: 10 * 1024 * 1024,
            max_decompressed_bytes: 100 * 1024 * 1024,
            max_line_bytes: 500_000,
            max_header_bytes: 64 * 1024,
            header_read_timeout_secs: Duration::from_secs(10),
            body_read_timeout_secs: Duration::from_secs(30),
            idle_timeout_secs: Duration::from_secs(90),
            max_concurrent_requests: 4096,
            max_inflight_body_bytes: 512 * 1024 * 1024,
            max_inflight_decoded_bytes: 512 * 1024 * 1024,
            shutdown_grace_secs: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// PEM files for the public listener's certificate chain and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            return Err(ConfigError::invalid(
                "server.admin_listen",
                "must differ from server.listen",
            ));
        }
        refuse_zero(&[
            ("server.max_body_bytes", self.max_body_bytes == 0),
            (
                "server.max_decompressed_bytes",
                self.max_decompressed_bytes == 0,
            ),
            ("server.max_line_bytes", self.max_line_bytes == 0),
            (
                "server.max_concurrent_requests",
                self.max_concurrent_requests == 0,
            ),
            (
                "server.max_inflight_body_bytes",
                self.max_inflight_body_bytes == 0,
            ),
            (
                "server.max_inflight_decoded_bytes",
                self.max_inflight_decoded_bytes == 0,
            ),
        ])?;
        if self.max_decompressed_bytes < self.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_decompressed_bytes",
                "must be >= server.max_body_bytes",
            ));
        }
        if self.max_inflight_body_bytes < self.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_inflight_body_bytes",
                "must be >= server.max_body_bytes",
            ));
        }
        if self.max_inflight_decoded_bytes < self.max_decompressed_bytes {
            return Err(ConfigError::invalid(
                "server.max_inflight_decoded_bytes",
                "must be >= server.max_decompressed_bytes",
            ));
        }
        if self.max_header_bytes < 8192 {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                "must be >= 8192 (hyper's smallest read buffer)",
            ));
        }
        refuse_zero(&[
            (
                "server.header_read_timeout_secs",
                self.header_read_timeout_secs.is_zero(),
            ),
            (
                "server.body_read_timeout_secs",
                self.body_read_timeout_secs.is_zero(),
            ),
            ("server.idle_timeout_secs", self.idle_timeout_secs.is_zero()),
        ])?;
        if let Some(tls) = &self.tls {
            for (key, path) in [
                ("server.tls.cert_path", &tls.cert_path),
                ("server.tls.key_path", &tls.key_path),
            ] {
                if !path.is_file() {
                    return Err(ConfigError::invalid(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn zero_limits_are_refused() {
        let c = Config::parse("[server]\nmax_line_bytes = 0\n", no_env()).unwrap();
        let err = c.validate().unwrap_err();
        assert!(
            err.to_string().starts_with("server.max_line_bytes"),
            "{err}"
        );
    }

    #[test]
    fn the_decode_budget_holds_at_least_one_decompressed_body() {
        let c = Config::parse(
            "[server]\nmax_decompressed_bytes = 200000000\nmax_inflight_decoded_bytes = 100000000\n",
            no_env(),
        )
        .unwrap();
        let err = c.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("server.max_inflight_decoded_bytes"),
            "{err}"
        );
    }
}
