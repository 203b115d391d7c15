//! The trait methods that `#[event_sourced]`, `#[value_entity]`, `#[crdt]`
//! and `#[action]` generate call the user's handlers.

#[path = "ui/action_support.rs"]
mod action_support;
#[path = "ui/crdt_support.rs"]
mod crdt_support;
#[path = "ui/support.rs"]
mod support;
#[path = "ui/value_support.rs"]
mod value_support;

use std::sync::Mutex;

use shopping_cart::{Context, ShoppingCart};
use support::*;

/// Records which of its handlers ran.
#[derive(Default)]
struct CartEntity {
    calls: Mutex<Vec<&'static str>>,
}

impl CartEntity {
    fn record(&self, handler: &'static str) {
        self.calls.lock().unwrap().push(handler);
    }

    fn calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[cloudstate_sdk::event_sourced]
impl ShoppingCart for CartEntity {
    type State = Vec<LineItem>;

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        self.record("initial_state");
        Vec::new()
    }

    #[event_handler]
    fn added(&self, cart: &mut Self::State, event: &ItemAdded) {
        self.record("added");
        cart.push(LineItem {
            product_id: event.product_id.clone(),
            quantity: event.quantity,
        });
    }

    #[event_handler]
    fn removed(&self, cart: &mut Self::State, event: &persistence::ItemRemoved) {
        self.record("removed");
        cart.retain(|item| item.product_id != event.product_id);
    }

    #[snapshot]
    fn to_snapshot(&self, cart: &Self::State) -> Cart {
        self.record("to_snapshot");
        Cart {
            items: cart.clone(),
        }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, entity_id: &str, snapshot: Cart) -> Self::State {
        self.record("from_snapshot");
        let mut cart = self.initial_state(entity_id);
        cart.extend(snapshot.items);
        cart
    }

    #[command_handler(name = "AddItem")]
    fn add(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()> {
        self.record("add");
        if request.quantity <= 0 {
            return Err(format!(
                "{}: cannot add {} of {}",
                ctx.entity_id, request.quantity, request.product_id
            ));
        }
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut Context<'_, Self>,
    ) -> CommandResult<Cart> {
        self.record("get_cart");
        Ok(Cart { items: Vec::new() })
    }
}

fn apple(quantity: i32) -> ItemAdded {
    ItemAdded {
        product_id: "apple".to_owned(),
        quantity,
    }
}

#[test]
fn event_handlers_are_wired_by_event_type() {
    let entity = CartEntity::default();
    let mut state = entity.initial_state("cart");
    entity.on_item_added(&mut state, &apple(2));
    assert_eq!(entity.calls(), ["initial_state", "added"]);
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].quantity, 2);

    entity.on_item_removed(
        &mut state,
        &ItemRemoved {
            product_id: "apple".to_owned(),
        },
    );
    assert_eq!(entity.calls(), ["removed"]);
    assert!(state.is_empty());
}

#[test]
fn snapshot_methods_are_wired() {
    let entity = CartEntity::default();
    let mut state = Vec::new();
    entity.on_item_added(&mut state, &apple(3));
    let snapshot = entity.snapshot(&state);
    let restored = entity.restore("cart", snapshot.clone());
    assert_eq!(
        entity.calls(),
        ["added", "to_snapshot", "from_snapshot", "initial_state"]
    );
    assert_eq!(snapshot.items, state);
    assert_eq!(restored, state);
}

#[test]
fn command_handlers_are_wired_by_rpc_name() {
    let entity = CartEntity::default();
    let mut ctx = Context::new("cart-7");
    let request = AddLineItem {
        product_id: "apple".to_owned(),
        quantity: 0,
    };
    assert_eq!(
        entity.add_item(request, &mut ctx),
        Err("cart-7: cannot add 0 of apple".to_owned())
    );
    assert_eq!(
        entity.get_cart(GetShoppingCart, &mut ctx),
        Ok(Cart { items: Vec::new() })
    );
    assert_eq!(entity.calls(), ["add", "get_cart"]);
}

#[test]
fn handlers_keep_their_own_names() {
    let entity = CartEntity::default();
    let mut state = Vec::new();
    entity.added(&mut state, &apple(1));
    assert_eq!(entity.to_snapshot(&state).items, state);
    assert_eq!(entity.calls(), ["added", "to_snapshot"]);
}

