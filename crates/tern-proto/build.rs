//! Compiles `proto/tern.proto` (at the repository root) into Rust types in
//! `OUT_DIR`, included by `src/pb.rs`. Pure Rust: protox parses the schema
//! into a descriptor set, prost-build generates the code; no `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let schema = root.join("tern.proto");
    println!("cargo:rerun-if-changed={}", schema.display());
    let descriptors = protox::compile([&schema], [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
