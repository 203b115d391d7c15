//! Shared helpers: start a user function and a dev proxy on ephemeral ports,
//! call them over gRPC and plain HTTP/1.1, and read what the user function saw.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use cloudstate_devproxy::{DevProxy, DevProxyConfig, DevProxyHandle, Observed, Observer, Store};
use cloudstate_sdk::CloudState;
use cloudstate_sdk::testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

pub struct Setup {
    pub user_function: TestServer,
    pub proxy: DevProxyHandle,
    pub observed: broadcast::Receiver<Observed>,
    pub observer: Observer,
}

pub async fn start(user_function: CloudState) -> Setup {
    start_with(user_function, Store::memory()).await
}

pub async fn start_with(user_function: CloudState, store: Store) -> Setup {
    let user_function = TestServer::start(user_function).await;
    let (proxy, observed, observer) = proxy_for(user_function.addr(), store).await;
    Setup {
        user_function,
        proxy,
        observed,
        observer,
    }
}

pub async fn proxy_for(
    uf: SocketAddr,
    store: Store,
) -> (DevProxyHandle, broadcast::Receiver<Observed>, Observer) {
    proxy_with(uf, |config| config.store = store).await
}

/// A dev proxy for the user function at `uf`, configured by `configure`.
pub async fn proxy_with(
    uf: SocketAddr,
    configure: impl FnOnce(&mut DevProxyConfig),
) -> (DevProxyHandle, broadcast::Receiver<Observed>, Observer) {
    let mut config = DevProxyConfig::new(uf.to_string());
    config.discovery_timeout = Duration::from_secs(10);
    configure(&mut config);
    let observer = config.observer.clone();
    let observed = observer.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = DevProxy::start(config, listener)
        .await
        .expect("dev proxy starts");
    (proxy, observed, observer)
}

/// A unary gRPC call with prost messages.
pub async fn grpc<Req, Resp>(
    addr: SocketAddr,
    path: &str,
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let path = http_path(path);
    client
        .unary(tonic::Request::new(request), path, codec)
        .await
        .map(tonic::Response::into_inner)
}

fn http_path(path: &str) -> tonic::codegen::http::uri::PathAndQuery {
    path.parse().unwrap()
}

/// A plain HTTP/1.1 exchange: (status, content type, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> (u16, String, String) {
    http_with_headers(addr, method, path, &[], json).await
}

/// A plain HTTP/1.1 exchange with extra request headers: (status, content
/// type, body; a chunked body cut short ends where it was cut).
pub async fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> (u16, String, String) {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let body = json.unwrap_or("");
    let content_type = if json.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, request.as_bytes()).await
}

/// A plain HTTP/1.1 exchange with exactly the given headers besides `Host`,
/// `Content-Length` and `Connection: close`: (status, content type, body).
pub async fn http_exact(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, request.as_bytes()).await
}

/// Sends `request` (a whole HTTP/1.1 request) on a new connection and reads
/// the answer: (status, content type, body).
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    // A body aborted by the server ends the connection early: keep what came.
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, content_type, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size + 2 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

/// The next observed item, skipping discovery noise, within 10 s.
pub async fn next(observed: &mut broadcast::Receiver<Observed>) -> Observed {
    tokio::time::timeout(Duration::from_secs(10), observed.recv())
        .await
        .expect("nothing observed within 10 s")
        .expect("observer closed")
}

/// Observed items until `until` matches (inclusive), within 10 s.
pub async fn until(
    observed: &mut broadcast::Receiver<Observed>,
    mut until: impl FnMut(&Observed) -> bool,
) -> Vec<Observed> {
    let mut seen = Vec::new();
    loop {
        let item = next(observed).await;
        let done = until(&item);
        seen.push(item);
        if done {
            return seen;
        }
    }
}
