//! Compiles the Cloudstate protocol protos without `protoc`: protox parses them
//! into a descriptor set that tonic-prost-build turns into Rust.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "cloudstate/entity.proto",
    "cloudstate/event_sourced.proto",
    "cloudstate/value_entity.proto",
    "cloudstate/action.proto",
    "cloudstate/crdt.proto",
    "cloudstate/entity_key.proto",
    "cloudstate/legacy_entity_key.proto",
    "cloudstate/eventing.proto",
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/api/httpbody.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(p).display());
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "rustc".into());
    println!("cargo:rustc-env=CLOUDSTATE_RUSTC_VERSION={version}");

    let fds = protox::compile(PROTOS, [&proto_dir])?;

    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    config.include_file("protocol.rs");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Small per-call buffers: see src/codec.rs.
        .codec_path("crate::codec::ProtocolCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
