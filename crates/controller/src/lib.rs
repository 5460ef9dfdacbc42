//! The controller: Pravega's control plane. It keeps scopes, streams and their epochs in a table
//! segment on the segment store (reached through the segment protocol, also in standalone),
//! creates, seals, truncates and deletes segments there, and runs scaling as a workflow that a
//! restarted controller completes.
//!
//! - [`model`]: the metadata records and the pure rules over them.
//! - [`Controller`]: the operations, shared by the gRPC and REST front ends.
//! - [`readergroups`], [`subscribers`], [`kvtables`]: reader groups, the subscribers that hold
//!   back truncation, and Java Key-Value Tables, with their records.

pub mod auth;
mod autoscale;
mod core;
mod directory;
mod error;
mod grpc;
mod grpc_groups;
pub mod kvtables;
mod metadata;
pub mod model;
pub mod readergroups;
mod rest;
pub mod retention;
mod server;
pub mod subscribers;
mod txn;
pub mod watermarks;

pub use crate::core::{Controller, ControllerConfig, ScaleStarted, ScaleStatus, ScalingEvent};
pub use autoscale::{start_autoscaler, AutoScaleConfig, AutoScaleStats, AutoScaler};
pub use directory::{SegmentStoreNode, SegmentStores};
pub use error::ControllerError;
pub use metadata::METADATA_TABLE;
pub use server::{ControllerServer, ListenConfig, DEFAULT_GRPC_PORT, DEFAULT_REST_PORT};
pub use txn::{PingOutcome, TxnRecord, TxnStatus, MAX_LEASE_MS};
