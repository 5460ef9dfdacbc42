//! Byte streams: a single-segment stream written and read as bytes (seek, truncate, tail).