mod value_entity {
    use std::sync::Mutex;

    use super::value_support::value_cart::{Context, ValueCart};
    use super::value_support::*;

    #[derive(Default)]
    struct CartEntity {
        calls: Mutex<Vec<&'static str>>,
    }

    impl CartEntity {
        fn record(&self, handler: &'static str) {
            self.calls.lock().unwrap().push(handler);
        }
    }

    #[cloudstate_sdk::value_entity]
    impl ValueCart for CartEntity {
        #[command_handler(name = "AddItem")]
        fn add(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()> {
            self.record("add");
            if request.quantity <= 0 {
                return Err(format!(
                    "{}: cannot add {}",
                    ctx.entity_id, request.quantity
                ));
            }
            ctx.state.items.push((request.product_id, request.quantity));
            Ok(())
        }

        #[command_handler]
        fn get_cart(&self, _request: GetCart, ctx: &mut Context<'_, Self>) -> CommandResult<Cart> {
            self.record("get_cart");
            Ok(ctx.state.clone())
        }
    }

    #[test]
    fn command_handlers_are_wired_by_rpc_name() {
        let entity = CartEntity::default();
        let mut ctx = Context::new("cart-3");
        let apples = |quantity| AddLineItem {
            product_id: "apple".to_owned(),
            quantity,
        };
        assert_eq!(entity.add_item(apples(2), &mut ctx), Ok(()));
        assert_eq!(
            entity.add_item(apples(0), &mut ctx),
            Err("cart-3: cannot add 0".to_owned())
        );
        assert_eq!(
            entity.get_cart(GetCart, &mut ctx),
            Ok(Cart {
                items: vec![("apple".to_owned(), 2)]
            })
        );
        assert_eq!(*entity.calls.lock().unwrap(), ["add", "add", "get_cart"]);
    }
}

mod crdt {
    use std::sync::Mutex;

    use super::crdt_support::presence::{Context, Presence, StreamContext};
    use super::crdt_support::*;

    #[derive(Default)]
    struct PresenceEntity {
        calls: Mutex<Vec<&'static str>>,
    }

    impl PresenceEntity {
        fn record(&self, handler: &'static str) {
            self.calls.lock().unwrap().push(handler);
        }
    }

    #[cloudstate_sdk::crdt]
    impl Presence for PresenceEntity {
        type State = Vec<String>;

        fn initial_state(&self, entity_id: &str) -> Self::State {
            vec![entity_id.to_owned()]
        }

        #[command_handler(name = "Connect")]
        fn join(&self, request: Connect, ctx: &mut Context<'_, Self>) -> CommandResult<Online> {
            self.record("join");
            if request.devices == 0 {
                return Err(Failure::new(format!("{}: no devices", ctx.entity_id)));
            }
            ctx.state.push(request.name);
            Ok(Online {
                connections: ctx.state.len() as u64,
            }
            .into())
        }

        #[command_handler(name = "Watch")]
        fn subscribe(
            &self,
            _request: User,
            ctx: &mut StreamContext<'_, '_, Self, Online>,
        ) -> Result<Option<Reply<Online>>, Failure> {
            self.record("subscribe");
            ctx.subscribed = true;
            let state: &Self::State = &ctx.inner.state;
            Ok(state.is_empty().then(|| Online::default().into()))
        }
    }

    #[test]
    fn command_handlers_are_wired_by_rpc_name() {
        let entity = PresenceEntity::default();
        let mut ctx = CrdtContext::new("room-1", entity.initial_state("room-1"));
        let connect = |devices| Connect {
            name: "ann".to_owned(),
            devices,
        };
        assert_eq!(
            entity.connect(connect(1), &mut ctx),
            Ok(Reply::message(Online { connections: 2 }))
        );
        assert_eq!(
            entity.connect(connect(0), &mut ctx),
            Err(Failure::new("room-1: no devices"))
        );
        let mut streamed = StreamedContext::new(&mut ctx);
        let user = User {
            name: "bob".to_owned(),
        };
        assert_eq!(entity.watch(user, &mut streamed), Ok(None));
        assert!(streamed.subscribed);
        assert_eq!(ctx.state, ["room-1", "ann"]);
        assert_eq!(*entity.calls.lock().unwrap(), ["join", "join", "subscribe"]);
    }
}

mod action {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use cloudstate_sdk::__private::{StreamExt as _, stream};

