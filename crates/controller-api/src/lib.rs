//! Pravega's Controller gRPC API: the messages and the `ControllerService` server and client.
//!
//! This crate owns `proto/Controller.proto`, a definition of the API that is wire-identical to
//! Pravega's (package `io.pravega.controller.stream.api.grpc.v1`), and the Rust code generated
//! from it at build time by `protox` and `tonic-prost-build`, so no `protoc` is needed. Message
//! and field names follow the upstream definition, so the generated types carry the same Rust
//! names as those of the official `pravega-controller-client` crate.
//!
//! It knows nothing of how the controller works: no state, no I/O beyond what tonic generates.
//! The controller implements [`ControllerService`]; clients and tests use
//! [`ControllerServiceClient`]. The API is described in `docs/formats/controller-grpc.md`.

/// Generated code for package `io.pravega.controller.stream.api.grpc.v1`.
///
/// The code is lint-clean with the pinned tonic and prost; clippy is silenced here only so that a
/// generator upgrade cannot fail the deny-warnings build on code we do not write. Deprecated items
/// (`CreateTxnRequest::scale_grace_period`, `ping_txn_status::Status::ScaleGraceTimeExceeded`)
/// still warn where they are used.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("io.pravega.controller.stream.api.grpc.v1");
}

pub use v1::controller_service_client::ControllerServiceClient;
pub use v1::controller_service_server::{ControllerService, ControllerServiceServer};

/// The fully qualified gRPC service name; method paths are `/{SERVICE_NAME}/{rpc}`.
pub const SERVICE_NAME: &str = "io.pravega.controller.stream.api.grpc.v1.ControllerService";

/// The port Pravega's controller serves gRPC on by default.
pub const DEFAULT_PORT: u16 = 9090;

/// The compiled `Controller.proto` as an encoded `google.protobuf.FileDescriptorSet`, without
/// source comments; for gRPC server reflection and for tests that inspect the API.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/controller_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_matches_the_generated_server() {
        assert_eq!(SERVICE_NAME, v1::controller_service_server::SERVICE_NAME);
    }
}
