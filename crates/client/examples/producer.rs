//! Writes keyed events to a stream (creating the scope and stream first).
//!
//! ```sh
//! pravaha standalone &
//! cargo run -p pravaha-client --example producer -- 1000
//! ```
//! The controller is taken from `PRAVAHA_CONTROLLER_URI` (default `tcp://127.0.0.1:9090`).

use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
use pravaha_client::{ClientConfig, ClientFactory, StreamManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let config = ClientConfig::from_env()?;
    let stream = ScopedStream::new("examples", "orders");

    let manager = StreamManager::new(config.clone())?;
    manager.create_scope(&stream.scope).await?;
    manager
        .create_stream(&stream, &StreamConfiguration::fixed(3))
        .await?;

    let factory = ClientFactory::new(config)?;
    let writer = factory.create_event_writer(stream.clone()).await?;
    let mut acknowledgements = Vec::with_capacity(count);
    for i in 0..count {
        // Events of one customer keep their order; customers spread over the segments.
        let customer = format!("customer-{}", i % 10);
        let event = format!("order {i} of {customer}");
        acknowledgements.push(writer.write_event(Some(&customer), event).await?);
    }
    for acknowledgement in acknowledgements {
        acknowledgement.await?;
    }
    writer.close().await?;
    println!("{count} events durable in {stream}");
    Ok(())
}
