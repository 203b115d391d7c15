//! Slow, idle and too many clients, and shutdown, over real TCP: a request
//! head sent a byte at a time, a body that never completes, an idle
//! keep-alive connection, the connection cap, over-large bodies, and a
//! shutdown with half-sent requests, idle connections, an open CRDT
//! subscription or a command in progress.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::testkit::TestServer;
use cloudstate_sdk::{ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult};
use futures_util::StreamExt;
use support::HttpStream;
use support::crdt::{PROCESS_STREAMED, gcounter, streamed_req, subscribe};
use tck_adapter::proto::cloudstate::tck::model::action::Response as ActionResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Long enough that a test never waits it out: what must happen happens
/// well before, and what must not happen would fail the test here.
const LONG: Duration = Duration::from_secs(10);

/// The HTTP rule of the TCK's CRDT `Process`.
const CRDT: &str = "/tck/model/crdt/limits";

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n";

/// A dev proxy in front of the TCK adapter, configured by `configure`.
async fn proxy(
    configure: impl FnOnce(&mut cloudstate_devproxy::DevProxyConfig),
) -> (TestServer, cloudstate_devproxy::DevProxyHandle) {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, _, _) = support::proxy_with(uf.addr(), configure).await;
    (uf, proxy)
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: its status,
/// head and body.
async fn response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, head.to_owned(), body.to_owned());
            }
        }
        let n = stream.read(&mut buf).await.expect("read a response");
        assert!(n > 0, "connection closed mid-response: {text:?}");
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Whether the server closed `stream` (end of file or a reset) within
/// [`LONG`], discarding anything it sent first.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(LONG, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A connection that has had one request answered, so the proxy has
/// accepted it and keeps it alive.
async fn served(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let (status, _, body) = response(&mut stream).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    stream
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off() {
    let (_uf, proxy) = proxy(|c| c.header_read_timeout = Duration::from_millis(200)).await;
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // Slowloris: a header line that never ends, a byte every 50 ms.
    let drip = tokio::spawn(async move {
        write
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await?;
        loop {
            write.write_all(b"a").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 256];
    let end = tokio::time::timeout(LONG, read.read(&mut buf)).await;
    assert!(
        matches!(end, Ok(Ok(0) | Err(_))),
        "the connection stays open: {end:?}"
    );
    drip.abort();
    // The next client is served.
    served(proxy.local_addr()).await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let (_uf, proxy) = proxy(|c| c.body_read_timeout = Duration::from_millis(200)).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let head = format!(
        "POST {CRDT} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"id\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = tokio::time::timeout(LONG, response(&mut stream))
        .await
        .expect("an answer before the body is complete");
    assert_eq!(status, 408, "{head}\n{body}");
    assert_eq!(body, "Request body not received within 200 ms");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(closed(&mut stream).await, "the connection is closed");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (_uf, proxy) = proxy(|c| c.idle_timeout = Duration::from_millis(300)).await;
    let mut stream = served(proxy.local_addr()).await;
    // Kept alive after its answer, then closed for being idle.
    assert!(closed(&mut stream).await, "the idle connection stays open");
}

/// Whether a request on `stream` goes unanswered for a while: the proxy has
/// not accepted the connection.
async fn waits(stream: &mut TcpStream) -> bool {
    tokio::time::timeout(Duration::from_millis(300), response(stream))
        .await
        .is_err()
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_a_slot_is_free() {
    let (_uf, proxy) = proxy(|c| c.max_connections = 2).await;
    let addr = proxy.local_addr();
    let first = served(addr).await;
    let mut second = served(addr).await;
    // The third is in the backlog: connected, sent, not answered.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    assert!(waits(&mut third).await, "a third connection was served");
    // A slot frees: the third is served, and holds its slot.
    drop(first);
    let (status, _, _) = tokio::time::timeout(LONG, response(&mut third))
        .await
        .expect("the waiting connection is served once a slot is free");
    assert_eq!(status, 200);
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    fourth.write_all(HEALTHZ).await.unwrap();
    assert!(waits(&mut fourth).await, "a fourth connection was served");
    // The connections served keep working.
    second.write_all(HEALTHZ).await.unwrap();
    assert_eq!(response(&mut second).await.0, 200);
    drop(second);
    let (status, _, _) = tokio::time::timeout(LONG, response(&mut fourth))
        .await
        .expect("the fourth is served once the second closes");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let (_uf, proxy) = proxy(|c| c.max_http_body = 1024).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // Headers only: the proxy must not wait for the gigabyte announced.
    let head = format!(
        "POST {CRDT} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Content-Length: 1000000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = tokio::time::timeout(LONG, response(&mut stream))
        .await
        .expect("an answer without the body");
    assert_eq!(status, 413, "{head}");
    assert_eq!(
        body,
        "Request body too large: 1000000000 bytes, the limit is 1024 bytes"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_once_it_passes_it() {
    let (_uf, proxy) = proxy(|c| c.max_http_body = 1024).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let head = format!(
        "POST {CRDT} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // 2 KiB in chunks, and the body never ends: the answer comes anyway.
    for _ in 0..4 {
        stream.write_all(b"200\r\n").await.unwrap();
        stream.write_all(&[b' '; 0x200]).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    let (status, _, body) = tokio::time::timeout(LONG, response(&mut stream))
        .await
        .expect("an answer while the body goes on");
    assert_eq!(status, 413);
    assert_eq!(body, "Request body too large: the limit is 1024 bytes");
}

/// The shutdown grace of the shutdown tests: they must end well before it.
const GRACE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn shutdown_closes_half_sent_requests_and_idle_connections_at_once() {
    let (_uf, proxy) = proxy(|c| c.shutdown_grace = GRACE).await;
    let addr = proxy.local_addr();
    let mut idle = served(addr).await;
    let mut half = served(addr).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: pro")
        .await
        .unwrap();
    // A new connection with half a request head.
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh.write_all(b"POST /cloudstate.tck").await.unwrap();
    // Served after the others were accepted: they are all in the proxy.
    drop(served(addr).await);
    tokio::time::timeout(GRACE / 2, proxy.shutdown())
        .await
        .expect("shutdown waits for no half-sent request or idle connection");
    for stream in [&mut idle, &mut half, &mut fresh] {
        assert!(closed(stream).await, "a connection outlived the shutdown");
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "connections are refused after shutdown"
    );
}

#[tokio::test]
async fn shutdown_ends_open_crdt_subscriptions() {
    let (_uf, proxy) = proxy(|c| c.shutdown_grace = GRACE).await;
    let mut stream = subscribe(proxy.local_addr(), None, streamed_req("GCounter-shutdown"))
        .await
        .unwrap();
    assert_eq!(stream.message().await, gcounter(0));
    let shutdown = tokio::spawn(proxy.shutdown());
    let end = tokio::time::timeout(LONG, stream.next())
        .await
        .expect("the subscription ends as shutdown begins");
    let status = match end {
        Some(Err(status)) => status,
        other => panic!("not a status: {other:?}"),
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "The dev proxy is shutting down: the subscription ended"
    );
    tokio::time::timeout(GRACE / 2, shutdown)
        .await
        .expect("shutdown waits for no subscription")
        .unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_http_subscriptions() {
    let (_uf, proxy) = proxy(|c| c.shutdown_grace = GRACE).await;
    let body = r#"{"id":"GCounter-http-shutdown"}"#;
    let mut stream = HttpStream::open(proxy.local_addr(), PROCESS_STREAMED, &[], body).await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"gcounter":{"value":"0"}}}"#)
    );
    let shutdown = tokio::spawn(proxy.shutdown());
    // The body is cut: nothing more comes, and the connection ends.
    assert_eq!(stream.rest().await, "");
    tokio::time::timeout(GRACE / 2, shutdown)
        .await
        .expect("shutdown waits for no subscription")
        .unwrap();
}

const ACTION: &str = "cloudstate.tck.model.action.ActionTckModel";

/// Answers `ProcessUnary` once the test opens its gate, telling it when the
/// command has arrived.
struct Gate {
    arrived: mpsc::UnboundedSender<()>,
    open: Mutex<Option<oneshot::Receiver<()>>>,
}

impl ActionHandler for Gate {
    fn handle_unary(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let _ = self.arrived.send(());
            if let Some(open) = self.open.lock().await.take() {
                let _ = open.await;
            }
            Ok(ActionReply::encode(&ActionResponse {
                message: "answered".into(),
            }))
        })
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Ok(ActionReply::no_reply()) })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }
}

/// Waits until `addr` refuses connections: shutdown has begun.
async fn refusing(addr: SocketAddr) {
    tokio::time::timeout(LONG, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the proxy stops accepting");
}

#[tokio::test]
async fn a_command_in_progress_at_shutdown_is_answered() {
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let (open, gate) = oneshot::channel();
    let uf = cloudstate_sdk::CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .action(
            ACTION,
            Gate {
                arrived,
                open: Mutex::new(Some(gate)),
            },
        );
    let uf = TestServer::start(uf).await;
    let (proxy, _, _) = support::proxy_with(uf.addr(), |c| c.shutdown_grace = GRACE).await;
    let addr = proxy.local_addr();
    let path = "/tck/model/action/unary";
    let mut call = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\n\r\n{{}}"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        response(&mut stream).await
    });
    let arrived = tokio::time::timeout(LONG, async {
        tokio::select! {
            arrived = arrivals.recv() => arrived,
            answer = &mut call => panic!("answered before arriving: {answer:?}"),
        }
    });
    arrived
        .await
        .expect("the command reaches the action")
        .expect("the action is served");
    let shutdown = tokio::spawn(proxy.shutdown());
    refusing(addr).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the command"
    );
    open.send(()).unwrap();
    let (status, _, body) = tokio::time::timeout(LONG, call)
        .await
        .expect("the command is answered")
        .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"message":"answered"}"#));
    tokio::time::timeout(GRACE / 2, shutdown)
        .await
        .expect("shutdown ends once the command is answered")
        .unwrap();
}
