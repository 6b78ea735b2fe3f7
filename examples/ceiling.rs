//! The ceiling for load tests (DESIGN §7): a bare hyper 1 server with the same
//! listener settings as tollgate's front door (hyper-util auto builder: HTTP/1.1 keep-alive
//! and h2c on one port) that reads the whole request body and answers 200. Nothing any
//! hyper server can do on this machine is faster, so tollgate's numbers are read against it.
//!
//!   cargo run --release --example ceiling -- 127.0.0.1:8080

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&addr).await?;
    println!("ceiling listening addr={}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                // Read the whole body, as tollgate must, then answer 200 with nothing.
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
