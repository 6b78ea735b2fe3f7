//! The HTTP sink against a real HTTP receiver started by the test, which answers from a
//! script: retries with backoff that honour `Retry-After`, and dead letters for refusals.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tollgate::config::{Ack, SinkConfig};

/// One request the receiver got: when, what it answered, the NDJSON records it carried.
#[derive(Clone)]
struct Hit {
    at: Instant,
    status: u16,
    records: Vec<serde_json::Value>,
}

struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// Answers each request with the next scripted status (and Retry-After), then 200s.
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = Arc::clone(&hits);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let hits = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let hits = Arc::clone(&hits);
                        let script = Arc::clone(&script);
                        async move {
                            assert_eq!(req.headers()["content-encoding"], "gzip");
                            assert_eq!(req.headers()["authorization"], "Bearer sink-secret");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut text = String::new();
                            flate2::read::GzDecoder::new(&body[..])
                                .read_to_string(&mut text)
                                .unwrap();
                            let records = text
                                .lines()
                                .map(|l| serde_json::from_str(l).unwrap())
                                .collect();
                            let (status, retry_after) =
                                script.lock().unwrap().pop_front().unwrap_or((200, None));
                            hits.lock().unwrap().push(Hit {
                                at: Instant::now(),
                                status,
                                records,
                            });
                            let mut res = Response::builder().status(status);
                            if let Some(ra) = retry_after {
                                res = res.header("retry-after", ra);
                            }
                            Ok::<_, Infallible>(
                                res.body(Full::new(Bytes::from_static(b"{\"why\":\"scripted\"}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn start_with_http_sink(receiver: &Receiver) -> TestServer {
    let url = receiver.url.clone();
    TestServer::start(move |c| {
        c.forward.ack = Ack::Disk;
        let dead_letter_dir = c.tokens.state_dir.parent().unwrap().join("dead-letter");
        c.sink = SinkConfig::Http {
            url,
            headers: [(
                "authorization".to_string(),
                "Bearer sink-secret".to_string(),
            )]
            .into(),
            timeout_secs: Duration::from_secs(5),
            dead_letter_dir,
        };
    })
    .await
}

#[tokio::test]
async fn retries_503_then_500_honouring_retry_after_then_delivers() {
    let receiver = Receiver::start(vec![(503, Some("1")), (500, None)]).await;
    let server = start_with_http_sink(&receiver).await;
    let reply = server
        .post_logs(
            Some(LOGS_TOKEN),
            "type=web",
            "{\"id\":1}\n{\"id\":2}\nplain\n",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    eventually(Duration::from_secs(15), || async {
        receiver.hits().iter().any(|h| h.status == 200)
    })
    .await;
    let hits = receiver.hits();
    assert_eq!(
        hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        vec![503, 500, 200]
    );
    assert!(
        hits[1].at - hits[0].at >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured: {:?}",
        hits[1].at - hits[0].at
    );
    for hit in &hits {
        assert_eq!(
            hit.records.len(),
            3,
            "every attempt carries the whole batch"
        );
        assert_eq!(hit.records[0]["_account_id"], 1001);
        assert_eq!(hit.records[0]["_token_id"], "t-logs-1");
        assert_eq!(hit.records[2]["message"], "plain");
    }
    assert_eq!(
        server
            .metric("tollgate_sink_batches_total{result=\"error\",sink=\"http\"}")
            .await,
        2.0
    );
    assert_eq!(
        server
            .metric("tollgate_sink_batches_total{result=\"ok\",sink=\"http\"}")
            .await,
        1.0
    );
    eventually(Duration::from_secs(5), || async {
        server.metric("tollgate_spool_records").await == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_dead_letter_file_and_never_blocks_the_queue() {
    let receiver = Receiver::start(vec![(400, None)]).await;
    let server = start_with_http_sink(&receiver).await;
    assert_eq!(
        server
            .post_logs(Some(LOGS_TOKEN), "", "{\"id\":1}\n")
            .await
            .status,
        StatusCode::OK
    );
    eventually(Duration::from_secs(10), || async {
        server
            .metric("tollgate_sink_dead_letter_records_total{sink=\"http\"}")
            .await
            == 1.0
    })
    .await;
    let dead: Vec<_> = std::fs::read_dir(server.dir.join("dead-letter"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dead.len(), 1);
    let text = std::fs::read_to_string(&dead[0]).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["id"], 1);
    assert_eq!(record["_token_id"], "t-logs-1");

    // The next batch goes through: the refused one did not block the queue.
    assert_eq!(
        server
            .post_logs(Some(LOGS_TOKEN), "", "{\"id\":2}\n")
            .await
            .status,
        StatusCode::OK
    );
    eventually(Duration::from_secs(10), || async {
        receiver
            .hits()
            .iter()
            .any(|h| h.status == 200 && h.records[0]["id"] == 2)
    })
    .await;
    eventually(Duration::from_secs(5), || async {
        server.metric("tollgate_spool_records").await == 0.0
    })
    .await;
    assert_eq!(receiver.hits().len(), 2, "a 400 is not retried");
}
