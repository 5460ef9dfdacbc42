//! Where segments live: which segment store owns each container, and the address clients are
//! told to use for it (`getURI`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// One segment store as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStoreNode {
    /// Where the controller connects.
    pub address: SocketAddr,
    /// The host clients are given (a DNS name when TLS is on).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// The containers it owns; `None` = all.
    pub containers: Option<BTreeSet<u32>>,
}

impl SegmentStoreNode {
    /// A node that owns every container and is advertised at its own address.
    pub fn all_containers(address: SocketAddr) -> Self {
        Self {
            address,
            advertised_host: address.ip().to_string(),
            advertised_port: address.port(),
            containers: None,
        }
    }
}

/// The segment stores of the cluster and the container count they share.
#[derive(Debug, Clone)]
pub struct SegmentStores {
    container_count: u32,
    nodes: Arc<Vec<SegmentStoreNode>>,
}

impl SegmentStores {
    /// Fails unless every container has exactly one owner.
    pub fn new(container_count: u32, nodes: Vec<SegmentStoreNode>) -> Result<Self, String> {
        if container_count == 0 {
            return Err("the container count must be at least 1".into());
        }
        for container in 0..container_count {
            let owners = nodes
                .iter()
                .filter(|n| n.containers.as_ref().is_none_or(|c| c.contains(&container)))
                .count();
            if owners != 1 {
                return Err(format!(
                    "container {container} has {owners} owners among the configured segment stores; it needs exactly one"
                ));
            }
        }
        Ok(Self {
            container_count,
            nodes: Arc::new(nodes),
        })
    }

    pub fn container_count(&self) -> u32 {
        self.container_count
    }

    /// The node that owns `segment`.
    pub fn locate(&self, segment: &str) -> &SegmentStoreNode {
        let container = pravaha_types::container_for_segment(segment, self.container_count).0;
        self.nodes
            .iter()
            .find(|n| n.containers.as_ref().is_none_or(|c| c.contains(&container)))
            .expect("every container has an owner (checked in new)")
    }
}
