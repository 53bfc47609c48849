//! EndpointSlices (upstream's `pkg/controller/endpointslice`): the `discovery.k8s.io/v1`
//! slices of a Service with a selector, written from the [`Backend`]s the endpoints
//! controller computes (see [`crate::endpoints`], which drives both).
//!
//! Each slice is `IPv4`, named `<service>-<random>` (`generateName`), labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (plus the Service's labels), owned by the Service (so the
//! garbage collector removes it with the Service), and holds at most
//! [`MAX_ENDPOINTS_PER_SLICE`] endpoints that share one set of ports. Endpoints carry the
//! `ready`, `serving` and `terminating` conditions, `nodeName`, `zone` and a `targetRef`;
//! terminating pods stay listed (not ready). A Service without endpoints keeps one empty
//! placeholder slice, as upstream does. Existing slices are reused where their ports match,
//! rewritten only when their content differs, and deleted when no longer needed.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use skiff_workloads::util::controller_ref;

use crate::endpoints::{Backend, BackendPort, derived_labels, publishes_not_ready};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// One slice's content: its ports and endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceContent {
    /// The ports (`None` for the placeholder and for Services without ports).
    pub ports: Option<Vec<EndpointPort>>,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// The slices a Service should have: endpoints grouped by their ports, at most
/// [`MAX_ENDPOINTS_PER_SLICE`] a slice; one empty placeholder when there are none.
pub fn desired_slices(service: &Service, backends: &[Backend]) -> Vec<SliceContent> {
    let mut groups: BTreeMap<Vec<BackendPort>, Vec<Endpoint>> = BTreeMap::new();
    let publish = publishes_not_ready(service);
    for backend in backends {
        let serving = backend.serving;
        let ready = publish || (serving && !backend.terminating);
        groups
            .entry(backend.ports.clone())
            .or_default()
            .push(Endpoint {
                addresses: vec![backend.ip.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    serving: Some(serving),
                    terminating: Some(backend.terminating),
                }),
                hostname: backend.hostname.clone(),
                node_name: backend.node_name.clone(),
                zone: backend.zone.clone(),
                target_ref: Some(backend.target.clone()),
                ..Endpoint::default()
            });
    }
    let mut slices = Vec::new();
    for (ports, endpoints) in groups {
        let ports = (!ports.is_empty()).then(|| {
            ports
                .into_iter()
                .map(|p| EndpointPort {
                    name: Some(p.name),
                    port: Some(p.port),
                    protocol: Some(p.protocol),
                    app_protocol: p.app_protocol,
                })
                .collect::<Vec<_>>()
        });
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push(SliceContent {
                ports: ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if slices.is_empty() {
        slices.push(SliceContent {
            ports: None,
            endpoints: Vec::new(),
        });
    }
    slices
}

/// Brings the Service's slices in line with its backends.
pub async fn reconcile(client: &Client, service: &Service, backends: &[Backend]) -> Result<()> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
    // Read from the API, not a cache: a slice this controller just created must be seen, or a
    // second one would be created for the same endpoints.
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={CONTROLLER_NAME}");
    let mut existing: Vec<EndpointSlice> = api
        .list(&ListParams::default().labels(&selector))
        .await
        .context("listing endpoint slices")?
        .items;
    existing.sort_by_key(|slice| slice.name_any());
    let mut labels = derived_labels(service);
    labels.insert(SERVICE_NAME_LABEL.to_owned(), name.clone());
    labels.insert(MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned());
    let owner = controller_ref(service);

    let mut unmatched = Vec::new();
    // First keep the slices that are exactly right, then rewrite others with the same ports.
    for wanted in desired_slices(service, backends) {
        let exact = existing
            .iter()
            .position(|s| content_of(s) == wanted && s.metadata.labels.as_ref() == Some(&labels));
        match exact {
            Some(index) => {
                existing.remove(index);
            }
            None => unmatched.push(wanted),
        }
    }
    for wanted in unmatched {
        let reusable = existing
            .iter()
            .position(|s| content_of(s).ports == wanted.ports && s.address_type == "IPv4");
        match reusable {
            Some(index) => {
                let mut slice = existing.remove(index);
                slice.metadata.labels = Some(labels.clone());
                slice.ports = wanted.ports;
                slice.endpoints = wanted.endpoints;
                api.replace(&slice.name_any(), &PostParams::default(), &slice)
                    .await
                    .with_context(|| format!("updating endpoint slice {}", slice.name_any()))?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(namespace.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..ObjectMeta::default()
                    },
                    address_type: "IPv4".to_owned(),
                    endpoints: wanted.endpoints,
                    ports: wanted.ports,
                };
                api.create(&PostParams::default(), &slice)
                    .await
                    .with_context(|| format!("creating an endpoint slice for {name}"))?;
            }
        }
    }
    for stale in existing {
        match api
            .delete(&stale.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("deleting endpoint slice {}", stale.name_any()));
            }
        }
    }
    Ok(())
}

/// A stored slice's content, in the form [`desired_slices`] produces.
fn content_of(slice: &EndpointSlice) -> SliceContent {
    SliceContent {
        ports: slice.ports.clone().filter(|p| !p.is_empty()),
        endpoints: slice.endpoints.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectReference, ServiceSpec};

    fn backend(i: usize, ports: &[(&str, i32)], serving: bool, terminating: bool) -> Backend {
        Backend {
            ip: format!("10.244.0.{i}"),
            target: ObjectReference {
                kind: Some("Pod".into()),
                name: Some(format!("p{i}")),
                ..ObjectReference::default()
            },
            node_name: Some("n".into()),
            zone: None,
            hostname: None,
            serving,
            terminating,
            ports: ports
                .iter()
                .map(|(name, port)| BackendPort {
                    name: (*name).into(),
                    port: *port,
                    protocol: "TCP".into(),
                    app_protocol: None,
                })
                .collect(),
        }
    }

    #[test]
    fn slices_group_by_ports_and_hold_at_most_a_hundred() {
        let service = Service::default();
        let mut backends: Vec<Backend> = (0..150)
            .map(|i| backend(i, &[("http", 80)], true, false))
            .collect();
        backends.push(backend(200, &[("http", 8080)], false, false));
        backends.push(backend(201, &[("http", 80)], true, true));
        let slices = desired_slices(&service, &backends);
        let sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 51, 1]);
        let terminating = slices[1]
            .endpoints
            .last()
            .unwrap()
            .conditions
            .clone()
            .unwrap();
        assert_eq!(
            (
                terminating.ready,
                terminating.serving,
                terminating.terminating
            ),
            (Some(false), Some(true), Some(true))
        );
        let unready = slices[2].endpoints[0].conditions.clone().unwrap();
        assert_eq!((unready.ready, unready.serving), (Some(false), Some(false)));
        assert_eq!(slices[2].ports.as_ref().unwrap()[0].port, Some(8080));
    }

    #[test]
    fn no_endpoints_leaves_a_placeholder_and_publishing_marks_all_ready() {
        let mut service = Service::default();
        let placeholder = desired_slices(&service, &[]);
        assert_eq!(placeholder.len(), 1);
        assert!(placeholder[0].endpoints.is_empty() && placeholder[0].ports.is_none());
        service.spec = Some(ServiceSpec {
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        });
        let slices = desired_slices(&service, &[backend(1, &[], false, true)]);
        let conditions = slices[0].endpoints[0].conditions.clone().unwrap();
        assert_eq!(conditions.ready, Some(true));
    }
}
