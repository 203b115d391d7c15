//! A hand-written stand-in for what `cloudstate-build` generates for the
//! event-sourced service `com.example.shoppingcart.ShoppingCart`: messages in
//! the package module, the entity trait in the service module
//! `shopping_cart`. Tests include it with `#[path]`, so that they do not
//! depend on generated code.

#![allow(dead_code, unused_imports, unreachable_pub)]

/// The events, in a module of their own as a proto package would put them.
pub mod persistence {
    #[derive(Clone, Debug, PartialEq)]
    pub struct ItemAdded {
        pub product_id: String,
        pub quantity: i32,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub struct ItemRemoved {
        pub product_id: String,
    }

    /// Not an event of the service.
    #[derive(Clone, Debug, PartialEq)]
    pub struct ItemRenamed {
        pub product_id: String,
    }
}

pub use persistence::{ItemAdded, ItemRemoved, ItemRenamed};

#[derive(Clone, Debug, PartialEq)]
pub struct LineItem {
    pub product_id: String,
    pub quantity: i32,
}

/// The snapshot type.
#[derive(Clone, Debug, PartialEq)]
pub struct Cart {
    pub items: Vec<LineItem>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AddLineItem {
    pub product_id: String,
    pub quantity: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GetShoppingCart;

/// Stands in for `::cloudstate_sdk::CommandResult`.
pub type CommandResult<T> = Result<T, String>;

/// The service module.
pub mod shopping_cart {
    use super::{AddLineItem, Cart, CommandResult, GetShoppingCart, ItemAdded, ItemRemoved};

    /// Stands in for the generated `Context<'a, T>`, an alias of the SDK's
    /// command context.
    pub struct Context<'a, T> {
        pub entity_id: &'a str,
        entity: ::core::marker::PhantomData<fn() -> T>,
    }

    impl<'a, T> Context<'a, T> {
        pub fn new(entity_id: &'a str) -> Self {
            Context {
                entity_id,
                entity: ::core::marker::PhantomData,
            }
        }
    }

    /// The trait, in the shape `cloudstate-build` generates.
    pub trait ShoppingCart: Send + Sync + Sized + 'static {
        type State: Send + 'static;
        fn initial_state(&self, entity_id: &str) -> Self::State;
        fn on_item_added(&self, state: &mut Self::State, event: &ItemAdded);
        fn on_item_removed(&self, state: &mut Self::State, event: &ItemRemoved);
        fn snapshot(&self, state: &Self::State) -> Cart;
        fn restore(&self, entity_id: &str, snapshot: Cart) -> Self::State;
        fn add_item(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()>;
        fn get_cart(
            &self,
            request: GetShoppingCart,
            ctx: &mut Context<'_, Self>,
        ) -> CommandResult<Cart>;
    }
}
