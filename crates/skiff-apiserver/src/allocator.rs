//! Service cluster IPs and node ports. Each allocation is a key in the store
//! (`/registry/ranges/...`) created with create-if-absent, so concurrent creates — even on
//! several servers sharing one Postgres — never hand out the same address; deleting the
//! Service releases its keys.

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use skiff_store::{Error as StoreError, Store};

use crate::ApiError;
use crate::registry::Resource;

/// The service network (the `kubernetes` Service holds its first address).
const SERVICE_NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 43, 0, 0), 16);
/// kube-apiserver's default `--service-node-port-range`.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// Where allocations live: plain owner names, not API objects (the watch cache skips them).
pub(crate) const RANGES_PREFIX: &str = "/registry/ranges/";
const IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";
/// Random probes before giving up on a nearly full range.
const ATTEMPTS: usize = 64;

fn ip_key(ip: Ipv4Addr) -> String {
    format!("{IP_PREFIX}{ip}")
}

fn port_key(port: u16) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn in_network(ip: Ipv4Addr) -> bool {
    let (base, bits) = SERVICE_NETWORK;
    let mask = u32::MAX << (32 - bits);
    u32::from(ip) & mask == u32::from(base) & mask
}

fn random_u32() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Takes `key` for `owner`; false if someone has it.
async fn take(store: &Store, key: &str, owner: &str) -> Result<bool, ApiError> {
    match store.create(key, owner.to_owned()).await {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal(format!("storage error: {e}"))),
    }
}

/// Gives a new Service the cluster IP and node ports it needs (those it asks for by value
/// are reserved, or refused if taken). Returns the keys taken, to release if the create fails.
pub(crate) async fn allocate(
    store: &Store,
    resource: &Resource,
    service: &mut Value,
    owner: &str,
) -> Result<Vec<String>, ApiError> {
    let name = service["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut taken = Vec::new();
    let result = allocate_into(store, resource, service, owner, &name, &mut taken).await;
    if result.is_err() {
        release_keys(store, &taken).await;
    }
    result.map(|()| taken)
}

async fn allocate_into(
    store: &Store,
    resource: &Resource,
    service: &mut Value,
    owner: &str,
    name: &str,
    taken: &mut Vec<String>,
) -> Result<(), ApiError> {
    let requested = service["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !requested.is_empty() && requested != "None" {
        let ip: Ipv4Addr = requested.parse().map_err(|_| {
            ApiError::invalid(
                resource,
                name,
                "spec.clusterIP",
                &format!("Invalid value: {requested:?}: must be a valid IP address"),
            )
        })?;
        if !in_network(ip) {
            return Err(ApiError::invalid(
                resource,
                name,
                "spec.clusterIP",
                &format!(
                    "Invalid value: {requested:?}: provided IP is not in the valid range. The range of valid IPs is 10.43.0.0/16"
                ),
            ));
        }
        if !take(store, &ip_key(ip), owner).await? {
            return Err(ApiError::invalid(
                resource,
                name,
                "spec.clusterIP",
                &format!("Invalid value: {requested:?}: provided IP is already allocated"),
            ));
        }
        taken.push(ip_key(ip));
    } else if skiff_defaults::needs_cluster_ip(service) {
        let (base, bits) = SERVICE_NETWORK;
        let size = 1u32 << (32 - bits);
        let mut found = None;
        for _ in 0..ATTEMPTS {
            // Skip the network address, the `kubernetes` Service's and the broadcast address.
            let offset = 2 + random_u32() % (size - 3);
            let ip = Ipv4Addr::from(u32::from(base) + offset);
            if take(store, &ip_key(ip), owner).await? {
                found = Some(ip);
                break;
            }
        }
        let ip = found.ok_or_else(|| {
            ApiError::internal("failed to allocate a serviceIP: range is full".to_owned())
        })?;
        taken.push(ip_key(ip));
        service["spec"]["clusterIP"] = json!(ip.to_string());
        service["spec"]["clusterIPs"] = json!([ip.to_string()]);
    }
    let needs = skiff_defaults::needs_node_ports(service);
    let ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, port) in ports.iter().enumerate() {
        if let Some(wanted) = port["nodePort"].as_u64().filter(|p| *p != 0) {
            let Some(wanted) = u16::try_from(wanted)
                .ok()
                .filter(|p| NODE_PORTS.contains(p))
            else {
                return Err(ApiError::invalid(
                    resource,
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    &format!(
                        "Invalid value: {wanted}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                    ),
                ));
            };
            if !take(store, &port_key(wanted), owner).await? {
                return Err(ApiError::invalid(
                    resource,
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    &format!("Invalid value: {wanted}: provided port is already allocated"),
                ));
            }
            taken.push(port_key(wanted));
        } else if needs.contains(&i) {
            let span = u32::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
            let mut found = None;
            for _ in 0..ATTEMPTS {
                let candidate = NODE_PORTS.start() + (random_u32() % span) as u16;
                if take(store, &port_key(candidate), owner).await? {
                    found = Some(candidate);
                    break;
                }
            }
            let port = found.ok_or_else(|| {
                ApiError::internal("failed to allocate a nodePort: range is full".to_owned())
            })?;
            taken.push(port_key(port));
            service["spec"]["ports"][i]["nodePort"] = json!(port);
        }
    }
    Ok(())
}

/// Releases what a deleted Service held.
pub(crate) async fn release(store: &Store, service: &Value) {
    let mut keys = Vec::new();
    for ip in service["spec"]["clusterIPs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(ip) = ip.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
            keys.push(ip_key(ip));
        }
    }
    for port in service["spec"]["ports"].as_array().into_iter().flatten() {
        if let Some(port) = port["nodePort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
        {
            keys.push(port_key(port));
        }
    }
    release_keys(store, &keys).await;
}

async fn release_keys(store: &Store, keys: &[String]) {
    for key in keys {
        match store.delete(key, None).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(key, error = %e, "could not release a service allocation"),
        }
    }
}
