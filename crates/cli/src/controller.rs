//! `pravaha controller`: the controller on its own, finding its segment stores by
//! configuration, and `pravaha standalone`: a segment store and a controller in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use pravaha_controller::{
    start_autoscaler, AutoScaleConfig, AutoScaler, Controller, ControllerConfig, ControllerServer,
    ListenConfig, SegmentStoreNode, SegmentStores,
};
use pravaha_segment_server::SegmentServer;

use crate::config::{parse_store_spec, Config, Flags, SegmentStoreEntry};
use crate::segmentstore::{open_store, print_ready, server_config, ShutdownSignal};
use crate::CommonArgs;

/// Flags override environment variables, which override the config file (see
/// docs/configuration.md for every key).
#[derive(clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    listeners: ListenerArgs,
    /// A segment store, repeatable: ADDRESS[@HOST[:PORT]][/IDS], e.g.
    /// 10.0.0.5:12345@store-1.example.com/0,1 connects to 10.0.0.5:12345, tells clients
    /// store-1.example.com:12345 and owns containers 0 and 1 [key: controller.segment_stores]
    /// [env: PRAVAHA_CONTROLLER_SEGMENT_STORES, space-separated] [default: one at
    /// segment_store.listen owning every container]
    #[arg(long = "segment-store", value_name = "SPEC", value_parser = parse_store_spec)]
    segment_stores: Vec<SegmentStoreEntry>,
}

/// Flags override environment variables, which override the config file (see
/// docs/configuration.md for every key).
#[derive(clap::Args)]
pub struct StandaloneArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    listeners: ListenerArgs,
    /// Data directory: segment store logs and chunks [key: data_dir] [env: PRAVAHA_DATA_DIR]
    /// [default: pravaha-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the segment protocol listener [key: segment_store.listen] [env:
    /// PRAVAHA_SEGMENT_STORE_LISTEN] [default: 127.0.0.1:12345]
    #[arg(long, value_name = "IP:PORT")]
    segment_store: Option<SocketAddr>,
}

/// The controller's own flags.
#[derive(clap::Args)]
struct ListenerArgs {
    /// Address of the gRPC listener (Pravega's Controller API) [key: controller.grpc] [env:
    /// PRAVAHA_CONTROLLER_GRPC] [default: 127.0.0.1:9090]
    #[arg(long, value_name = "IP:PORT")]
    grpc: Option<SocketAddr>,
    /// Address of the REST listener (Pravega's admin API) [key: controller.rest] [env:
    /// PRAVAHA_CONTROLLER_REST] [default: 127.0.0.1:9091]
    #[arg(long, value_name = "IP:PORT")]
    rest: Option<SocketAddr>,
    /// Scale streams by their load [key: controller.autoscale] [env:
    /// PRAVAHA_CONTROLLER_AUTOSCALE] [default: true]
    #[arg(long, value_name = "BOOL")]
    autoscale: Option<bool>,
}

