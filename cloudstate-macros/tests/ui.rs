//! Compile tests of `#[event_sourced]`, `#[value_entity]`, `#[crdt]` and `#[action]`:
//! `tests/ui/pass` must build and run, `tests/ui/fail` must fail with the
//! committed `.stderr`. After a change to a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p cloudstate-macros --test ui` and read
//! every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
