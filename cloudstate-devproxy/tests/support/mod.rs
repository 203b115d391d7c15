//! Shared helpers: start a user function and a dev proxy on ephemeral ports,
//! call them over gRPC and plain HTTP/1.1, and read what the user function saw.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod crdt;
pub mod logs;

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
    grpc_with(addr, path, &[], request).await
}

/// A unary gRPC call with prost messages and request metadata.
pub async fn grpc_with<Req, Resp>(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut client = tonic::client::Grpc::new(connect(addr).await);
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    client
        .unary(with_metadata(request, headers), http_path(path), codec)
        .await
        .map(tonic::Response::into_inner)
}

async fn connect(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_metadata<Req>(request: Req, headers: &[(&str, &str)]) -> tonic::Request<Req> {
    let mut request = tonic::Request::new(request);
    for (name, value) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes()).unwrap();
        request.metadata_mut().insert(key, value.parse().unwrap());
    }
    request
}

/// The responses of a server-streaming gRPC call, on a connection of its
/// own: dropping it cancels the call.
pub struct GrpcStream<Resp> {
    stream: tonic::Streaming<Resp>,
    _channel: tonic::transport::Channel,
}

impl<Resp> GrpcStream<Resp> {
    /// The next response, `None` when the call ended with OK, within 10 s.
    pub async fn next(&mut self) -> Option<Result<Resp, tonic::Status>> {
        tokio::time::timeout(Duration::from_secs(10), self.stream.message())
            .await
            .expect("no streamed response within 10 s")
            .transpose()
    }

    /// The next response, which must be there.
    pub async fn message(&mut self) -> Resp {
        self.next()
            .await
            .expect("the stream ended")
            .expect("the stream failed")
    }
}

/// A server-streaming gRPC call with prost messages and request metadata;
/// returns once the response headers came.
pub async fn grpc_stream<Req, Resp>(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    request: Req,
) -> Result<GrpcStream<Resp>, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let channel = connect(addr).await;
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let stream = client
        .server_streaming(with_metadata(request, headers), http_path(path), codec)
        .await?
        .into_inner();
    Ok(GrpcStream {
        stream,
        _channel: channel,
    })
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

/// A streamed HTTP/1.1 response, read as it arrives: dropping it closes the
/// connection.
pub struct HttpStream {
    pub status: u16,
    pub content_type: String,
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
    chunked: bool,
    /// Body bytes read but not handed out yet.
    pending: Vec<u8>,
    ended: bool,
}

impl HttpStream {
    /// Sends the request and reads the response head (within 10 s).
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)], json: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
                .await
                .expect("no response head within 10 s")
                .unwrap();
            assert!(read > 0, "the connection closed in the response head");
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let status = head[0].split(' ').nth(1).unwrap().parse().unwrap();
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let content_type = header("content-type").unwrap_or_default();
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let mut this = Self {
            status,
            content_type,
            reader,
            chunked,
            pending: Vec::new(),
            ended: false,
        };
        if !chunked {
            // A plain (error) response: the whole body now.
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            this.reader.read_exact(&mut body).await.unwrap();
            this.pending = body;
            this.ended = true;
        }
        this
    }

    /// Reads one more chunk of the body into `pending`; false at its end.
    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncBufReadExt;
        if self.ended || !self.chunked {
            return false;
        }
        let read = async {
            let mut size = String::new();
            if self.reader.read_line(&mut size).await.ok()? == 0 {
                return None;
            }
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).await.ok()?;
            chunk.truncate(size);
            (size > 0).then_some(chunk)
        };
        match tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no body chunk within 10 s")
        {
            Some(chunk) => {
                self.pending.extend_from_slice(&chunk);
                true
            }
            None => {
                self.ended = true;
                false
            }
        }
    }

    /// Body bytes up to and without `separator`; `None` when the body ends first.
    async fn until(&mut self, separator: &[u8]) -> Option<String> {
        loop {
            if let Some(at) = self
                .pending
                .windows(separator.len())
                .position(|w| w == separator)
            {
                let item: Vec<u8> = self.pending.drain(..at + separator.len()).collect();
                return Some(String::from_utf8_lossy(&item[..at]).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next line of a newline-delimited body.
    pub async fn line(&mut self) -> Option<String> {
        self.until(b"\n").await
    }

    /// The data of the next Server-Sent Event.
    pub async fn event(&mut self) -> Option<String> {
        let event = self.until(b"\n\n").await?;
        Some(
            event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    /// What is left of the body (waits for its end).
    pub async fn rest(&mut self) -> String {
        while self.fill().await {}
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }
}

/// The next observed item, skipping `Dispatched` (which only tests waiting
/// for queued commands look at, through [`until`]), within 10 s.
pub async fn next(observed: &mut broadcast::Receiver<Observed>) -> Observed {
    loop {
        let item = next_any(observed).await;
        if !matches!(item, Observed::Dispatched { .. }) {
            return item;
        }
    }
}

/// The next observed item, `Dispatched` included, within 10 s.
pub async fn next_any(observed: &mut broadcast::Receiver<Observed>) -> Observed {
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
        // `until` may wait for a `Dispatched`, which is not returned.
        let item = next_any(observed).await;
        let done = until(&item);
        if !matches!(item, Observed::Dispatched { .. }) {
            seen.push(item);
        }
        if done {
            return seen;
        }
    }
}
