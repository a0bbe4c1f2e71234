//! Compiles the wire schema in `proto/spamflow/v1` into Rust with prost. The `.proto` files are
//! parsed by protox (a Rust protobuf compiler), so no `protoc` has to be installed.

use std::path::PathBuf;

/// The schema files, relative to the `proto/` include root.
const FILES: [&str; 5] = [
    "spamflow/v1/common.proto",
    "spamflow/v1/inbound.proto",
    "spamflow/v1/labeled.proto",
    "spamflow/v1/dead_letter.proto",
    "spamflow/v1/feedback.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(FILES, [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
