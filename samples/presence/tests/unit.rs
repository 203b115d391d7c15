//! The chat entities in memory, with the SDK's CRDT test kit: joins, leaves
//! by cancellation, what watchers are sent, changes from other replicas, and
//! the failures a client can get.

use cloudstate_sdk::crdt::WriteConsistency;
use cloudstate_sdk::testkit::CrdtTestKit;
use presence::proto::com::example::chat::{
    FriendList, FriendRequest, Join, Members, Room, User, friends, presence as api,
};
use presence::{Friends, Presence};

fn join(user: &str) -> Join {
    Join {
        room: "lobby".into(),
        user: user.into(),
    }
}

fn lobby() -> Room {
    Room {
        room: "lobby".into(),
    }
}

fn members(users: &[&str]) -> Members {
    Members {
        users: users.iter().map(|&u| u.to_owned()).collect(),
    }
}

fn room() -> CrdtTestKit<api::Entity<Presence>> {
    CrdtTestKit::new(api::Entity(Presence), "lobby")
}

fn online(kit: &CrdtTestKit<api::Entity<Presence>>) -> Vec<String> {
    let mut users: Vec<String> = kit.state().unwrap().iter().cloned().collect();
    users.sort();
    users
}

#[test]
fn connecting_joins_and_answers_the_members_with_the_new_user() {
    let mut kit = room();
    let ann = kit.call_streamed(api::connect(&join("ann")));
    assert!(ann.streamed(), "Connect subscribes to later changes");
    assert_eq!(ann.reply(), members(&["ann"]));
    let change = ann.state_action().expect("the join is sent to the proxy");
    assert!(change.delta().is_some());
    assert_eq!(change.write_consistency(), WriteConsistency::Local);
    assert_eq!(online(&kit), ["ann"]);
}

#[test]
fn a_second_user_joining_is_seen_by_the_first_and_by_watchers() {
    let mut kit = room();
    let watcher = kit.call_streamed(api::monitor(&lobby()));
    assert!(watcher.streamed());
    assert_eq!(watcher.reply(), members(&[]));
    let ann = kit.call_streamed(api::connect(&join("ann")));
    assert_eq!(ann.notifications().len(), 1, "only the watcher is told");
    assert_eq!(ann.notifications()[0].message(), Some(members(&["ann"])));

    let bob = kit.call_streamed(api::connect(&join("bob")));
    assert_eq!(bob.reply(), members(&["ann", "bob"]));
    let told: Vec<i64> = bob.notifications().iter().map(|n| n.command_id()).collect();
    assert_eq!(told, [1, 2], "the watcher (1) and ann (2), not bob himself");
    for notification in bob.notifications() {
        assert_eq!(notification.message(), Some(members(&["ann", "bob"])));
        assert!(!notification.end_stream());
    }
}

#[test]
fn hanging_up_leaves_the_room_and_the_others_are_told() {
    let mut kit = room();
    let watcher = 1;
    kit.call_streamed(api::monitor(&lobby()));
    let ann = 2;
    kit.call_streamed(api::connect(&join("ann")));
    let bob = 3;
    kit.call_streamed(api::connect(&join("bob")));

    let left = kit.cancel(bob).expect("bob's call was streamed");
    let change = left
        .state_action()
        .expect("bob's leaving is sent to the proxy");
    assert!(change.delta().is_some());
    let told: Vec<i64> = left
        .notifications()
        .iter()
        .map(|n| n.command_id())
        .collect();
    assert_eq!(told, [watcher, ann]);
    for notification in left.notifications() {
        assert_eq!(notification.message(), Some(members(&["ann"])));
    }
    assert_eq!(online(&kit), ["ann"]);
    let last = kit.stream(ann).last().unwrap();
    assert_eq!(last.message(), Some(members(&["ann"])));
}

#[test]
fn a_watcher_hanging_up_changes_nothing() {
    let mut kit = room();
    kit.call_streamed(api::connect(&join("ann")));
    kit.call_streamed(api::monitor(&lobby()));
    let gone = kit.cancel(2).unwrap();
    assert_eq!(gone.state_action(), None);
    assert!(gone.notifications().is_empty());
    assert_eq!(online(&kit), ["ann"]);
}

#[test]
fn users_joining_on_other_replicas_are_streamed_to_local_subscribers() {
    let mut kit = room();
    kit.call_streamed(api::connect(&join("ann")));
    let told = kit.remote_change(|online| {
        online.insert("zoe".to_owned());
    });
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].command_id(), 1);
    assert_eq!(told[0].message(), Some(members(&["ann", "zoe"])));
    let got: Members = kit.call(api::get_members(&lobby())).reply();
    assert_eq!(got, members(&["ann", "zoe"]));

    let told = kit.remote_change(|online| {
        online.remove(&"zoe".to_owned());
    });
    assert_eq!(told[0].message(), Some(members(&["ann"])));
}

