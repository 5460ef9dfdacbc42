//! Compiles `proto/Controller.proto` into Rust without `protoc`.
//!
//! `protox` (a pure-Rust protobuf compiler) parses the file into a `FileDescriptorSet`, which
//! `tonic-prost-build` turns into prost messages plus the tonic server and client. The same set,
//! without source comments, is written next to the generated code so the library can embed it.

use std::error::Error;
use std::path::PathBuf;

use protox::prost::Message as _;

const PROTO_DIR: &str = "proto";
const PROTO_FILE: &str = "Controller.proto";
const DESCRIPTOR_FILE: &str = "controller_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}/{PROTO_FILE}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    // protox errors carry the file, line and column; show them as text, not as a Debug dump.
    let descriptors =
        protox::compile([PROTO_FILE], [PROTO_DIR]).map_err(|error| error.to_string())?;

    let mut embedded = descriptors.clone();
    for file in &mut embedded.file {
        file.source_code_info = None;
    }
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), embedded.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
