//! Procedural macros for Cloudstate user functions: `#[event_sourced]`,
//! `#[value_entity]`, `#[crdt]` and `#[action]`.
//!
//! Users reach these through `cloudstate_sdk`; the macros expand to plain
//! trait implementations and hold no logic of their own.
//!
//! # `#[event_sourced]`
//!
//! `cloudstate-build` generates a trait per event-sourced service, with
//! methods named after the proto: `on_item_added` for the event `ItemAdded`,
//! `add_item` for the rpc `AddItem`, `snapshot` and `restore` when a snapshot
//! type is declared. On an impl of such a trait, `#[event_sourced]` lets the
//! handlers have names of your choosing, and matches event handlers by the
//! type of the event they take:
//!
//! | on a method | implements |
//! | --- | --- |
//! | `#[event_handler]` taking `(&self, state, event: &ItemAdded)` | `on_item_added`: `on_` and the `snake_case` of the event type's last path segment |
//! | `#[command_handler(name = "AddItem")]` | `add_item`: the `snake_case` of the rpc name |
//! | `#[command_handler]` | the trait method of the handler's own name |
//! | `#[snapshot]` | `snapshot` |
//! | `#[snapshot_handler]` | `restore` |
//!
//! Items without these attributes stay as they are. The `ShoppingCart` trait
//! below has the shape that `cloudstate-build` generates:
//!
//! ```
//! # mod persistence {
//! #     pub struct ItemAdded { pub product_id: String, pub quantity: i32 }
//! #     pub struct ItemRemoved { pub product_id: String }
//! # }
//! # pub struct Cart { pub items: Vec<(String, i32)> }
//! # pub struct AddLineItem { pub product_id: String, pub quantity: i32 }
//! # pub struct GetShoppingCart;
//! # use persistence::{ItemAdded, ItemRemoved};
//! # pub type CommandResult<T> = Result<T, String>;
//! mod shopping_cart {
//! #   use super::*;
//! #   pub struct Context<'a, T>(pub &'a mut T);
//!     pub trait ShoppingCart: Send + Sync + Sized + 'static {
//!         type State: Send + 'static;
//!         fn initial_state(&self, entity_id: &str) -> Self::State;
//!         fn on_item_added(&self, state: &mut Self::State, event: &ItemAdded);
//!         fn on_item_removed(&self, state: &mut Self::State, event: &ItemRemoved);
//!         fn snapshot(&self, state: &Self::State) -> Cart;
//!         fn restore(&self, entity_id: &str, snapshot: Cart) -> Self::State;
//!         fn add_item(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()>;
//!         fn get_cart(&self, request: GetShoppingCart, ctx: &mut Context<'_, Self>) -> CommandResult<Cart>;
//!     }
//! }
//!
//! struct CartEntity;
//!
//! #[cloudstate_sdk::event_sourced]
//! impl shopping_cart::ShoppingCart for CartEntity {
//!     type State = Vec<(String, i32)>;
//!
//!     fn initial_state(&self, _entity_id: &str) -> Self::State {
//!         Vec::new()
//!     }
//!
//!     /// Implements `on_item_added`.
//!     #[event_handler]
//!     fn added(&self, cart: &mut Self::State, event: &ItemAdded) {
//!         cart.push((event.product_id.clone(), event.quantity));
//!     }
//!
//!     #[event_handler]
//!     fn removed(&self, cart: &mut Self::State, event: &persistence::ItemRemoved) {
//!         cart.retain(|(id, _)| *id != event.product_id);
//!     }
//!
//!     #[snapshot]
//!     fn to_snapshot(&self, cart: &Self::State) -> Cart {
//!         Cart { items: cart.clone() }
//!     }
//!
//!     #[snapshot_handler]
//!     fn from_snapshot(&self, _entity_id: &str, snapshot: Cart) -> Self::State {
//!         snapshot.items
//!     }
//!
//!     #[command_handler(name = "AddItem")]
//!     fn add(&self, _request: AddLineItem, _ctx: &mut shopping_cart::Context<'_, Self>) -> CommandResult<()> {
//!         Ok(())
//!     }
//!
//!     #[command_handler]
//!     fn get_cart(&self, _request: GetShoppingCart, _ctx: &mut shopping_cart::Context<'_, Self>) -> CommandResult<Cart> {
//!         Ok(Cart { items: Vec::new() })
//!     }
//! }
//!
//! # fn main() {
//! use shopping_cart::ShoppingCart as _;
//!
//! let mut state = CartEntity.initial_state("cart-1");
//! CartEntity.on_item_added(&mut state, &ItemAdded { product_id: "apple".into(), quantity: 2 });
//! assert_eq!(state, [("apple".to_owned(), 2)]);
//! // The handlers stay callable by their own names.
//! CartEntity.removed(&mut state, &ItemRemoved { product_id: "apple".into() });
//! assert!(state.is_empty());
//! # }
//! ```
//!
//! The handlers move into an inherent impl of the same type, where they
//! keep their documentation, attributes and visibility, and the trait impl
//! gets one-line methods of the trait's names that call them: `on_item_added`
//! above calls `added`. These take the handler's own parameter types, so
//! rustc compares the handler with the trait method, and report mistakes
//! where the handler is written: a handler for an event the service does not
//! declare is an error "method `on_item_renamed` is not a member of trait"
//! at the event type.
//!
//! The macro reports, all at once: use on anything but a trait impl; unknown
//! arguments; an event handler not of the form
//! `fn(&self, state, event: &Event)`; two handlers for the same event, rpc or
//! snapshot method; a `#[snapshot]` without a `#[snapshot_handler]` or the
//! other way round; two of these attributes on one method; `async` or
//! `unsafe` handlers.
//!
//! `#[event_sourced(crate = "path::to::cloudstate_sdk")]` is accepted for
//! crates that rename the SDK; the expansion does not name the SDK yet.
//!
//! # `#[value_entity]`
//!
//! The same for a generated value entity trait, whose methods are one per
//! rpc: `fn add_item(&self, request, ctx: &mut Context<'_, Self>) ->
//! CommandResult<Reply>`. Only `#[command_handler]` and
//! `#[command_handler(name = "AddItem")]` apply; `#[event_handler]`,
//! `#[snapshot]` and `#[snapshot_handler]` are errors, as are `async` and
//! `unsafe` handlers.
//!
//! # `#[crdt]`
//!
//! The same for a generated CRDT entity trait: `type State` (unless the
//! build fixed the CRDT type) and `initial_state` stay as written, and the
//! rpc methods take freely named `#[command_handler]` or
//! `#[command_handler(name = "Watch")]` methods. A unary rpc's handler is
//! `fn(&self, request, ctx: &mut Context<'_, Self>) -> CommandResult<Reply>`,
//! a server-streaming one's takes `&mut StreamContext<'_, '_, Self, Reply>`
//! and returns `Result<Option<Reply<Reply>>, Failure>`. `#[event_handler]`,
//! `#[snapshot]`, `#[snapshot_handler]`, `async` and `unsafe` handlers are
//! errors; an rpc without a handler is rustc's "not all trait items
//! implemented", naming the trait method.
//!
//! ```
//! # pub struct User { pub name: String }
//! # pub struct Online { pub connections: u64 }
//! # pub type CommandResult<T> = Result<T, String>;
//! mod presence {
//! #   use super::*;
//! #   pub struct Context<'a, T: Presence>(pub &'a mut T::State);
//!     pub trait Presence: Send + Sync + Sized + 'static {
//!         type State;
//!         fn initial_state(&self, entity_id: &str) -> Self::State;
//!         fn connect(&self, request: User, ctx: &mut Context<'_, Self>) -> CommandResult<Online>;
//!     }
//! }
//!
//! struct Presence;
//!
//! #[cloudstate_sdk::crdt]
//! impl presence::Presence for Presence {
//!     type State = u64;
//!
//!     fn initial_state(&self, _entity_id: &str) -> u64 {
//!         0
//!     }
//!
//!     #[command_handler(name = "Connect")]
//!     fn join(&self, _request: User, ctx: &mut presence::Context<'_, Self>) -> CommandResult<Online> {
//!         *ctx.0 += 1;
//!         Ok(Online { connections: *ctx.0 })
//!     }
//! }
//! # fn main() {
//! use presence::Presence as _;
//! let mut connections = 0;
//! let online = Presence.connect(User { name: "ann".into() }, &mut presence::Context(&mut connections));
//! assert_eq!(online.unwrap().connections, 1);
//! # }
//! ```
//!
//! # `#[action]`
//!
//! The same for a generated action trait, with one method per rpc: unary and
//! streamed-in rpcs return `impl Future<Output = ActionResult<T>> + Send`,
//! streamed-out and bidirectional ones a `BoxStream`. Only
//! `#[command_handler]` and `#[command_handler(name = "Hello")]` apply, and
//! handlers may be `async fn`: the trait method is then an `async fn` that
//! awaits the handler.
//!
//! ```
//! # pub struct Greet { pub name: String }
//! # pub struct Greeting { pub message: String }
//! # pub type ActionResult<T> = Result<T, String>;
//! # pub struct ActionContext;
//! mod greeter {
//! #   use super::*;
//!     pub trait Greeter: Send + Sync + Sized + 'static {
//!         fn hello(
//!             &self,
//!             request: Greet,
//!             ctx: ActionContext,
//!         ) -> impl Future<Output = ActionResult<Greeting>> + Send;
//!     }
//! }
//!
//! struct Greeter;
//!
//! #[cloudstate_sdk::action]
//! impl greeter::Greeter for Greeter {
//!     #[command_handler(name = "Hello")]
//!     async fn greet(&self, request: Greet, _ctx: ActionContext) -> ActionResult<Greeting> {
//!         Ok(Greeting { message: format!("Hello, {}!", request.name) })
//!     }
//! }
//! # fn main() {}
//! ```

mod attr;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

use attr::Kind;

/// Wires freely named handlers to the methods of a generated event-sourced
/// entity trait; see the [crate documentation](crate) for the attributes it
/// reads and what it generates.
#[proc_macro_attribute]
pub fn event_sourced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_as(Kind::EventSourced, args, item)
}

/// Wires freely named command handlers to the methods of a generated value
/// entity trait; see the [crate documentation](crate#value_entity).
#[proc_macro_attribute]
pub fn value_entity(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_as(Kind::ValueEntity, args, item)
}

/// Wires freely named command handlers to the methods of a generated CRDT
/// entity trait; see the [crate documentation](crate#crdt).
#[proc_macro_attribute]
pub fn crdt(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_as(Kind::Crdt, args, item)
}

/// Wires freely named handlers, `async fn` ones included, to the methods of
/// a generated action trait; see the [crate documentation](crate#action).
#[proc_macro_attribute]
pub fn action(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_as(Kind::Action, args, item)
}

/// The expansion of `kind`'s macro, with its errors appended.
fn expand_as(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let (mut output, result) = expand::expand(kind, args.into(), item.into());
    if let Err(errors) = result {
        output.extend(errors.into_compile_error());
    }
    output.into()
}
