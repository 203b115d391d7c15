//! Procedural macros for Cloudstate user functions.
//!
//! Users reach these through `cloudstate_sdk`; the macros expand to plain
//! trait implementations and hold no logic of their own.

use proc_macro::TokenStream;

/// Wires handlers to a generated event-sourced entity trait.
#[proc_macro_attribute]
pub fn event_sourced(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
