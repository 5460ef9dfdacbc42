//! Key-Value Tables: partitioned table segments with versioned, conditional updates.
