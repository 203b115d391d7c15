//! Compiles `proto/bench.proto` without `protoc`: protox parses it (with the
//! SDK's protocol protos it imports) and tonic-prost-build generates the echo
//! service, whose messages are the SDK's own generated protocol types.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("proto");
    let sdk_protos = manifest.join("../cloudstate-sdk/proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        sdk_protos.join("cloudstate/event_sourced.proto").display()
    );

    let fds = protox::compile(["bench.proto"], [&proto_dir, &sdk_protos])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".cloudstate", "::cloudstate_sdk::protocol::cloudstate")
        .compile_fds(fds)?;
    Ok(())
}
