//! The front door against the real server: protocols on one port, TLS, timeouts and
//! limits at the connection level, garbage input, and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn logs_request(uri: String) -> Request<Full<Bytes>> {
    Request::post(uri)
        .body(Full::new(Bytes::from_static(b"{\"a\":1}\n")))
        .unwrap()
}

/// Reads until the peer closes (Ok(bytes)) or `within` passes (Err).
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn http1_and_h2c_prior_knowledge_share_the_public_port() {
    let server = TestServer::start(|_| {}).await;
    let url = server.url(&format!("/?token={LOGS_TOKEN}"));
    let h2 = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let res = h2.request(logs_request(url.clone())).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), StatusCode::OK);
    let res = server.request(logs_request(url)).await;
    assert_eq!(res.status, StatusCode::OK);
    let dir = server.shutdown().await;
    assert_eq!(sink_records(&dir.join("out"), "logs").len(), 2);
}

#[tokio::test]
async fn tls_serves_http1_and_h2_chosen_by_alpn() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = ServerDir::new();
    std::fs::write(dir.join("tokens.json"), tokens_json(1, true)).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    let tls_dir = dir.to_path_buf();
    let server = TestServer::start_in(dir, move |c| {
        c.server.tls = Some(tollgate::config::TlsConfig {
            cert_path: tls_dir.join("cert.pem"),
            key_path: tls_dir.join("key.pem"),
        });
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = TokioIo::new(connector.connect(name, tcp).await.unwrap());
        let req = logs_request(format!("/?token={LOGS_TOKEN}"));
        let res = if alpn == b"h2" {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), tls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut req = req;
            *req.uri_mut() = format!("https://localhost/?token={LOGS_TOKEN}")
                .parse()
                .unwrap();
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(tls).await.unwrap();
            tokio::spawn(conn);
            let mut req = req;
            req.headers_mut()
                .insert(http::header::HOST, "localhost".parse().unwrap());
            send.send_request(req).await.unwrap()
        };
        let expected = if alpn == b"h2" {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(res.version(), expected);
        assert_eq!(res.status(), StatusCode::OK);
        let _ = res.into_body().collect().await;
    }
}

