//! A hand-written stand-in for what `cloudstate-build` generates for the
//! value entity service `com.example.valuecart.ValueCart`: one trait method
//! per rpc. Tests include it with `#[path]`.

#![allow(dead_code, unused_imports, unreachable_pub)]

#[derive(Clone, Debug, PartialEq)]
pub struct AddLineItem {
    pub product_id: String,
    pub quantity: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GetCart;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Cart {
    pub items: Vec<(String, i32)>,
}

/// Stands in for `::cloudstate_sdk::CommandResult`.
pub type CommandResult<T> = Result<T, String>;

/// The service module.
pub mod value_cart {
    use super::{AddLineItem, Cart, CommandResult, GetCart};

    /// Stands in for the generated `Context<'a, T>`, an alias of the SDK's
    /// value entity context.
    pub struct Context<'a, T> {
        pub entity_id: &'a str,
        pub state: Cart,
        entity: ::core::marker::PhantomData<fn() -> T>,
    }

    impl<'a, T> Context<'a, T> {
        pub fn new(entity_id: &'a str) -> Self {
            Context {
                entity_id,
                state: Cart::default(),
                entity: ::core::marker::PhantomData,
            }
        }
    }

    /// The trait, in the shape `cloudstate-build` generates.
    pub trait ValueCart: Send + Sync + Sized + 'static {
        fn add_item(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()>;
        fn get_cart(&self, request: GetCart, ctx: &mut Context<'_, Self>) -> CommandResult<Cart>;
    }
}
