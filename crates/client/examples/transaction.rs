//! Writes a batch of events atomically: all become visible at the commit, or none (abort).
//!
//! ```sh
//! cargo run -p pravaha-client --example transaction
//! ```

use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
use pravaha_client::{ClientConfig, ClientFactory, StreamManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ClientConfig::from_env()?;
    let stream = ScopedStream::new("examples", "ledger");
    let manager = StreamManager::new(config.clone())?;
    manager.create_scope(&stream.scope).await?;
    manager
        .create_stream(&stream, &StreamConfiguration::fixed(2))
        .await?;

    let factory = ClientFactory::new(config)?;
    let writer = factory.create_transactional_writer(stream.clone());

    let mut transfer = writer.begin().await?;
    let debit = transfer.write_event(Some("alice"), "debit 10").await?;
    let credit = transfer.write_event(Some("bob"), "credit 10").await?;
    // Durable inside the transaction, still invisible to readers.
    debit.await?;
    credit.await?;
    transfer.commit(None).await?;
    println!("transaction {} committed", transfer.id());

    let mut mistake = writer.begin().await?;
    let unwanted = mistake.write_event(Some("alice"), "debit 1000000").await?;
    unwanted.await?;
    mistake.abort().await?;
    println!(
        "transaction {} aborted: its event is never read",
        mistake.id()
    );
    Ok(())
}
