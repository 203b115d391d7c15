//! Interoperability tooling for Cloudstate user functions.
//!
//! * [`recorder`]: a gRPC pass-through that sits between a proxy (the
//!   official one, or `cloudstate-devproxy`) and a user function, forwards
//!   every call and records every message both ways, as the official TCK
//!   observes a user function.

pub mod recorder;

pub use recorder::Recorder;
