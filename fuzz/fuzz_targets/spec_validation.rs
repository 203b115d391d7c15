//! The dev proxy's validation of a discovered `EntitySpec`: the input is the
//! spec's protobuf encoding (descriptors and entity list), as the user
//! function would send it. The model is built or refused with a reason; a
//! built one then compiles its HTTP rules as the proxy does at start-up, and
//! extracts entity keys from arbitrary request bytes.
#![no_main]

use std::time::Duration;

use cloudstate_devproxy::http::HttpRules;
use cloudstate_devproxy::model::Model;
use cloudstate_sdk::prost::Message as _;
use cloudstate_sdk::protocol::cloudstate::EntitySpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = EntitySpec::decode(data) else {
        return;
    };
    let model = match Model::build(spec, Duration::from_secs(30)) {
        Ok(model) => model,
        Err(problem) => {
            assert!(!problem.0.is_empty(), "a refusal says why");
            return;
        }
    };
    let mut served: Vec<&str> = model.services.keys().map(String::as_str).collect();
    served.sort_unstable();
    if let Err(problem) = HttpRules::new(&model.pool, &served) {
        assert!(!problem.is_empty(), "a refusal says why");
    }
    for method in model.methods_by_path.values() {
        let _ = method.entity_id(data);
        let _ = method.input_type_url();
    }
});
