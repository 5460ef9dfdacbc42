//! Key-Value Tables (Pravega's Java API): a table is `partition_count` table segments
//! (`<scope>/<table>_kvtable/<n>.#epoch.0`) created through the controller
//! ([`ControllerClient::create_key_value_table`](crate::controller::ControllerClient::create_key_value_table)).
//! Keys are a fixed-length primary key plus a fixed-length secondary key; the primary key is
//! hashed to a partition exactly as Pravega's clients hash it
//! ([`pravaha_types::key_value_table_partition`]), so Pravega's clients and this one find the
//! same entries.
//!
//! - [`KeyValueTable`]: get, put, put-if-absent, conditional replace and removal by
//!   [`Version`] (the entry's offset in its segment), atomic updates of one key family;
//! - [`EntryIterator`] / [`KeyIterator`]: every entry or key, partition after partition, in
//!   pages resumable from an [`IteratorPosition`];
//! - [`TableError`]: typed outcomes (bad version, missing key, missing table, invalid key).
//!
//! This module speaks the segment protocol's table commands; it does not know events, streams
//! or reader groups.

mod client;
mod iterator;
mod types;

pub use client::KeyValueTable;
pub use iterator::{EntryIterator, IteratorPosition, KeyIterator};
pub use types::{
    KeyValueTableConfiguration, KeyValueTableInfo, TableEntry, TableError, TableKey,
    TableModification, Version,
};
