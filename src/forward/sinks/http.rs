//! The HTTP sink: POSTs each batch as gzip NDJSON (the file sink's line format: metadata
//! fields first, then the record) to a URL.
//!
//! One attempt per `write`; the batcher owns retrying. The answer decides what happens:
//! 2xx — delivered; 408, 429, 5xx, a timeout or a connection error — retry later (the
//! error carries the server's `Retry-After`); any other status — the receiver will never
//! take this batch, so it goes to a dead-letter file and counts as delivered, instead of
//! blocking the queue forever.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::Write;

use super::{Batch, SinkError, file};
use crate::telemetry::DeadLetterMetrics;

/// The longest `Retry-After` honoured; a larger one is capped, not obeyed for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub struct HttpSink {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
    timeout: Duration,
    dead_letter_dir: PathBuf,
    dead_letters: DeadLetterMetrics,
}

impl HttpSink {
    pub fn new(
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        timeout: Duration,
        dead_letter_dir: PathBuf,
        dead_letters: DeadLetterMetrics,
    ) -> Result<HttpSink, SinkError> {
        let url: Uri = url
            .parse()
            .map_err(|_| SinkError::Config("sink.url is not a valid URL"))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| SinkError::Config("sink.headers has an invalid header name"))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| SinkError::Config("sink.headers has an invalid header value"))?;
            map.insert(name, value);
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .map_err(SinkError::Io)?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpSink {
            client: Client::builder(TokioExecutor::new()).build(connector),
            url,
            headers: map,
            timeout,
            dead_letter_dir,
            dead_letters,
        })
    }

    pub async fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let mut ndjson = Vec::with_capacity(64 * 1024);
        for part in &batch.parts {
            file::encode(&part.envelope, &part.payloads, &mut ndjson);
        }
        let mut gz = GzEncoder::new(Vec::with_capacity(ndjson.len() / 4), Compression::fast());
        gz.write_all(&ndjson)?;
        let body = gz.finish()?;

        let mut req = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Full::new(Bytes::from(body)))
            .expect("a POST to a parsed URI is a valid request");
        req.headers_mut().extend(self.headers.clone());

        let response = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => {
                return Err(SinkError::retry(
                    format!("no answer within {:?}", self.timeout),
                    None,
                ));
            }
            Ok(Err(e)) => return Err(SinkError::retry(format!("request failed: {e}"), None)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after(response.headers());
        // Read a little of the answer for the log; never more than that.
        let body = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            return Err(SinkError::retry(
                format!("answered {status}: {excerpt}"),
                retry_after,
            ));
        }
        let path = self.dead_letter(batch, &ndjson).await?;
        self.dead_letters
            .dead_lettered(status, &excerpt, batch.records(), &path);
        Ok(())
    }

    /// Writes the refused batch where an operator can inspect and resend it, durably.
    async fn dead_letter(&self, batch: &Batch, ndjson: &[u8]) -> Result<PathBuf, SinkError> {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let dir = self.dead_letter_dir.clone();
        let path = dir.join(format!(
            "{}-{ms}-{}.ndjson",
            batch.kind.as_str(),
            rand::random::<u32>()
        ));
        let bytes = ndjson.to_vec();
        let target = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::File::create(&target)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await??;
        Ok(path)
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at `MAX_RETRY_AFTER`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_them() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(header::RETRY_AFTER, HeaderValue::try_from(soon).unwrap());
        let got = retry_after(&h).unwrap();
        assert!(
            got > Duration::from_secs(25) && got <= Duration::from_secs(30),
            "{got:?}"
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
