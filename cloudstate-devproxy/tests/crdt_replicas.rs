//! CRDT entities with several replicas (`crdt_replicas`): each replica has
//! its own stream to the user function and its own copy of the CRDT, reached
//! by pinning a call with the `x-crdt-replica` header. Writes gossip after
//! the gossip delay, or at once for `MAJORITY` and `ALL`, whose reply waits
//! for that many replicas. No timing is asserted: convergence is polled for
//! with a generous deadline, and "not yet" uses an hour's gossip delay.

mod support;

use std::time::{Duration, Instant};

use cloudstate_devproxy::{DevProxyHandle, Observed, REPLICA_HEADER};
use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtStreamIn, CrdtStreamOut, CrdtWriteConsistency, crdt_stream_in::Message as In,
    crdt_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::{TestServer, crdt as tk};
use support::crdt::*;
use support::{http_with_headers, proxy_with, until};
use tck_adapter::proto::cloudstate::tck::model::crdt::{Response, UpdateWriteConsistency};
use tokio::sync::broadcast;

const HOUR: Duration = Duration::from_secs(3600);

struct Replicated {
    _uf: TestServer,
    proxy: DevProxyHandle,
    observed: broadcast::Receiver<Observed>,
}

async fn replicated(replicas: u32, gossip_delay: Duration) -> Replicated {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, observed, _) = proxy_with(uf.addr(), |config| {
        config.crdt_replicas = replicas;
        config.crdt_gossip_delay = gossip_delay;
    })
    .await;
    Replicated {
        _uf: uf,
        proxy,
        observed,
    }
}

/// `Process` on `replica` with these updates.
async fn update_on(
    addr: std::net::SocketAddr,
    replica: u32,
    id: &str,
    updates: Vec<tck_adapter::proto::cloudstate::tck::model::crdt::Update>,
) -> Response {
    process_on(addr, replica, id, updates.into_iter().map(apply).collect())
        .await
        .unwrap_or_else(|e| panic!("Process on replica {replica} of {id} failed: {e}"))
}

async fn read_on(addr: std::net::SocketAddr, replica: u32, id: &str) -> Response {
    update_on(addr, replica, id, vec![]).await
}

