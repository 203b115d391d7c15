//! The counters end to end through the dev proxy, over HTTP/JSON and gRPC,
//! with each write consistency.

mod support;

use std::net::SocketAddr;

use cloudstate_devproxy::local::examples::{Example, check};
use counters::proto::com::example::counters::{AddLike, Ballot, Consistency, Likes, Tally};

const CONSISTENCIES: [&str; 3] = ["LOCAL", "MAJORITY", "ALL"];

#[tokio::test]
async fn every_write_consistency_is_answered_over_http() {
    let proxy = support::start().await;
    let mut examples = Vec::new();
    for (n, consistency) in (1..).zip(CONSISTENCIES) {
        let body = format!(r#"{{"consistency":"{consistency}"}}"#);
        examples.push(
            Example::post("/likes/photo-9")
                .json(body.clone())
                .expect_json(format!(r#"{{"likes":"{n}"}}"#)),
        );
        examples.push(
            Example::post("/scores/photo-9/down")
                .json(body)
                .expect_json(format!(r#"{{"score":"-{n}"}}"#)),
        );
        let in_favour = n % 2 == 1;
        examples.push(
            Example::post("/polls/search/vote")
                .json(format!(
                    r#"{{"inFavour":{in_favour},"consistency":"{consistency}"}}"#
                ))
                .expect_json(format!(
                    r#"{{"selfVote":{in_favour},"votesFor":{},"voters":1,"majority":{in_favour}}}"#,
                    u8::from(in_favour)
                )),
        );
    }
    examples.push(Example::get("/likes/photo-9").expect_json(r#"{"likes":"3"}"#));
    examples.push(Example::get("/scores/photo-9").expect_json(r#"{"score":"-3"}"#));
    check(proxy.addr(), &examples)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn an_unknown_consistency_is_refused_over_http_with_the_reason() {
    let proxy = support::start().await;
    let examples = [
        Example::post("/scores/x/up")
            .json(r#"{"consistency":9}"#)
            .expect_failure(
                500,
                "unknown write consistency [9]: use LOCAL, MAJORITY or ALL",
            ),
        Example::get("/scores/x").expect_json(r#"{"score":"0"}"#),
    ];
    check(proxy.addr(), &examples)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn unary<Req, Resp>(addr: SocketAddr, path: &str, request: Req) -> Result<Resp, tonic::Status>
where
    Req: cloudstate_sdk::prost::Message + Send + Sync + 'static,
    Resp: cloudstate_sdk::prost::Message + Default + Send + Sync + 'static,
{
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary(
            tonic::Request::new(request),
            path.parse().unwrap(),
            tonic_prost::ProstCodec::<Req, Resp>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn every_write_consistency_is_answered_over_grpc() {
    let proxy = support::start().await;
    let addr = proxy.addr();
    let all = [Consistency::Local, Consistency::Majority, Consistency::All];
    for (n, consistency) in (1..).zip(all) {
        let like = AddLike {
            item: "photo-1".into(),
            consistency: consistency.into(),
        };
        let likes: Likes = unary(addr, "/com.example.counters.LikeCounter/Like", like)
            .await
            .unwrap_or_else(|e| panic!("{consistency:?}: {e}"));
        assert_eq!(likes.likes, n);
        let ballot = Ballot {
            feature: "offline".into(),
            in_favour: true,
            consistency: consistency.into(),
        };
        let tally: Tally = unary(addr, "/com.example.counters.FeaturePoll/Cast", ballot)
            .await
            .unwrap_or_else(|e| panic!("{consistency:?}: {e}"));
        assert_eq!(
            (tally.votes_for, tally.voters, tally.majority),
            (1, 1, true)
        );
    }
}

#[tokio::test]
async fn an_unknown_consistency_fails_over_grpc_with_the_reason() {
    let proxy = support::start().await;
    let like = AddLike {
        item: "photo-2".into(),
        consistency: 42,
    };
    let status = unary::<_, Likes>(proxy.addr(), "/com.example.counters.LikeCounter/Like", like)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "unknown write consistency [42]: use LOCAL, MAJORITY or ALL"
    );
}
