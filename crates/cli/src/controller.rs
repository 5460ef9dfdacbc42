//! `pravaha controller`: the controller on its own, finding its segment store by configuration,
//! and `pravaha standalone`: a segment store and a controller in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use pravaha_controller::{
    start_autoscaler, AutoScaleConfig, Controller, ControllerConfig, ControllerServer,
    ListenConfig, SegmentStoreNode, SegmentStores,
};
use pravaha_segment_server::{SegmentServer, ServerConfig};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// Address of the gRPC listener (Pravega's Controller API).
    #[arg(long, default_value = "127.0.0.1:9090")]
    grpc: SocketAddr,
    /// Address of the REST listener (Pravega's admin API).
    #[arg(long, default_value = "127.0.0.1:9091")]
    rest: SocketAddr,
    /// The segment store (it owns every container).
    #[arg(long, default_value = "127.0.0.1:12345")]
    segment_store: SocketAddr,
    /// The segment store's container count.
    #[arg(long, default_value_t = 4)]
    containers: u32,
    /// Sign delegation tokens with this key (shared with the segment store). Default: auth off.
    #[arg(long)]
    token_signing_key: Option<String>,
}

#[derive(clap::Args)]
pub struct StandaloneArgs {
    /// Data directory (segment store logs and chunks).
    #[arg(long, default_value = "pravaha-data")]
    data_dir: PathBuf,
    /// Address of the segment protocol listener.
    #[arg(long, default_value = "127.0.0.1:12345")]
    segment_store: SocketAddr,
    /// Address of the gRPC listener.
    #[arg(long, default_value = "127.0.0.1:9090")]
    grpc: SocketAddr,
    /// Address of the REST listener.
    #[arg(long, default_value = "127.0.0.1:9091")]
    rest: SocketAddr,
    /// Number of segment containers; fixed for the life of the data directory.
    #[arg(long, default_value_t = 4)]
    containers: u32,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run_controller(args: ControllerArgs) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let stores = SegmentStores::new(
            args.containers,
            vec![SegmentStoreNode::all_containers(args.segment_store)],
        )
        .map_err(anyhow::Error::msg)?;
        let mut config = ControllerConfig::new(stores);
        config.token_signing_key = args.token_signing_key.map(String::into_bytes);
        let controller = Controller::start(config)
            .await
            .with_context(|| format!("reaching the segment store at {}", args.segment_store))?;
        let listen = ListenConfig {
            grpc: args.grpc,
            rest: args.rest,
        };
        let autoscaler = start_autoscaler(controller.clone(), AutoScaleConfig::default());
        let server = ControllerServer::start(controller, &listen).await?;
        eprintln!(
            "controller gRPC on {}, REST on {}",
            server.grpc_addr(),
            server.rest_addr()
        );
        crate::segmentstore::shutdown_signal().await?;
        eprintln!("shutting down");
        autoscaler.stop().await;
        server.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_background();
    result
}

pub fn run_standalone(args: StandaloneArgs) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let mut store_config = SegmentStoreConfig::new(&args.data_dir);
        store_config.container_count = args.containers;
        let store = SegmentStore::open(store_config)
            .await
            .with_context(|| format!("opening the data directory {}", args.data_dir.display()))?;
        let segment_server =
            SegmentServer::start(ServerConfig::new(args.segment_store), store.clone())
                .await
                .with_context(|| format!("listening on {}", args.segment_store))?;
        let stores = SegmentStores::new(
            args.containers,
            vec![SegmentStoreNode::all_containers(
                segment_server.local_addr(),
            )],
        )
        .map_err(anyhow::Error::msg)?;
        let controller = Controller::start(ControllerConfig::new(stores)).await?;
        let autoscaler = start_autoscaler(controller.clone(), AutoScaleConfig::default());
        let listen = ListenConfig {
            grpc: args.grpc,
            rest: args.rest,
        };
        let server = ControllerServer::start(controller, &listen).await?;
        eprintln!("segment store on {}", segment_server.local_addr());
        eprintln!("controller gRPC on {}", server.grpc_addr());
        eprintln!("controller REST on {}", server.rest_addr());
        crate::segmentstore::shutdown_signal().await?;
        eprintln!("shutting down");
        autoscaler.stop().await;
        server.shutdown().await;
        segment_server.shutdown().await;
        // Everything acknowledged is durable before the containers stop.
        store.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_background();
    result
}
