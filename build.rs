//! Generates the brain.v1 messages, clients and servers into OUT_DIR, plus an
//! encoded descriptor set that the server registers for gRPC reflection.
//!
//! protoc comes from `protoc-bin-vendored`, so a fresh machine needs only cargo.

use std::{env, path::PathBuf};

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: &[&str] = &[
    "proto/brain/v1/admin.proto",
    "proto/brain/v1/errors.proto",
    "proto/brain/v1/image_facts.proto",
    "proto/brain/v1/orchestrator.proto",
    "proto/brain/v1/performance.proto",
    "proto/brain/v1/project.proto",
    "proto/brain/v1/project_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build's own rerun-if-changed emission misses new files, so
    // watch the whole proto tree ourselves.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe {
        env::set_var("PROTOC", &protoc);
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let protos: Vec<PathBuf> = PROTO_FILES.iter().map(PathBuf::from).collect();
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        // Default stubs (UNIMPLEMENTED, boxed streams) let the test stand-ins
        // implement only the RPC they fake; the server implements every RPC.
        .generate_default_stubs(true)
        // Image bytes are shared, not copied, on their way to the job queue.
        .bytes(".brain.v1.ImageInput.data")
        .file_descriptor_set_path(out_dir.join("brain_v1_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from(PROTO_ROOT), include])?;
    Ok(())
}