/// Polls `replica` until it shows `expected` (30 s at most).
async fn eventually(addr: std::net::SocketAddr, replica: u32, id: &str, expected: &Response) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = read_on(addr, replica, id).await;
        if &got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica {replica} of {id} still shows {got:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn replicas_converge_after_gossip() {
    let r = replicated(3, Duration::from_millis(50)).await;
    let addr = r.proxy.local_addr();
    let id = "GCounter-converge";
    touch(addr, id, &[0, 1, 2], &gcounter(0)).await;
    for (replica, increment) in [(0, 1), (1, 2), (2, 3)] {
        update_on(addr, replica, id, vec![gcounter_inc(increment)]).await;
    }
    for replica in 0..3 {
        eventually(addr, replica, id, &gcounter(6)).await;
    }

    let id = "ORSet-converge";
    touch(addr, id, &[0, 1, 2], &orset_state(&[])).await;
    update_on(addr, 0, id, vec![orset_add("a")]).await;
    update_on(addr, 1, id, vec![orset_add("b")]).await;
    for replica in 0..3 {
        eventually(addr, replica, id, &orset_state(&["a", "b"])).await;
    }
    // A remove on one replica removes what it saw, everywhere.
    assert_eq!(
        update_on(addr, 2, id, vec![orset_remove("a")]).await,
        orset_state(&["b"])
    );
    for replica in 0..3 {
        eventually(addr, replica, id, &orset_state(&["b"])).await;
    }
}

/// A replica that starts after another one wrote reads the stored copy;
/// merged with the writer's own, those writes must not count twice.
#[tokio::test]
async fn a_replica_started_after_writes_does_not_count_them_twice() {
    let r = replicated(3, Duration::from_millis(50)).await;
    let addr = r.proxy.local_addr();
    let id = "GCounter-late";
    // Each replica starts with its own write, after the ones before it.
    for (replica, increment) in [(0, 1), (1, 2), (2, 3)] {
        update_on(addr, replica, id, vec![gcounter_inc(increment)]).await;
    }
    for replica in 0..3 {
        eventually(addr, replica, id, &gcounter(6)).await;
    }
}

/// Starts `replicas` of `id` with a read, so that each has its own copy
/// before a write elsewhere.
async fn touch(addr: std::net::SocketAddr, id: &str, replicas: &[u32], empty: &Response) {
    for &replica in replicas {
        assert_eq!(&read_on(addr, replica, id).await, empty);
    }
}

#[tokio::test]
async fn an_all_write_is_on_every_replica_when_it_is_answered() {
    let mut r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "GCounter-all";
    touch(addr, id, &[1, 2], &gcounter(0)).await;
    let all = consistent(gcounter_inc(5), UpdateWriteConsistency::All);
    assert_eq!(update_on(addr, 0, id, vec![all.clone()]).await, gcounter(5));
    assert_eq!(read_on(addr, 1, id).await, gcounter(5));
    assert_eq!(read_on(addr, 2, id).await, gcounter(5));
    // The user function asked for ALL.
    let seen = until(&mut r.observed, |o| {
        matches!(o, Observed::CrdtOut(_, CrdtStreamOut { message: Some(Out::Reply(r)) }) if r.state_action.is_some())
    })
    .await;
    let Some(Observed::CrdtOut(_, reply)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        tk::sorted(reply.clone()),
        tk::reply(1, &gcounter(5))
            .update(tk::gcounter(5))
            .write_consistency(CrdtWriteConsistency::All)
            .build()
    );
}

#[tokio::test]
async fn a_majority_write_is_on_another_replica_when_it_is_answered() {
    let r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "PNCounter-majority";
    touch(addr, id, &[1, 2], &pncounter(0)).await;
    let majority = consistent(pncounter_change(-4), UpdateWriteConsistency::Majority);
    assert_eq!(update_on(addr, 0, id, vec![majority]).await, pncounter(-4));
    let others = [read_on(addr, 1, id).await, read_on(addr, 2, id).await];
    assert!(
        others.contains(&pncounter(-4)),
        "2 of 3 replicas have the write: {others:?}"
    );
}

#[tokio::test]
async fn a_local_write_waits_for_gossip() {
    let r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "GSet-local";
    touch(addr, id, &[1], &gset(&[])).await;
    assert_eq!(
        update_on(addr, 0, id, vec![gset_add("a")]).await,
        gset(&["a"])
    );
    assert_eq!(read_on(addr, 1, id).await, gset(&[]), "not gossiped yet");
    assert_eq!(read_on(addr, 0, id).await, gset(&["a"]));
}

#[tokio::test]
async fn a_subscription_on_one_replica_sees_writes_through_another() {
    let r = replicated(3, Duration::from_millis(50)).await;
    let addr = r.proxy.local_addr();
    let id = "ORSet-subscribed";
    let mut stream = subscribe(addr, Some(1), streamed_req(id)).await.unwrap();
    assert_eq!(stream.message().await, orset_state(&[]));
    update_on(addr, 0, id, vec![orset_add("x")]).await;
    assert_eq!(stream.message().await, orset_state(&["x"]));
    update_on(
        addr,
        2,
        id,
        vec![consistent(orset_add("y"), UpdateWriteConsistency::All)],
    )
    .await;
    // Gossip may bring x and y to replica 2 before or after its own write.
    let mut last = stream.message().await;
    while last != orset_state(&["x", "y"]) {
        last = stream.message().await;
    }
}

#[tokio::test]
async fn votes_count_across_replicas() {
    let r = replicated(3, Duration::from_millis(50)).await;
    let addr = r.proxy.local_addr();
    let id = "Vote-replicas";
    update_on(addr, 0, id, vec![vote_update(true)]).await;
    update_on(addr, 1, id, vec![vote_update(true)]).await;
    update_on(addr, 2, id, vec![vote_update(false)]).await;
    eventually(addr, 0, id, &vote(true, 2, 3)).await;
    eventually(addr, 1, id, &vote(true, 2, 3)).await;
    eventually(addr, 2, id, &vote(false, 2, 3)).await;
    // A vote withdrawn on one replica is counted on the others.
    update_on(addr, 1, id, vec![vote_update(false)]).await;
    eventually(addr, 0, id, &vote(true, 1, 3)).await;
    eventually(addr, 2, id, &vote(false, 1, 3)).await;
}

#[tokio::test]
async fn unpinned_commands_go_round_robin() {
    let mut r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "GCounter-round-robin";
    // Three reads start three replicas, one stream each.
    for _ in 0..3 {
        assert_eq!(process(addr, id, vec![]).await.unwrap(), gcounter(0));
    }
    let traffic = traffic(&mut r.observed, 3).await;
    assert_eq!(traffic.len(), 3, "one stream per replica: {traffic:?}");
    assert!(traffic.iter().all(|t| t.entity_id == id));
    // Then each increment goes to the next replica, which has not heard
    // of the others' (gossip takes an hour).
    for _ in 0..3 {
        assert_eq!(
            process(addr, id, vec![apply(gcounter_inc(1))])
                .await
                .unwrap(),
            gcounter(1)
        );
    }
    for replica in 0..3 {
        assert_eq!(read_on(addr, replica, id).await, gcounter(1));
    }
}

#[tokio::test]
async fn a_delete_on_one_replica_deletes_everywhere() {
    let mut r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "PNCounter-deleted";
    touch(addr, id, &[1], &pncounter(0)).await;
    let all = consistent(pncounter_change(7), UpdateWriteConsistency::All);
    update_on(addr, 0, id, vec![all]).await;
    assert_eq!(read_on(addr, 1, id).await, pncounter(7));
    assert_eq!(
        process_on(addr, 0, id, vec![delete()]).await.unwrap(),
        pncounter(7)
    );
    // Replica 1's user function is told, and its stream closes too.
    let mut left = 2;
    let seen = until(&mut r.observed, |o| {
        if matches!(o, Observed::OutputClosed { .. }) {
            left -= 1;
        }
        left == 0
    })
    .await;
    let traffic = streams(&seen);
    let told = traffic
        .iter()
        .filter(|t| {
            t.messages.contains(&Msg::In(CrdtStreamIn {
                message: Some(In::Delete(Default::default())),
            }))
        })
        .count();
    assert_eq!(told, 1, "{traffic:?}");
    assert!(traffic.iter().all(|t| t.input_closed));
    // Later commands start afresh, on either replica.
    assert_eq!(read_on(addr, 1, id).await, pncounter(0));
    assert_eq!(read_on(addr, 0, id).await, pncounter(0));
}

#[tokio::test]
async fn a_bad_replica_header_is_refused() {
    let r = replicated(3, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "GCounter-bad-pin";
    let status = process_on(addr, 3, id, vec![]).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "x-crdt-replica must name a replica from 0 to 2, not [3]"
        )
    );
    let status = support::grpc_with::<_, Response>(
        addr,
        PROCESS,
        &[(REPLICA_HEADER, "first")],
        req(id, vec![]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "x-crdt-replica must name a replica from 0 to 2, not [first]"
        )
    );
    let Err(status) = subscribe(addr, Some(9), streamed_req(id)).await else {
        panic!("a subscription on replica 9")
    };
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "x-crdt-replica must name a replica from 0 to 2, not [9]"
        )
    );
    let (status, _, body) = http_with_headers(
        addr,
        "POST",
        &format!("/tck/model/crdt/{id}"),
        &[(REPLICA_HEADER, "-1")],
        Some("{}"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "x-crdt-replica must name a replica from 0 to 2, not [-1]"
        )
    );
    // A good pin works over HTTP too.
    let (status, _, body) = http_with_headers(
        addr,
        "POST",
        &format!("/tck/model/crdt/{id}"),
        &[(REPLICA_HEADER, "2")],
        Some("{}"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"state":{"gcounter":{"value":"0"}}}"#)
    );
}

#[tokio::test]
async fn with_one_replica_only_replica_0_can_be_named() {
    let r = replicated(1, HOUR).await;
    let addr = r.proxy.local_addr();
    let id = "Flag-one";
    assert_eq!(process_on(addr, 0, id, vec![]).await.unwrap(), flag(false));
    let status = process_on(addr, 1, id, vec![]).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "x-crdt-replica must name a replica from 0 to 0, not [1]"
        )
    );
    // Every consistency is satisfied by the one replica.
    for consistency in [
        UpdateWriteConsistency::Local,
        UpdateWriteConsistency::Majority,
        UpdateWriteConsistency::All,
    ] {
        let flag_on = consistent(flag_enable(), consistency);
        assert_eq!(update_on(addr, 0, id, vec![flag_on]).await, flag(true));
    }
}
