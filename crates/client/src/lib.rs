//! The Pravaha client: an async (Tokio) library for applications, speaking Pravega's own
//! protocols (the Controller gRPC API and the segment protocol), so it works against Pravaha and
//! against Pravega alike.
//!
//! Layers, bottom up:
//! - [`config`]: how to reach the controller (URI, TLS, credentials, retries), built in code,
//!   from environment variables or from a TOML file;
//! - [`controller`]: the Controller gRPC API with retries and typed errors;
//! - [`admin`]: scopes and streams (create, list, update, scale, seal, truncate, delete);
//! - [`segment`]: one segment's append session and reads over the segment protocol;
//! - [`event`]: event writers (routing keys, successors, exactly-once) and transactions;
//! - [`sync`] and [`group`]: table-segment state in the official Rust client's format, and reader
//!   groups and readers on it (readers of both clients can share one group);
//! - [`byte`]: byte streams; [`table`]: Key-Value Tables;
//! - [`watermark`]: a stream's watermarks and a reader group's time window.
//!
//! Writing events to a new stream (reading them back takes a [`ReaderGroup`] and its
//! [`EventReader`]s; see `examples/consumer_group.rs`):
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
//! use pravaha_client::{ClientConfig, ClientFactory, StreamManager};
//!
//! // `PRAVAHA_CONTROLLER_URI` and friends, else a local `pravaha standalone`.
//! let config = ClientConfig::from_env()?;
//! let stream = ScopedStream::new("shop", "orders");
//! let manager = StreamManager::new(config.clone())?;
//! manager.create_scope(&stream.scope).await?;
//! manager.create_stream(&stream, &StreamConfiguration::fixed(3)).await?;
//!
//! let factory = ClientFactory::new(config)?;
//! let writer = factory.create_event_writer(stream).await?;
//! // Events with one routing key keep their order.
//! let acknowledged = writer.write_event(Some("customer-42"), "order 17").await?;
//! acknowledged.await?; // durable
//! writer.close().await?;
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod byte;
pub mod config;
pub mod controller;
pub mod event;
pub mod group;
pub mod locator;
pub mod segment;
pub mod sync;
pub mod table;
pub mod watermark;

pub use admin::StreamManager;
pub use byte::{ByteReader, ByteStreamError, ByteWriter};
pub use config::{ClientConfig, ConfigError};
pub use controller::{ControllerClient, ControllerError};
pub use event::{
    ClientFactory, EventWriter, EventWriterError, Transaction, TransactionalEventWriter,
};
pub use group::{Checkpoint, EventReader, ReadItem, ReaderGroup, ReaderGroupConfig};
pub use sync::Synchronizer;
pub use table::{KeyValueTable, TableError};
pub use watermark::{TimeWindow, TimeWindowTracker, Watermark, WatermarkError, WatermarkReader};
