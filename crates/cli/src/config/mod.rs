//! The servers' configuration: one typed [`Config`] built from the built-in defaults, a TOML
//! file, environment variables and flags, each source overriding the ones before it. Every key,
//! its environment variable and its default are listed in `docs/configuration.md`; the
//! reference file `config/pravaha.toml` holds every key at its default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use pravaha_controller::{AutoScaleConfig, ControllerConfig, SegmentStoreNode, SegmentStores};
use pravaha_segmentstore::ContainerConfig;
use pravaha_storage::log::LogConfig;
use serde::{Deserialize, Serialize};

mod sources;

pub use sources::*;

/// The config file format this binary reads (the file's `version` key).
pub const VERSION: u32 = 1;
/// Names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PRAVAHA_CONFIG";

/// The whole configuration of a `pravaha` server process (any role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The file format; only `1` exists.
    pub version: u32,
    /// Segment store logs (Tier-1) and, unless `segment_store.tier2_dir` is set, chunks.
    pub data_dir: PathBuf,
    /// Segment containers; fixed for the life of a data directory, the same in every role.
    pub containers: u32,
    /// Shared by the controller (signs delegation tokens) and segment stores (check them);
    /// `None` = auth off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_signing_key: Option<String>,
    pub segment_store: SegmentStoreSettings,
    pub controller: ControllerSettings,
}

/// `[segment_store]`: the segment protocol listener and the storage engine's knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentStoreSettings {
    pub listen: SocketAddr,
    /// Serve only these containers (others get `WrongHost`); `None` = all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_containers: Option<Vec<u32>>,
    /// Tier-2 chunk directory; `None` = `<data_dir>/tier2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier2_dir: Option<PathBuf>,
    pub cache_budget_bytes: u64,
    pub max_append_bytes: u64,
    pub max_unstored_bytes: u64,
    pub max_in_flight_bytes: u64,
    pub chunk_target_bytes: u64,
    pub chunk_max_age_ms: u64,
    pub flush_interval_ms: u64,
    pub checkpoint_log_bytes: u64,
    pub read_ahead_bytes: u64,
    pub log_max_file_bytes: u64,
    pub log_max_batch_bytes: u64,
    pub log_max_batch_delay_us: u64,
}

/// `[controller]`: listeners, background services and where the segment stores are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerSettings {
    pub grpc: SocketAddr,
    pub rest: SocketAddr,
    pub autoscale: bool,
    pub autoscale_interval_ms: u64,
    pub autoscale_cooldown_ms: u64,
    pub retention_interval_ms: u64,
    pub watermark_interval_ms: u64,
    pub transaction_sweep_interval_ms: u64,
    pub token_lifetime_secs: u64,
    /// Users and password digests in Pravega's format; every call must carry Basic credentials
    /// of one of them. `None` = no credentials checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Empty = one segment store at `segment_store.listen` owning every container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segment_stores: Vec<SegmentStoreEntry>,
}

/// `[[controller.segment_stores]]`: one segment store as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentStoreEntry {
    /// Where the controller connects.
    pub address: SocketAddr,
    /// The host given to clients; default: the address's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// The port given to clients; default: the address's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_port: Option<u16>,
    /// The containers it owns; `None` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<u32>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: VERSION,
            data_dir: PathBuf::from("pravaha-data"),
            containers: 4,
            token_signing_key: None,
            segment_store: SegmentStoreSettings::default(),
            controller: ControllerSettings::default(),
        }
    }
}

/// The engine's own defaults, so that the two cannot drift apart.
impl Default for SegmentStoreSettings {
    fn default() -> Self {
        let engine = ContainerConfig::default();
        let log = LogConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 12345)),
            owned_containers: None,
            tier2_dir: None,
            cache_budget_bytes: engine.cache_budget_bytes,
            max_append_bytes: engine.max_append_bytes,
            max_unstored_bytes: engine.max_unstored_bytes,
            max_in_flight_bytes: engine.max_in_flight_bytes,
            chunk_target_bytes: engine.chunk_target_bytes,
            chunk_max_age_ms: millis(engine.chunk_max_age),
            flush_interval_ms: millis(engine.flush_interval),
            checkpoint_log_bytes: engine.checkpoint_log_bytes,
            read_ahead_bytes: engine.read_ahead_bytes,
            log_max_file_bytes: log.max_file_bytes,
            log_max_batch_bytes: log.max_batch_bytes as u64,
            log_max_batch_delay_us: u64::try_from(log.max_batch_delay.as_micros())
                .unwrap_or(u64::MAX),
        }
    }
}

/// The controller's own defaults, so that the two cannot drift apart.
impl Default for ControllerSettings {
    fn default() -> Self {
        let any_store = SegmentStoreNode::all_containers(SocketAddr::from(([127, 0, 0, 1], 0)));
        let stores = SegmentStores::new(1, vec![any_store]).expect("one store owns everything");
        let controller = ControllerConfig::new(stores);
        let autoscale = AutoScaleConfig::default();
        Self {
            grpc: SocketAddr::from(([127, 0, 0, 1], pravaha_controller::DEFAULT_GRPC_PORT)),
            rest: SocketAddr::from(([127, 0, 0, 1], pravaha_controller::DEFAULT_REST_PORT)),
            autoscale: true,
            autoscale_interval_ms: millis(autoscale.interval),
            autoscale_cooldown_ms: millis(autoscale.cooldown),
            retention_interval_ms: millis(controller.retention_interval),
            watermark_interval_ms: millis(controller.watermark_interval),
            transaction_sweep_interval_ms: millis(controller.transaction_sweep_interval),
            token_lifetime_secs: controller.token_lifetime.as_secs(),
            password_file: None,
            segment_stores: Vec::new(),
        }
    }
}

impl Config {
    /// The segment stores the controller uses: the configured ones, or else one at
    /// `segment_store.listen` (loopback when that is a wildcard) owning every container.
    pub fn segment_stores(&self) -> anyhow::Result<SegmentStores> {
        let nodes = if self.controller.segment_stores.is_empty() {
            let mut address = self.segment_store.listen;
            if address.ip().is_unspecified() {
                address.set_ip(match address {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            vec![SegmentStoreNode::all_containers(address)]
        } else {
            self.controller
                .segment_stores
                .iter()
                .map(SegmentStoreEntry::node)
                .collect()
        };
        SegmentStores::new(self.containers, nodes).map_err(anyhow::Error::msg)
    }
}

impl SegmentStoreEntry {
    fn node(&self) -> SegmentStoreNode {
        let mut node = SegmentStoreNode::all_containers(self.address);
        if let Some(host) = &self.advertised_host {
            node.advertised_host.clone_from(host);
        }
        node.advertised_port = self.advertised_port.unwrap_or(node.advertised_port);
        node.containers = self
            .containers
            .as_ref()
            .map(|ids| ids.iter().copied().collect());
        node
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
