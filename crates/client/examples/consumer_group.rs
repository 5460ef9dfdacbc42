//! Reads a stream with a reader group of two readers, each in its own task, until the stream is
//! sealed and read to its end (or until the given number of events has been read).
//!
//! ```sh
//! cargo run -p pravaha-client --example producer -- 1000
//! cargo run -p pravaha-client --example consumer_group -- 1000
//! ```
//! The group's state lives in the stream's scope in the format of Pravega's official Rust
//! client, so its readers could share this group with ours.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pravaha_client::controller::types::ScopedStream;
use pravaha_client::{ClientConfig, ControllerClient, ReaderGroup, ReaderGroupConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wanted: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let controller = ControllerClient::new(ClientConfig::from_env()?)?;
    let stream = ScopedStream::new("examples", "orders");
    let group = ReaderGroup::create(
        &controller,
        "examples",
        "billing",
        ReaderGroupConfig::new().stream(stream),
    )
    .await?;

    let read = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for id in ["reader-1", "reader-2"] {
        let mut reader = group.create_reader(id).await?;
        let read = read.clone();
        tasks.push(tokio::spawn(async move {
            while read.load(Ordering::SeqCst) < wanted {
                // Waiting is cancel-safe, so a reader with nothing to read looks up every half
                // second whether the group as a whole is done.
                let next = tokio::time::timeout(Duration::from_millis(500), reader.next_event());
                let Ok(next) = next.await else { continue };
                match next? {
                    Some(event) => {
                        read.fetch_add(1, Ordering::SeqCst);
                        println!(
                            "{id}: {} ({} @ {})",
                            String::from_utf8_lossy(&event.payload),
                            event.segment,
                            event.offset
                        );
                    }
                    None => break, // the stream is sealed and fully read
                }
            }
            // Going offline hands this reader's segments back at its positions.
            reader.close().await
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!("{} events read", read.load(Ordering::SeqCst));
    Ok(())
}