#[tokio::test]
async fn slowloris_headers_are_cut_off_after_the_header_timeout() {
    let server =
        TestServer::start(|c| c.server.header_read_timeout_secs = Duration::from_secs(1)).await;
    let s = TcpStream::connect(server.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        // One byte a second; the head would take ~60 s to complete.
        for b in b"POST /?token=abc HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n" {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await; // the slow client under test
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "connection still open 5 s into a 1 s header timeout"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed before the timeout: {took:?}"
    );
    writer.abort();
    // The server still serves everyone else.
    assert_eq!(
        server.post_logs(Some(LOGS_TOKEN), "", "{}").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn body_held_open_past_the_body_timeout_gets_408() {
    let server =
        TestServer::start(|c| c.server.body_read_timeout_secs = Duration::from_millis(500)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{\"a\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request body not received within"), "{text}");
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"408\",route=\"logs\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn idle_keepalive_connections_are_closed_after_the_idle_timeout() {
    let server =
        TestServer::start(|c| c.server.idle_timeout_secs = Duration::from_millis(500)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req =
        format!("POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}");
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let reply = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("closed when idle");
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

/// `out` as text once it holds a whole HTTP/1.1 response (head and `content-length` body).
fn complete_response(out: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    (body.len() >= length).then_some(text)
}

/// Reads one HTTP/1.1 response (head and `content-length` body) off `s`.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.expect("response");
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        if let Some(text) = complete_response(&out) {
            return text;
        }
    }
}

fn short_timeouts(c: &mut tollgate::config::Config) {
    c.server.header_read_timeout_secs = Duration::from_secs(1);
    c.server.idle_timeout_secs = Duration::from_secs(3);
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout_not_the_idle_timeout() {
    let server = TestServer::start(short_timeouts).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let reply = read_until_closed(&mut s, Duration::from_millis(2900))
        .await
        .expect("closed before the 3 s idle timeout");
    assert!(reply.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the 1 s header timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keepalive_connection_outlives_the_header_timeout_until_the_idle_timeout() {
    let server = TestServer::start(short_timeouts).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req =
        format!("POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}");
    s.write_all(req.as_bytes()).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));

    // Past the header timeout, idle: still open and usable. (The wait is the point: nothing
    // may close the connection in it.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(req.as_bytes()).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));

    let idle_since = Instant::now();
    read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("closed within the idle timeout plus 2 s");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(2500),
        "closed before the 3 s idle timeout: {:?}",
        idle_since.elapsed()
    );
}

#[tokio::test]
async fn two_thousand_idle_keepalive_connections_do_not_stop_a_new_client() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(hard, hard).unwrap();
    assert!(
        hard >= 4500,
        "this test needs 2 fds per connection; hard limit is {hard}"
    );
    let server = TestServer::start(|_| {}).await;
    let req =
        format!("POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}");
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(s); // kept open, idle, keep-alive
    }
    assert!(
        server
            .metric("tollgate_connections_open{listener=\"public\"}")
            .await
            >= 2000.0
    );
    let started = Instant::now();
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "{\"new\":1}").await;
    assert_eq!(reply.status, StatusCode::OK);
    eprintln!(
        "new client served in {:?} beside 2,000 idle connections",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed_with_503_before_the_body_is_read() {
    let server = TestServer::start(|c| c.server.max_concurrent_requests = 1).await;
    // Holds the only slot: its body never completes.
    let mut holder = TcpStream::connect(server.addr).await.unwrap();
    let head =
        format!("POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{");
    holder.write_all(head.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        let reply = server.post_logs(Some(LOGS_TOKEN), "", "{}").await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            break reply;
        }
        assert!(Instant::now() < deadline, "never shed: {}", reply.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reply.headers.get(http::header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(reply.json()["error"], "too many requests in flight");
    drop(holder);
    eventually(Duration::from_secs(5), || async {
        server.post_logs(Some(LOGS_TOKEN), "", "{}").await.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn random_bytes_and_protocol_garbage_never_take_the_process_down() {
    use rand::{Rng, SeedableRng};
    let server = TestServer::start(|_| {}).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut garbage: Vec<Vec<u8>> = (0..200)
        .map(|_| {
            let len = rng.random_range(1..4096);
            (0..len).map(|_| rng.random()).collect()
        })
        .collect();
    garbage.push(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff".to_vec());
    garbage.push(b"POST / HTTP/1.1\r\ncontent-length: -5\r\n\r\n".to_vec());
    garbage.push(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec());
    garbage.push(format!("POST / HTTP/1.1\r\nx: {}\r\n\r\n", "h".repeat(200_000)).into_bytes());
    for g in garbage {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let _ = s.write_all(&g).await;
        let _ = s.shutdown().await;
        let _ = read_until_closed(&mut s, Duration::from_secs(5)).await;
    }
    assert_eq!(
        server
            .post_logs(Some(LOGS_TOKEN), "", "{\"ok\":1}")
            .await
            .status,
        StatusCode::OK
    );
    assert!(
        server
            .metric("tollgate_connection_errors_total{listener=\"public\",reason=\"parse\"}")
            .await
            > 0.0
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_request_and_flushes_it() {
    let mut server = TestServer::start(|_| {}).await;
    let addr = server.addr;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = b"{\"in_flight\":true}\n";
    let head = format!(
        "POST /?token={LOGS_TOKEN} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..5]).await.unwrap();
    // In flight once its body holds the budget (taken as its head is handled).
    wait_until(
        "the request reached its body read",
        Duration::from_secs(5),
        || async { server.metric("tollgate_inflight_body_bytes").await == body.len() as f64 },
    )
    .await;

    server.begin_shutdown();
    // Once the listener is gone, shutdown is under way: new clients are refused.
    eventually(Duration::from_secs(5), || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    s.write_all(&body[5..]).await.unwrap();
    let reply = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("answered");
    assert!(
        String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    let dir = server.shutdown().await;
    let records = sink_records(&dir.join("out"), "logs");
    assert_eq!(
        records.len(),
        1,
        "the in-flight request's record was flushed"
    );
    assert_eq!(records[0]["in_flight"], true);
}

/// A client that writes its whole request before it reads anything (Python's
/// `http.client`, the Logz.io Python handler): writes `head`, `body_len` bytes of body and
/// `tail` from a blocking thread, then reads one response. A reset fails the write or the
/// read.
async fn write_all_then_read(
    addr: std::net::SocketAddr,
    head: String,
    body_len: usize,
    tail: &'static str,
) -> String {
    let written = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).expect("head written");
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).expect("whole body written");
            left -= n;
        }
        s.write_all(tail.as_bytes()).expect("tail written");
        s.set_nonblocking(true).unwrap();
        s
    })
    .await
    .unwrap();
    read_response(&mut TcpStream::from_std(written).unwrap()).await
}

fn logs_head(token: &str, body_len: usize) -> String {
    format!("POST /?token={token} HTTP/1.1\r\nhost: x\r\ncontent-length: {body_len}\r\n\r\n")
}

#[tokio::test]
async fn a_client_that_writes_its_whole_body_first_reads_the_early_413_and_401() {
    let server = TestServer::start(|c| c.server.max_body_bytes = 1024 * 1024).await;
    let big = 12 * 1024 * 1024;
    let reply = write_all_then_read(server.addr, logs_head(LOGS_TOKEN, big), big, "").await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"body is over 1048576 bytes"}"#),
        "{reply}"
    );

    let body = 5 * 1024 * 1024;
    let unknown = logs_head(UNKNOWN_TOKEN, body);
    let reply = write_all_then_read(server.addr, unknown, body, "").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"Logging token is not valid"}"#),
        "{reply}"
    );
    // The answers were read before the server had discarded the last bytes.
    eventually(Duration::from_secs(5), || async {
        server
            .metric("tollgate_connection_drains_total{listener=\"public\",result=\"complete\"}")
            .await
            == 2.0
    })
    .await;
}

#[tokio::test]
async fn a_client_that_writes_its_whole_body_first_reads_the_shed_503() {
    let server = TestServer::start(|c| c.server.max_concurrent_requests = 1).await;
    // Holds the only slot: its body never completes.
    let mut holder = TcpStream::connect(server.addr).await.unwrap();
    holder
        .write_all(format!("{}{{", logs_head(LOGS_TOKEN, 100)).as_bytes())
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        server.post_logs(Some(LOGS_TOKEN), "", "{}").await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let body = 5 * 1024 * 1024;
    let reply = write_all_then_read(server.addr, logs_head(LOGS_TOKEN, body), body, "").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("retry-after: 1"),
        "{reply}"
    );
    assert!(
        reply.ends_with(r#"{"error":"too many requests in flight"}"#),
        "{reply}"
    );
    drop(holder);
}

#[tokio::test]
async fn bodies_over_the_inflight_byte_budget_are_shed_with_503() {
    const MIB: usize = 1024 * 1024;
    let server = TestServer::start(|c| {
        c.server.max_body_bytes = 2 * MIB as u64;
        c.server.max_inflight_body_bytes = 4 * MIB as u64;
    })
    .await;
    let inflight = || server.metric("tollgate_inflight_body_bytes");
    // Two slow uploads declare 1.5 MiB each (of 64-byte lines) and send 100 KiB of it.
    let line = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(53));
    let body = line.repeat(3 * MIB / 2 / line.len()).into_bytes();
    assert_eq!(body.len(), 3 * MIB / 2);
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(logs_head(LOGS_TOKEN, body.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&body[..100 * 1024]).await.unwrap();
        slow.push(s);
    }
    eventually(Duration::from_secs(5), || async {
        inflight().await == (3 * MIB) as f64
    })
    .await;

    // A third 1.5 MiB body would take 4.5 MiB: refused before it is read.
    let reply = write_all_then_read(
        server.addr,
        logs_head(LOGS_TOKEN, body.len()),
        body.len(),
        "",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("retry-after: 1"),
        "{reply}"
    );
    assert!(
        reply.ends_with(r#"{"error":"too many request body bytes in flight"}"#),
        "{reply}"
    );
    // Without Content-Length it takes its bytes as they come: refused mid-body.
    let chunked = "POST /?token=".to_string()
        + LOGS_TOKEN
        + " HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n180000\r\n";
    let reply = write_all_then_read(server.addr, chunked, 3 * MIB / 2, "\r\n0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"too many request body bytes in flight"}"#),
        "{reply}"
    );
    // A small body still fits.
    assert_eq!(
        server.post_logs(Some(LOGS_TOKEN), "", "{}").await.status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"503\",route=\"logs\"}")
            .await,
        2.0
    );

    // The slow uploads finish; their bytes go back to the budget.
    for mut s in slow {
        s.write_all(&body[100 * 1024..]).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    }
    eventually(Duration::from_secs(5), || async { inflight().await == 0.0 }).await;
    let reply = server.post_logs(Some(LOGS_TOKEN), "", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
}
