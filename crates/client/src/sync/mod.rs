//! State synchronization over table segments: the shared state of reader groups, and a general
//! state synchronizer for applications.
