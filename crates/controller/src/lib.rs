//! The controller: Pravega's control plane. It keeps scopes, streams and their epochs in a table
//! segment on the segment store (reached through the segment protocol, also in standalone),
//! creates, seals, truncates and deletes segments there, and runs scaling as a workflow that a
//! restarted controller completes.
//!
//! - [`model`]: the metadata records and the pure rules over them.
//! - [`Controller`]: the operations, shared by the gRPC and REST front ends.

mod core;
mod directory;
mod error;
mod grpc;
mod metadata;
pub mod model;
mod rest;
mod server;
mod txn;

pub use crate::core::{Controller, ControllerConfig, ScaleStarted, ScaleStatus, ScalingEvent};
pub use directory::{SegmentStoreNode, SegmentStores};
pub use error::ControllerError;
pub use metadata::METADATA_TABLE;
pub use server::{ControllerServer, ListenConfig, DEFAULT_GRPC_PORT, DEFAULT_REST_PORT};
pub use txn::{PingOutcome, TxnRecord, TxnStatus, MAX_LEASE_MS};