    use super::action_support::greeter::Greeter;
    use super::action_support::*;

    struct GreeterAction;

    #[cloudstate_sdk::action]
    impl Greeter for GreeterAction {
        #[command_handler(name = "Hello")]
        async fn greet(&self, request: Greet, ctx: ActionContext) -> ActionResult<Greeting> {
            let message = format!("{}: hello, {}", ctx.command_name, request.name);
            std::future::ready(Ok(Greeting { message })).await
        }

        #[command_handler(name = "HelloAll")]
        async fn greet_all(
            &self,
            requests: BoxStream<'static, Result<Greet, Failure>>,
            _ctx: ActionContext,
        ) -> ActionResult<Greeting> {
            let count = requests.count().await;
            Ok(Greeting {
                message: format!("hello, {count} of you"),
            })
        }

        #[command_handler(name = "Spell")]
        fn letters(
            &self,
            request: Greet,
            _ctx: ActionContext,
        ) -> BoxStream<'static, ActionResult<Greeting>> {
            let letters: Vec<ActionResult<Greeting>> = request
                .name
                .chars()
                .map(|letter| {
                    Ok(Greeting {
                        message: letter.to_string(),
                    })
                })
                .collect();
            stream::iter(letters).boxed()
        }

        #[command_handler(name = "Chat")]
        fn talk(
            &self,
            requests: BoxStream<'static, Result<Greet, Failure>>,
            _ctx: ActionContext,
        ) -> BoxStream<'static, ActionResult<Greeting>> {
            requests
                .map(|request| {
                    request
                        .map(|greet| Greeting {
                            message: greet.name,
                        })
                        .map_err(|failure| format!("{failure:?}"))
                })
                .boxed()
        }

        /// Not `async`: returns its future itself.
        #[command_handler(name = "Ping")]
        fn pong(
            &self,
            _request: (),
            _ctx: ActionContext,
        ) -> impl Future<Output = ActionResult<()>> + Send {
            std::future::ready(Ok(()))
        }
    }

    /// Runs a future that never waits.
    fn block_on<F: Future>(future: F) -> F::Output {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the future waits"),
        }
    }

    fn greet(name: &str) -> Greet {
        Greet {
            name: name.to_owned(),
        }
    }

    fn ctx(command_name: &str) -> ActionContext {
        ActionContext {
            command_name: command_name.to_owned(),
        }
    }

    /// The trait's futures are `Send`, as the server needs.
    fn assert_send<T: Send>(value: T) -> T {
        value
    }

    #[test]
    fn async_handlers_are_awaited() {
        let hello = assert_send(GreeterAction.hello(greet("Ada"), ctx("Hello")));
        assert_eq!(
            block_on(hello),
            Ok(Greeting {
                message: "Hello: hello, Ada".to_owned()
            })
        );
        let requests = stream::iter([Ok(greet("Ada")), Ok(greet("Grace"))]).boxed();
        let hello_all = assert_send(GreeterAction.hello_all(requests, ctx("HelloAll")));
        assert_eq!(block_on(hello_all).unwrap().message, "hello, 2 of you");
        assert_eq!(block_on(GreeterAction.ping((), ctx("Ping"))), Ok(()));
    }

    #[test]
    fn stream_handlers_are_wired() {
        let letters: Vec<_> = block_on(GreeterAction.spell(greet("Ada"), ctx("Spell")).collect());
        let letters: Vec<String> = letters
            .into_iter()
            .map(|letter| letter.unwrap().message)
            .collect();
        assert_eq!(letters, ["A", "d", "a"]);

        let requests = stream::iter([Ok(greet("Ada"))]).boxed();
        let replies: Vec<_> = block_on(GreeterAction.chat(requests, ctx("Chat")).collect());
        assert_eq!(
            replies,
            [Ok(Greeting {
                message: "Ada".to_owned()
            })]
        );
    }

    #[test]
    fn handlers_keep_their_own_names() {
        assert_eq!(
            block_on(GreeterAction.greet(greet("Bob"), ctx("Greet")))
                .unwrap()
                .message,
            "Greet: hello, Bob"
        );
    }
}
