//! The SDK's entity stream driver fed a request body of framed `*StreamIn`
//! messages (valid, mutated or garbage), raw bytes and chunk splits, for the
//! event-sourced, value-entity and CRDT protocols (format:
//! `cloudstate_fuzz::StreamInput`). A panic outside entity code, a broken
//! stream contract or a hang is a finding; a `Failure` is an answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cloudstate_fuzz::record_panics();
    let input = cloudstate_fuzz::StreamInput::parse(data);
    cloudstate_fuzz::run_stream(&input);
    cloudstate_fuzz::check_panics();
});
