//! Inputs the fuzz targets in `fuzz/` found crashing, fed through the same
//! entry points: each must now be refused with a reason.

use std::time::Duration;

use cloudstate_devproxy::model::Model;
use cloudstate_sdk::prost::Message as _;
use cloudstate_sdk::protocol::cloudstate as pb;

fn build(spec: pb::EntitySpec) -> Result<Model, String> {
    Model::build(spec, Duration::from_secs(30)).map_err(|e| e.0)
}

/// `spec_validation`: the value cart's discovered spec with its service file's
/// `syntax` changed to `proto1` made the descriptor decoder index past its
/// list of files and panic.
#[test]
fn a_spec_with_an_unknown_syntax_is_refused_not_a_panic() {
    let crash = include_bytes!("fuzz_regressions/spec-unknown-syntax.bin");
    let spec = pb::EntitySpec::decode(&crash[..]).expect("the input is a spec");
    let problem = build(spec).expect_err("refused");
    assert!(
        problem.contains("declares syntax [proto1]") && problem.contains("proto2 and proto3"),
        "{problem}"
    );
}

#[test]
fn every_syntax_but_proto2_and_proto3_is_refused_with_the_file_name() {
    for syntax in ["", "editions", "proto4"] {
        let set = prost_types::FileDescriptorSet {
            file: vec![prost_types::FileDescriptorProto {
                name: Some("odd.proto".into()),
                syntax: Some(syntax.into()),
                ..Default::default()
            }],
        };
        let spec = pb::EntitySpec {
            proto: set.encode_to_vec(),
            ..Default::default()
        };
        let problem = build(spec).expect_err("refused");
        assert!(
            problem.contains(&format!("file [odd.proto] declares syntax [{syntax}]")),
            "{problem}"
        );
    }
}
