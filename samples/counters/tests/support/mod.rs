//! The counters user function and a dev proxy in front of it, both on port 0.

use cloudstate_devproxy::{DevProxy, DevProxyConfig, DevProxyHandle};
use cloudstate_sdk::CloudState;
use cloudstate_sdk::testkit::TestServer;

/// The user function (keep it for the test's length: dropping it stops it)
/// and the proxy.
pub(crate) async fn start() -> (TestServer, DevProxyHandle) {
    let user_function = TestServer::start(counters::register(CloudState::new())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = DevProxy::start(
        DevProxyConfig::new(user_function.addr().to_string()),
        listener,
    )
    .await
    .expect("the dev proxy starts");
    (user_function, proxy)
}
