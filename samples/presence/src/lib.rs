//! Chat-room presence and friends lists, the use case Cloudstate's CRDTs
//! were designed for.
//!
//! `build.rs` declares `Presence` and `Friends` CRDT entities; the generated
//! traits `presence::Presence` and `friends::Friends` list what to implement.
//!
//! - **Presence**, one entity per room: an [`ORSet`] of the names of the
//!   users online. `Connect` is a server-streaming call: it adds the user,
//!   streams the members after every change, and its cancellation (the
//!   client hangs up) removes the user again. `Monitor` streams the members
//!   without joining, `GetMembers` answers them once.
//! - **Friends**, one entity per user: an [`ORSet`] of their friends' names.

use cloudstate_sdk::crdt::{CrdtOptions, ORSet};
use cloudstate_sdk::{CloudState, CommandResult, Failure, Reply};

/// The generated messages, entity traits and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::chat::{
    FriendList, FriendRequest, Join, Members, Room, User, friends, presence,
};

/// Registers both entities, with persistence ids `presence` and `friends`.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            presence::Entity(Presence),
            CrdtOptions::new().persistence_id("presence"),
        )
        .register(
            friends::Entity(Friends),
            CrdtOptions::new().persistence_id("friends"),
        )
}

/// Who is online in a room: the CRDT is the set of their names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presence;

impl presence::Presence for Presence {
    type State = ORSet<String>;

    fn initial_state(&self, _room: &str) -> ORSet<String> {
        ORSet::new()
    }

    fn connect(
        &self,
        join: Join,
        ctx: &mut presence::StreamContext<'_, '_, Self, Members>,
    ) -> Result<Option<Reply<Members>>, Failure> {
        if join.user.is_empty() {
            return Err(Failure::new(format!(
                "connecting to room [{}] needs a user name",
                ctx.entity_id()
            )));
        }
        // Only a streamed call is ever cancelled, and the cancellation is
        // what takes the user out again.
        if !ctx.is_streamed() {
            return Err(Failure::new(
                "Connect keeps the user online while the call is open: call it streamed",
            ));
        }
        ctx.state_mut().insert(join.user.clone());
        ctx.on_change(|change| Ok(Some(members(change.state()))));
        let user = join.user;
        ctx.on_cancel(move |cancel| {
            cancel.state_mut().remove(&user);
        });
        Ok(Some(members(ctx.state()).into()))
    }

    fn monitor(
        &self,
        _: Room,
        ctx: &mut presence::StreamContext<'_, '_, Self, Members>,
    ) -> Result<Option<Reply<Members>>, Failure> {
        ctx.on_change(|change| Ok(Some(members(change.state()))));
        Ok(Some(members(ctx.state()).into()))
    }

    fn get_members(
        &self,
        _: Room,
        ctx: &mut presence::Context<'_, Self>,
    ) -> CommandResult<Members> {
        Ok(members(ctx.state()).into())
    }
}

/// A user's friends: the CRDT is the set of their names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Friends;

impl friends::Friends for Friends {
    type State = ORSet<String>;

    fn initial_state(&self, _user: &str) -> ORSet<String> {
        ORSet::new()
    }

    fn add(
        &self,
        request: FriendRequest,
        ctx: &mut friends::Context<'_, Self>,
    ) -> CommandResult<FriendList> {
        let user = ctx.entity_id();
        if request.friend.is_empty() {
            return Err(Failure::new(format!(
                "adding a friend of [{user}] needs the friend's name"
            )));
        }
        if request.friend == user {
            return Err(Failure::new(format!("[{user}] cannot be their own friend")));
        }
        ctx.state_mut().insert(request.friend);
        Ok(friend_list(ctx.state()).into())
    }

    fn remove(
        &self,
        request: FriendRequest,
        ctx: &mut friends::Context<'_, Self>,
    ) -> CommandResult<FriendList> {
        if !ctx.state().contains(&request.friend) {
            return Err(Failure::new(format!(
                "[{}] is not a friend of [{}]",
                request.friend,
                ctx.entity_id()
            )));
        }
        ctx.state_mut().remove(&request.friend);
        Ok(friend_list(ctx.state()).into())
    }

    fn get_friends(
        &self,
        _: User,
        ctx: &mut friends::Context<'_, Self>,
    ) -> CommandResult<FriendList> {
        Ok(friend_list(ctx.state()).into())
    }
}

fn sorted(names: &ORSet<String>) -> Vec<String> {
    let mut names: Vec<String> = names.iter().cloned().collect();
    names.sort();
    names
}

fn members(online: &ORSet<String>) -> Members {
    Members {
        users: sorted(online),
    }
}

fn friend_list(friends: &ORSet<String>) -> FriendList {
    FriendList {
        friends: sorted(friends),
    }
}

/// The requests the sample prints when it starts, with their answers; its
/// tests run them through the dev proxy. Each `Connect` stays open until the
/// client hangs up; the checks hang up after the lines shown.
#[cfg(feature = "devproxy")]
pub fn examples() -> Vec<cloudstate_devproxy::local::examples::Example> {
    use cloudstate_devproxy::local::examples::Example;
    vec![
        Example::post("/users/ann/friends/add")
            .json(r#"{"friend":"bob"}"#)
            .expect_json(r#"{"friends":["bob"]}"#),
        Example::post("/users/ann/friends/add")
            .json(r#"{"friend":"cid"}"#)
            .expect_json(r#"{"friends":["bob","cid"]}"#),
        Example::post("/users/ann/friends/remove")
            .json(r#"{"friend":"bob"}"#)
            .expect_json(r#"{"friends":["cid"]}"#),
        Example::get("/users/ann/friends").expect_json(r#"{"friends":["cid"]}"#),
        Example::post("/users/ann/friends/add")
            .json(r#"{"friend":"ann"}"#)
            .expect_failure(500, "[ann] cannot be their own friend"),
        Example::get("/rooms/lobby/members").expect_json(r#"{"users":[]}"#),
        Example::get("/rooms/lobby/monitor").expect_lines([r#"{"users":[]}"#]),
        Example::get("/rooms/lobby/connect/ann").expect_lines([r#"{"users":["ann"]}"#]),
    ]
}
