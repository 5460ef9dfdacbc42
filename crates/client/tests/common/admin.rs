//! Helpers shared by the administration and TLS tests: client configurations with quick
//! retries, bounded waits, free ports.

use std::net::SocketAddr;
use std::time::Duration;

use pravaha_client::config::{ClientConfig, RetryPolicy};
use pravaha_client::StreamManager;
use pravaha_controller::ListenConfig;

use super::{Standalone, TIMEOUT};

/// Quick retries, so that failing cases end fast.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        multiplier: 2.0,
        max_attempts,
    }
}

pub fn config(uri: &str) -> ClientConfig {
    ClientConfig::builder()
        .controller_uri(uri)
        .retry_policy(quick_retries(5))
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid configuration")
}

pub fn manager(standalone: &Standalone) -> StreamManager {
    StreamManager::new(config(&standalone.controller_uri())).expect("a stream manager")
}

/// Runs a test body with a bound on its duration.
pub async fn bounded<T>(body: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT * 2, body)
        .await
        .expect("the test finished in time")
}

/// A local port that nothing listens on (bound, then released).
pub fn unused_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn listen_on(grpc: SocketAddr) -> ListenConfig {
    ListenConfig {
        grpc,
        rest: "127.0.0.1:0".parse().unwrap(),
    }
}
