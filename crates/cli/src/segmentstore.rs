//! `pravaha segmentstore`: the segment store on its own (the controller finds it by
//! configuration). `pravaha standalone` runs it beside the controller.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use pravaha_segment_server::{SegmentServer, ServerConfig, TokenVerifier};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};
use pravaha_storage::chunk::ChunkStoreConfig;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::{Config, Flags};
use crate::CommonArgs;

/// Flags override environment variables, which override the config file (see
/// docs/configuration.md for every key).
#[derive(clap::Args)]
pub struct SegmentStoreArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Data directory: Tier-1 logs and, by default, Tier-2 chunks [key: data_dir] [env:
    /// PRAVAHA_DATA_DIR] [default: pravaha-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the segment protocol listener [key: segment_store.listen] [env:
    /// PRAVAHA_SEGMENT_STORE_LISTEN] [default: 127.0.0.1:12345]
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Serve only these containers (comma-separated ids); others get WrongHost [key:
    /// segment_store.owned_containers] [env: PRAVAHA_SEGMENT_STORE_OWNED_CONTAINERS] [default:
    /// all]
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    owned_containers: Option<Vec<u32>>,
}

pub fn run(args: SegmentStoreArgs, started: Instant) -> anyhow::Result<()> {
    let mut flags = Flags::default();
    flags.set("data_dir", "--data-dir", args.data_dir.as_ref());
    flags.set("segment_store.listen", "--listen", args.listen.as_ref());
    flags.set(
        "segment_store.owned_containers",
        "--owned-containers",
        args.owned_containers.as_ref(),
    );
    let config = args.common.load(flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(config, started));
    // `serve` returns after the containers closed their logs; idle blocking-pool threads need
    // not be waited for.
    runtime.shutdown_background();
    result
}

async fn serve(config: Config, started: Instant) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let mut server_config = server_config(&config);
    server_config.owned_containers = config
        .segment_store
        .owned_containers
        .as_ref()
        .map(|ids| ids.iter().copied().collect::<BTreeSet<u32>>());
    let server = SegmentServer::start(server_config, store.clone())
        .await
        .with_context(|| format!("listening on {}", config.segment_store.listen))?;
    let data_dir = config.data_dir.display();
    tracing::info!(address = %server.local_addr(), %data_dir, "segment store ready");
    eprintln!("segment store on {}", server.local_addr());
    let shutdown = ShutdownSignal::install()?;
    print_ready(started);
    shutdown.wait().await;
    eprintln!("shutting down");
    server.shutdown().await;
    // Everything accepted is made durable before the containers stop.
    store.shutdown().await;
    Ok(())
}

/// Recovers the containers in `data_dir` with the configured engine settings.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<SegmentStore> {
    let settings = &config.segment_store;
    let mut store_config = SegmentStoreConfig::new(&config.data_dir);
    store_config.container_count = config.containers;
    if let Some(tier2_dir) = &settings.tier2_dir {
        store_config.chunk_store = ChunkStoreConfig::filesystem(tier2_dir);
    }
    let engine = &mut store_config.container;
    engine.cache_budget_bytes = settings.cache_budget_bytes;
    engine.max_append_bytes = settings.max_append_bytes;
    engine.max_unstored_bytes = settings.max_unstored_bytes;
    engine.max_in_flight_bytes = settings.max_in_flight_bytes;
    engine.chunk_target_bytes = settings.chunk_target_bytes;
    engine.chunk_max_age = Duration::from_millis(settings.chunk_max_age_ms);
    engine.flush_interval = Duration::from_millis(settings.flush_interval_ms);
    engine.checkpoint_log_bytes = settings.checkpoint_log_bytes;
    engine.read_ahead_bytes = settings.read_ahead_bytes;
    engine.log.max_file_bytes = settings.log_max_file_bytes;
    engine.log.max_batch_bytes =
        usize::try_from(settings.log_max_batch_bytes).unwrap_or(usize::MAX);
    engine.log.max_batch_delay = Duration::from_micros(settings.log_max_batch_delay_us);
    SegmentStore::open(store_config)
        .await
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))
}

/// The listener at `segment_store.listen`, checking tokens when a signing key is set.
pub(crate) fn server_config(config: &Config) -> ServerConfig {
    let mut server_config = ServerConfig::new(config.segment_store.listen);
    server_config.auth = config
        .token_signing_key
        .as_ref()
        .map(|key| TokenVerifier::new(key.as_bytes()));
    server_config
}

/// The last line of a server's start-up: every listener is bound.
pub(crate) fn print_ready(started: Instant) {
    eprintln!("ready in {} ms", started.elapsed().as_millis());
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from creation on. Installed before "ready" is
/// printed: a signal sent as soon as a server says it is ready (a supervisor, a test) must
/// find the handler, not the default action that kills the process without a clean stop.
pub(crate) struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignal {
    pub(crate) fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal.
    pub(crate) async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