#[test]
fn get_members_reads_without_changing_anything() {
    let mut kit = room();
    kit.call_streamed(api::connect(&join("bob")));
    kit.call_streamed(api::connect(&join("ann")));
    let got = kit.call(api::get_members(&lobby()));
    assert_eq!(got.reply(), members(&["ann", "bob"]), "sorted by name");
    assert_eq!(got.state_action(), None);
    assert!(!got.streamed());
}

#[test]
fn connecting_without_a_user_name_fails_and_changes_nothing() {
    let mut kit = room();
    let nobody = kit.call_streamed(api::connect(&join("")));
    assert_eq!(
        nobody.failure(),
        Some("connecting to room [lobby] needs a user name")
    );
    assert_eq!(nobody.state_action(), None);
    assert!(!nobody.streamed());
    assert!(kit.state().unwrap().is_empty());
}

#[test]
fn connecting_without_a_stream_is_refused_so_nobody_stays_online_forever() {
    let mut kit = room();
    let unary = kit.call(api::connect(&join("ann")));
    assert_eq!(
        unary.failure(),
        Some("Connect keeps the user online while the call is open: call it streamed")
    );
    assert_eq!(unary.state_action(), None);
    assert!(kit.state().unwrap().is_empty());
}

#[test]
fn the_same_user_twice_is_one_member() {
    let mut kit = room();
    kit.call_streamed(api::connect(&join("ann")));
    let again = kit.call_streamed(api::connect(&join("ann")));
    assert_eq!(again.reply(), members(&["ann"]));
    assert_eq!(again.state_action(), None, "already in: no change to send");
    // The documented limit of one element per name: the first of the two
    // calls to hang up takes ann out, though her second call is still open.
    let left = kit.cancel(1).unwrap();
    assert_eq!(left.notifications()[0].command_id(), 2);
    assert_eq!(left.notifications()[0].message(), Some(members(&[])));
}

fn befriend(user: &str, friend: &str) -> FriendRequest {
    FriendRequest {
        user: user.into(),
        friend: friend.into(),
    }
}

fn list(names: &[&str]) -> FriendList {
    FriendList {
        friends: names.iter().map(|&n| n.to_owned()).collect(),
    }
}

#[test]
fn friends_are_added_removed_and_listed_sorted() {
    let mut kit = CrdtTestKit::new(friends::Entity(Friends), "ann");
    let added = kit.call(friends::add(&befriend("ann", "cid")));
    assert_eq!(added.reply(), list(&["cid"]));
    assert!(added.state_action().unwrap().delta().is_some());
    assert_eq!(
        kit.call(friends::add(&befriend("ann", "bob"))).reply(),
        list(&["bob", "cid"])
    );
    let removed = kit.call(friends::remove(&befriend("ann", "cid")));
    assert_eq!(removed.reply(), list(&["bob"]));
    assert!(removed.state_action().unwrap().delta().is_some());
    let got = kit.call(friends::get_friends(&User { user: "ann".into() }));
    assert_eq!(got.reply(), list(&["bob"]));
    assert_eq!(got.state_action(), None);
}

#[test]
fn friends_added_on_another_replica_are_listed() {
    let mut kit = CrdtTestKit::new(friends::Entity(Friends), "ann");
    kit.call(friends::add(&befriend("ann", "bob")));
    kit.remote_change(|friends| {
        friends.insert("dee".to_owned());
    });
    let got = kit.call(friends::get_friends(&User { user: "ann".into() }));
    assert_eq!(got.reply(), list(&["bob", "dee"]));
}

#[test]
fn bad_friend_requests_fail_with_the_reason_and_change_nothing() {
    let mut kit = CrdtTestKit::new(friends::Entity(Friends), "ann");
    kit.call(friends::add(&befriend("ann", "bob")));
    let cases = [
        (
            friends::add(&befriend("ann", "")),
            "adding a friend of [ann] needs the friend's name",
        ),
        (
            friends::add(&befriend("ann", "ann")),
            "[ann] cannot be their own friend",
        ),
        (
            friends::remove(&befriend("ann", "zed")),
            "[zed] is not a friend of [ann]",
        ),
    ];
    for (call, text) in cases {
        let failed = kit.call(call);
        assert_eq!(failed.failure(), Some(text));
        assert_eq!(failed.state_action(), None);
    }
    let got = kit.call(friends::get_friends(&User { user: "ann".into() }));
    assert_eq!(got.reply(), list(&["bob"]));
}