impl ListenerArgs {
    fn flags(&self) -> Flags {
        let mut flags = Flags::default();
        flags.set("controller.grpc", "--grpc", self.grpc.as_ref());
        flags.set("controller.rest", "--rest", self.rest.as_ref());
        flags.set(
            "controller.autoscale",
            "--autoscale",
            self.autoscale.as_ref(),
        );
        flags
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run_controller(args: ControllerArgs, started: Instant) -> anyhow::Result<()> {
    let mut flags = args.listeners.flags();
    let stores = (!args.segment_stores.is_empty()).then_some(&args.segment_stores);
    flags.set("controller.segment_stores", "--segment-store", stores);
    let config = args.common.load(flags)?;
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let stores = config.segment_stores()?;
        let controller = Controller::start(controller_config(&config, stores)?)
            .await
            .with_context(|| format!("reaching the segment stores {}", store_list(&config)))?;
        let services = Services::start(&config, controller).await?;
        let shutdown = ShutdownSignal::install()?;
        print_ready(started);
        shutdown.wait().await;
        eprintln!("shutting down");
        services.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_background();
    result
}

pub fn run_standalone(args: StandaloneArgs, started: Instant) -> anyhow::Result<()> {
    let mut flags = args.listeners.flags();
    flags.set("data_dir", "--data-dir", args.data_dir.as_ref());
    flags.set(
        "segment_store.listen",
        "--segment-store",
        args.segment_store.as_ref(),
    );
    let config = args.common.load(flags)?;
    warn_ignored(&config);
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let store = open_store(&config).await?;
        let segment_server = SegmentServer::start(server_config(&config), store.clone())
            .await
            .with_context(|| format!("listening on {}", config.segment_store.listen))?;
        eprintln!("segment store on {}", segment_server.local_addr());
        let node = SegmentStoreNode::all_containers(segment_server.local_addr());
        let stores =
            SegmentStores::new(config.containers, vec![node]).map_err(anyhow::Error::msg)?;
        let controller = Controller::start(controller_config(&config, stores)?).await?;
        let services = Services::start(&config, controller).await?;
        let shutdown = ShutdownSignal::install()?;
        print_ready(started);
        shutdown.wait().await;
        eprintln!("shutting down");
        services.shutdown().await;
        segment_server.shutdown().await;
        // Everything acknowledged is durable before the containers stop.
        store.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_background();
    result
}

/// Standalone serves every container from its own segment store.
fn warn_ignored(config: &Config) {
    if config.segment_store.owned_containers.is_some() {
        tracing::warn!(
            "standalone serves every container: ignoring segment_store.owned_containers"
        );
    }
    if !config.controller.segment_stores.is_empty() {
        tracing::warn!("standalone uses its own segment store: ignoring controller.segment_stores");
    }
}

fn controller_config(config: &Config, stores: SegmentStores) -> anyhow::Result<ControllerConfig> {
    let settings = &config.controller;
    let mut controller_config = ControllerConfig::new(stores);
    if let Some(path) = &settings.password_file {
        let users = pravaha_controller::auth::Users::load(path)?;
        if config.token_signing_key.is_none() {
            tracing::warn!(
                "controller.password_file is set but token_signing_key is not: the controller \
                 checks credentials, the segment stores check nothing"
            );
        }
        eprintln!(
            "controller credentials: {} user(s) from {}",
            users.len(),
            path.display()
        );
        controller_config.users = Some(std::sync::Arc::new(users));
    }
    controller_config.token_signing_key = config.token_signing_key.clone().map(String::into_bytes);
    controller_config.token_lifetime = Duration::from_secs(settings.token_lifetime_secs);
    controller_config.retention_interval = Duration::from_millis(settings.retention_interval_ms);
    controller_config.watermark_interval = Duration::from_millis(settings.watermark_interval_ms);
    controller_config.transaction_sweep_interval =
        Duration::from_millis(settings.transaction_sweep_interval_ms);
    Ok(controller_config)
}

fn store_list(config: &Config) -> String {
    if config.controller.segment_stores.is_empty() {
        return config.segment_store.listen.to_string();
    }
    let addresses: Vec<String> = config
        .controller
        .segment_stores
        .iter()
        .map(|store| store.address.to_string())
        .collect();
    addresses.join(", ")
}

/// The controller's listeners and its optional auto-scaler.
struct Services {
    server: ControllerServer,
    autoscaler: Option<AutoScaler>,
}

impl Services {
    async fn start(config: &Config, controller: Controller) -> anyhow::Result<Self> {
        let settings = &config.controller;
        let autoscaler = settings.autoscale.then(|| {
            let autoscale = AutoScaleConfig {
                interval: Duration::from_millis(settings.autoscale_interval_ms),
                cooldown: Duration::from_millis(settings.autoscale_cooldown_ms),
                ..AutoScaleConfig::default()
            };
            start_autoscaler(controller.clone(), autoscale)
        });
        let listen = ListenConfig {
            grpc: settings.grpc,
            rest: settings.rest,
        };
        let server = ControllerServer::start(controller, &listen)
            .await
            .with_context(|| format!("listening on {} and {}", listen.grpc, listen.rest))?;
        eprintln!("controller gRPC on {}", server.grpc_addr());
        eprintln!("controller REST on {}", server.rest_addr());
        Ok(Self { server, autoscaler })
    }

    async fn shutdown(self) {
        if let Some(autoscaler) = self.autoscaler {
            autoscaler.stop().await;
        }
        self.server.shutdown().await;
    }
}
