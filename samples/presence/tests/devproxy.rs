//! Presence end to end through the dev proxy: long-lived `Connect` calls over
//! HTTP (newline-delimited JSON and Server-Sent Events) and gRPC; a client
//! that hangs up leaves the room and the others see it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cloudstate_devproxy::local::examples::{Answer, Example};
use presence::proto::com::example::chat::{FriendList, FriendRequest, Join, Members, Room};
use serde_json::{Value, json};
use tonic::codegen::http::uri::PathAndQuery;

/// Opens a streamed call over HTTP; the caller reads its lines.
async fn open(addr: SocketAddr, example: Example) -> Answer {
    let answer = example.send(addr).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200, "a streamed call is answered 200");
    answer
}

/// The next line of newline-delimited JSON, parsed.
async fn next_json(answer: &mut Answer) -> Value {
    let line = answer
        .line()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the stream goes on");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("[{line}] is not JSON: {e}"))
}

/// The data of the next Server-Sent Event, parsed.
async fn next_event(answer: &mut Answer) -> Value {
    let line = answer
        .line()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the stream goes on");
    let data = line
        .strip_prefix("data:")
        .unwrap_or_else(|| panic!("[{line}] is not an event's data line"));
    let blank = answer.line().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(blank.as_deref(), Some(""), "one data line per event");
    serde_json::from_str(data.trim_start()).unwrap_or_else(|e| panic!("[{data}] is not JSON: {e}"))
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let answer = Example::get(path).send(addr).await.unwrap();
    assert_eq!(answer.status, 200);
    let body = answer.text().await.unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("[{body}] is not JSON: {e}"))
}

#[tokio::test]
async fn connected_users_see_each_other_join_and_leave_over_http() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let mut ann = open(addr, Example::get("/rooms/lobby/connect/ann")).await;
    assert!(
        ann.content_type.starts_with("application/json"),
        "newline-delimited JSON by default, not [{}]",
        ann.content_type
    );
    assert_eq!(next_json(&mut ann).await, json!({"users": ["ann"]}));

    let mut bob = open(addr, Example::get("/rooms/lobby/connect/bob")).await;
    assert_eq!(next_json(&mut bob).await, json!({"users": ["ann", "bob"]}));
    assert_eq!(next_json(&mut ann).await, json!({"users": ["ann", "bob"]}));

    drop(bob); // bob closes the tab
    assert_eq!(next_json(&mut ann).await, json!({"users": ["ann"]}));
    assert_eq!(
        get_json(addr, "/rooms/lobby/members").await,
        json!({"users": ["ann"]})
    );
}

#[tokio::test]
async fn a_monitor_over_server_sent_events_sees_joins_without_joining() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let mut monitor = open(
        addr,
        Example::get("/rooms/hall/monitor").header("Accept", "text/event-stream"),
    )
    .await;
    assert!(monitor.content_type.starts_with("text/event-stream"));
    assert_eq!(next_event(&mut monitor).await, json!({"users": []}));

    let mut cid = open(addr, Example::get("/rooms/hall/connect/cid")).await;
    assert_eq!(next_json(&mut cid).await, json!({"users": ["cid"]}));
    assert_eq!(next_event(&mut monitor).await, json!({"users": ["cid"]}));
    drop(cid);
    assert_eq!(next_event(&mut monitor).await, json!({"users": []}));
}

#[tokio::test]
async fn rooms_are_separate_entities() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let mut ann = open(addr, Example::get("/rooms/red/connect/ann")).await;
    assert_eq!(next_json(&mut ann).await, json!({"users": ["ann"]}));
    let mut bob = open(addr, Example::get("/rooms/blue/connect/bob")).await;
    assert_eq!(next_json(&mut bob).await, json!({"users": ["bob"]}));
    assert_eq!(
        get_json(addr, "/rooms/red/members").await,
        json!({"users": ["ann"]})
    );
}

async fn grpc(addr: SocketAddr) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
}

fn path(method: &str) -> PathAndQuery {
    format!("/com.example.chat.Presence/{method}")
        .parse()
        .unwrap()
}

async fn connect(addr: SocketAddr, user: &str) -> Result<tonic::Streaming<Members>, tonic::Status> {
    let join = Join {
        room: "lobby".into(),
        user: user.into(),
    };
    let codec = tonic_prost::ProstCodec::<Join, Members>::default();
    grpc(addr)
        .await
        .server_streaming(tonic::Request::new(join), path("Connect"), codec)
        .await
        .map(tonic::Response::into_inner)
}

async fn next(stream: &mut tonic::Streaming<Members>) -> Vec<String> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message within 10 s")
        .expect("no error")
        .expect("the stream goes on")
        .users
}

#[tokio::test]
async fn connected_users_see_each_other_join_and_leave_over_grpc() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let mut ann = connect(addr, "ann").await.unwrap();
    assert_eq!(next(&mut ann).await, ["ann"]);
    let mut bob = connect(addr, "bob").await.unwrap();
    assert_eq!(next(&mut bob).await, ["ann", "bob"]);
    assert_eq!(next(&mut ann).await, ["ann", "bob"]);
    drop(bob); // cancels bob's call
    assert_eq!(next(&mut ann).await, ["ann"]);

    let codec = tonic_prost::ProstCodec::<Room, Members>::default();
    let lobby = Room {
        room: "lobby".into(),
    };
    let got = grpc(addr)
        .await
        .unary(tonic::Request::new(lobby), path("GetMembers"), codec)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.users, ["ann"]);
}

#[tokio::test]
async fn connecting_without_a_name_fails_over_grpc_with_the_reason() {
    let proxy = support::start().await;
    let status = match connect(proxy.addr(), "").await {
        Err(status) => status,
        Ok(mut stream) => stream
            .message()
            .await
            .expect_err("the call fails instead of streaming"),
    };
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "connecting to room [lobby] needs a user name"
    );
}

#[tokio::test]
async fn friends_over_grpc_and_http_are_one_list() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let codec = tonic_prost::ProstCodec::<FriendRequest, FriendList>::default();
    let request = FriendRequest {
        user: "dee".into(),
        friend: "eve".into(),
    };
    let added = grpc(addr)
        .await
        .unary(
            tonic::Request::new(request),
            "/com.example.chat.Friends/Add".parse().unwrap(),
            codec,
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.friends, ["eve"]);
    assert_eq!(
        get_json(addr, "/users/dee/friends").await,
        json!({"friends": ["eve"]})
    );
    let failed = Example::post("/users/dee/friends/remove")
        .json(r#"{"friend":"fay"}"#)
        .expect_failure(500, "[fay] is not a friend of [dee]");
    failed.check(addr).await.unwrap_or_else(|e| panic!("{e}"));
}
