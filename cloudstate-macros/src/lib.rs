//! Procedural macros for Cloudstate user functions.
//!
//! Users reach these through `cloudstate_sdk`; the macros expand to calls into
//! the SDK's hidden `__private` module and hold no logic of their own.
