//! `pravaha segmentstore`: the segment store on its own (the controller finds it by
//! configuration). `pravaha standalone` will run it beside the controller.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use pravaha_segment_server::{SegmentServer, ServerConfig, TokenVerifier};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};

#[derive(clap::Args)]
pub struct SegmentStoreArgs {
    /// Data directory (Tier-1 logs and, by default, Tier-2 chunks).
    #[arg(long, default_value = "pravaha-data")]
    data_dir: PathBuf,
    /// Address of the segment protocol listener.
    #[arg(long, default_value = "127.0.0.1:12345")]
    listen: SocketAddr,
    /// Number of segment containers; fixed for the life of the data directory.
    #[arg(long, default_value_t = 4)]
    containers: u32,
    /// Serve only these containers (comma-separated ids); others get WrongHost. Default: all.
    #[arg(long, value_delimiter = ',')]
    owned_containers: Option<Vec<u32>>,
    /// Check delegation tokens signed with this key (shared with the controller). Default: off.
    #[arg(long)]
    token_signing_key: Option<String>,
}

pub fn run(args: SegmentStoreArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(args));
    // `serve` returns after the containers closed their logs; idle blocking-pool threads need
    // not be waited for.
    runtime.shutdown_background();
    result
}

async fn serve(args: SegmentStoreArgs) -> anyhow::Result<()> {
    let mut store_config = SegmentStoreConfig::new(&args.data_dir);
    store_config.container_count = args.containers;
    let store = SegmentStore::open(store_config)
        .await
        .with_context(|| format!("opening the data directory {}", args.data_dir.display()))?;
    let mut config = ServerConfig::new(args.listen);
    config.owned_containers = args
        .owned_containers
        .map(|ids| ids.into_iter().collect::<BTreeSet<u32>>());
    config.auth = args
        .token_signing_key
        .map(|key| TokenVerifier::new(key.as_bytes()));
    let server = SegmentServer::start(config, store.clone())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(address = %server.local_addr(), data_dir = %args.data_dir.display(), "segment store ready");
    eprintln!("segment store listening on {}", server.local_addr());
    shutdown_signal().await?;
    eprintln!("shutting down");
    server.shutdown().await;
    // Everything accepted is made durable before the containers stop.
    store.shutdown().await;
    Ok(())
}

pub(crate) async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
