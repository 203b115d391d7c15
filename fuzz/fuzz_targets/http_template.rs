//! The dev proxy's `google.api.http` path template parser and matcher:
//! `template NUL path`. Any template must parse or be refused with a reason,
//! and a parsed one must match or not match any path, with one value per
//! variable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [template, path] = cloudstate_fuzz::fields::<2>(data);
    let (Ok(template), Ok(path)) = (std::str::from_utf8(template), std::str::from_utf8(path))
    else {
        return;
    };
    match cloudstate_devproxy::http::fuzzing::path_template(template, path) {
        Ok(_) => {}
        Err(reason) => assert!(!reason.is_empty(), "a refusal says why"),
    }
});
