//! Event streams: writers (routing keys, successors, exactly-once), transactions, reader groups
//! and readers.
