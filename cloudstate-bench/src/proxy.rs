//! Clients of the cart through the embedded dev proxy, as an application
//! calls it: gRPC unary calls (`AddItem`, `GetCart`) and HTTP/1.1 JSON
//! (`POST /cart/{user}/items/add`, `GET /carts/{user}`), one user id (one cart
//! entity) per client, the same command sequence as the protocol-level load.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use cloudstate_devproxy::{DevProxy, DevProxyConfig, DevProxyHandle};
use http::uri::PathAndQuery;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use shopping_cart::proto::com::example::shoppingcart::{AddLineItem, Cart, GetShoppingCart};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic::client::Grpc;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

use crate::load::{Exchange, OPEN_CLOSE_TIMEOUT, Session};
use crate::script::{PRODUCTS, Step, product, step};

const ADD_ITEM: &str = "/com.example.shoppingcart.ShoppingCart/AddItem";
const GET_CART: &str = "/com.example.shoppingcart.ShoppingCart/GetCart";

/// Starts the dev proxy on 127.0.0.1, in front of the user function at
/// `user_function`, with the official proxy's defaults (in-memory journal).
pub(crate) async fn start(user_function: SocketAddr) -> Result<DevProxyHandle, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    DevProxy::start(DevProxyConfig::new(user_function.to_string()), listener)
        .await
        .map_err(|e| format!("dev proxy in front of {user_function}: {e}"))
}

/// A gRPC client of the proxy for one cart.
pub(crate) struct GrpcSession {
    grpc: Grpc<Channel>,
    adds: Vec<AddLineItem>,
    get: GetShoppingCart,
}

impl GrpcSession {
    /// A client on `channel` for the cart of `user`, past its first command.
    pub(crate) async fn open(channel: Channel, user: String) -> Result<Self, String> {
        let adds = (0..PRODUCTS)
            .map(|k| {
                let (product_id, name) = product(k);
                AddLineItem {
                    user_id: user.clone(),
                    product_id,
                    name,
                    quantity: 1,
                }
            })
            .collect();
        let mut session = Self {
            grpc: Grpc::new(channel),
            adds,
            get: GetShoppingCart { user_id: user },
        };
        session.call(0).await?;
        Ok(session)
    }

    /// The `n`-th command of the script (0-based).
    async fn call(&mut self, n: usize) -> Result<Exchange, String> {
        let exchange = match step(n) {
            Step::Add(k) => {
                let request = self.adds[k].clone();
                self.unary::<_, ()>(ADD_ITEM, request)
                    .await
                    .map(|(e, ())| e)
            }
            Step::Get => {
                let request = self.get.clone();
                let (exchange, cart) = self.unary::<_, Cart>(GET_CART, request).await?;
                if cart.items.is_empty() {
                    Err("the cart is empty".to_owned())
                } else {
                    Ok(exchange)
                }
            }
        };
        exchange.map_err(|e| format!("command {}: {e}", n + 1))
    }

    async fn unary<Q, R>(&mut self, path: &'static str, request: Q) -> Result<(Exchange, R), String>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let sent_bytes = request.encoded_len() as u64;
        let sent = Instant::now();
        self.grpc
            .ready()
            .await
            .map_err(|e| format!("the channel is not ready: {e}"))?;
        let reply = self
            .grpc
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(path),
                ProstCodec::<Q, R>::default(),
            )
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        let answered = Instant::now();
        let exchange = Exchange {
            sent,
            answered,
            bytes: (sent_bytes, reply.encoded_len() as u64),
        };
        Ok((exchange, reply))
    }
}

impl Session for GrpcSession {
    async fn command(&mut self, n: usize) -> Result<Exchange, String> {
        self.call(n + 1).await
    }

    async fn close(self) -> Result<(), String> {
        Ok(())
    }
}

/// An HTTP/1.1 client of the proxy for one cart, on its own keep-alive
/// connection.
pub(crate) struct HttpSession {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: JoinHandle<hyper::Result<()>>,
    host: String,
    add_uri: String,
    adds: Vec<Bytes>,
    get_uri: String,
}

impl HttpSession {
    /// Connects to the proxy at `proxy` for the cart of `user`, past its
    /// first command.
    pub(crate) async fn open(proxy: SocketAddr, user: String) -> Result<Self, String> {
        let stream = TcpStream::connect(proxy)
            .await
            .map_err(|e| format!("connect to {proxy}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake with {proxy}: {e}"))?;
        let connection = tokio::spawn(connection);
        let adds = (0..PRODUCTS)
            .map(|k| {
                let (product_id, name) = product(k);
                Bytes::from(format!(
                    r#"{{"productId":"{product_id}","name":"{name}","quantity":1}}"#
                ))
            })
            .collect();
        let mut session = Self {
            sender,
            connection,
            host: proxy.to_string(),
            add_uri: format!("/cart/{user}/items/add"),
            adds,
            get_uri: format!("/carts/{user}"),
        };
        session.call(0).await?;
        Ok(session)
    }

    /// The `n`-th command of the script (0-based).
    async fn call(&mut self, n: usize) -> Result<Exchange, String> {
        let what = |e: &dyn std::fmt::Display| format!("command {}: {e}", n + 1);
        let step = step(n);
        let builder = Request::builder().header(header::HOST, &self.host);
        let request = match step {
            Step::Add(k) => builder
                .method(Method::POST)
                .uri(&self.add_uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(self.adds[k].clone())),
            Step::Get => builder
                .method(Method::GET)
                .uri(&self.get_uri)
                .body(Full::new(Bytes::new())),
        }
        .map_err(|e| what(&e))?;
        let sent_bytes = match step {
            Step::Add(k) => self.adds[k].len() as u64,
            Step::Get => 0,
        };
        let sent = Instant::now();
        self.sender.ready().await.map_err(|e| what(&e))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| what(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| what(&e))?
            .to_bytes();
        let answered = Instant::now();
        let wanted: &[u8] = match step {
            Step::Add(_) => b"{",
            Step::Get => b"{\"items\":[",
        };
        if status != StatusCode::OK || !body.starts_with(wanted) {
            return Err(what(&format!(
                "{status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(Exchange {
            sent,
            answered,
            bytes: (sent_bytes, body.len() as u64),
        })
    }
}

impl Session for HttpSession {
    async fn command(&mut self, n: usize) -> Result<Exchange, String> {
        self.call(n + 1).await
    }

    /// Closes the connection and waits for its task to end.
    async fn close(self) -> Result<(), String> {
        drop(self.sender);
        match tokio::time::timeout(OPEN_CLOSE_TIMEOUT, self.connection).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("the connection failed: {e}")),
            Ok(Err(e)) => Err(format!("the connection task failed: {e}")),
            Err(_) => Err("the connection did not close".to_owned()),
        }
    }
}
