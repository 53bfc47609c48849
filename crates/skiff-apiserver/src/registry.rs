//! The kinds the API serves, as data. The list of types comes from k8s-openapi (so only what
//! the Kubernetes version built with has is served, with its group, version, kind, plural and
//! scope); verbs, subresources, short names and categories come from
//! `data/builtin-resources.tsv`, facts extracted from the upstream API definitions. Routing,
//! discovery and (later) OpenAPI, Tables and field selectors all read this one table.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api;

/// A served resource of one group-version.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The URL segment, e.g. `pods`.
    pub plural: &'static str,
    /// The lower-case kind, e.g. `pod`.
    pub singular: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
    /// For custom resources: what the CustomResourceDefinition says beyond the above.
    pub custom: Option<Arc<Custom>>,
}

/// What a CustomResourceDefinition adds to a served version.
#[derive(Debug, Clone, PartialEq)]
pub struct Custom {
    /// The version objects are stored as (other served versions are the same object with
    /// another `apiVersion`: conversion strategy None).
    pub storage_version: String,
    /// `additionalPrinterColumns`, for Tables.
    pub printer_columns: Vec<skiff_table::PrinterColumn>,
    /// The `scale` subresource's paths, if it has one.
    pub scale: Option<ScalePaths>,
    /// The version's `openAPIV3Schema`.
    pub schema: Option<serde_json::Value>,
}

/// Where a custom resource keeps what its `scale` subresource shows (`.spec.replicas`-style
/// paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// A subresource (`pods/status`, `deployments/scale`) and what it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    pub name: String,
    pub verbs: Vec<String>,
    /// Group, version and kind of the object the subresource takes and returns.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

impl Resource {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Scope as a constant, for k8s-openapi's scope marker types.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// What k8s-openapi knows of one type.
struct TypeFacts {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

fn facts<T>() -> TypeFacts
where
    T: k8s_openapi::Resource,
    T::Scope: Scope,
{
    TypeFacts {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        plural: T::URL_PATH_SEGMENT,
        namespaced: <T::Scope as Scope>::NAMESPACED,
    }
}

/// Every built-in type served, in discovery order (groups appear in the order of their first
/// type, like kube-apiserver's group priorities; within a group-version, by type).
fn builtin_types() -> Vec<TypeFacts> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    vec![
        facts::<api::core::v1::Binding>(),
        facts::<api::core::v1::ComponentStatus>(),
        facts::<api::core::v1::ConfigMap>(),
        facts::<api::core::v1::Endpoints>(),
        facts::<api::core::v1::Event>(),
        facts::<api::core::v1::LimitRange>(),
        facts::<api::core::v1::Namespace>(),
        facts::<api::core::v1::Node>(),
        facts::<api::core::v1::PersistentVolumeClaim>(),
        facts::<api::core::v1::PersistentVolume>(),
        facts::<api::core::v1::Pod>(),
        facts::<api::core::v1::PodTemplate>(),
        facts::<api::core::v1::ReplicationController>(),
        facts::<api::core::v1::ResourceQuota>(),
        facts::<api::core::v1::Secret>(),
        facts::<api::core::v1::ServiceAccount>(),
        facts::<api::core::v1::Service>(),
        facts::<apiregistration::APIService>(),
        facts::<api::apps::v1::ControllerRevision>(),
        facts::<api::apps::v1::DaemonSet>(),
        facts::<api::apps::v1::Deployment>(),
        facts::<api::apps::v1::ReplicaSet>(),
        facts::<api::apps::v1::StatefulSet>(),
        facts::<api::events::v1::Event>(),
        facts::<api::authentication::v1::SelfSubjectReview>(),
        facts::<api::authentication::v1::TokenReview>(),
        facts::<api::authorization::v1::LocalSubjectAccessReview>(),
        facts::<api::authorization::v1::SelfSubjectAccessReview>(),
        facts::<api::authorization::v1::SelfSubjectRulesReview>(),
        facts::<api::authorization::v1::SubjectAccessReview>(),
        facts::<api::autoscaling::v2::HorizontalPodAutoscaler>(),
        facts::<api::autoscaling::v1::HorizontalPodAutoscaler>(),
        facts::<api::batch::v1::CronJob>(),
        facts::<api::batch::v1::Job>(),
        facts::<api::certificates::v1::CertificateSigningRequest>(),
        facts::<api::networking::v1::IngressClass>(),
        facts::<api::networking::v1::Ingress>(),
        facts::<api::networking::v1::IPAddress>(),
        facts::<api::networking::v1::NetworkPolicy>(),
        facts::<api::networking::v1::ServiceCIDR>(),
        facts::<api::policy::v1::PodDisruptionBudget>(),
        facts::<api::rbac::v1::ClusterRoleBinding>(),
        facts::<api::rbac::v1::ClusterRole>(),
        facts::<api::rbac::v1::RoleBinding>(),
        facts::<api::rbac::v1::Role>(),
        facts::<api::storage::v1::CSIDriver>(),
        facts::<api::storage::v1::CSINode>(),
        facts::<api::storage::v1::CSIStorageCapacity>(),
        facts::<api::storage::v1::StorageClass>(),
        facts::<api::storage::v1::VolumeAttachment>(),
        facts::<api::admissionregistration::v1::MutatingWebhookConfiguration>(),
        facts::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(),
        facts::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
        facts::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(),
        facts::<apiextensions::CustomResourceDefinition>(),
        facts::<api::scheduling::v1::PriorityClass>(),
        facts::<api::coordination::v1::Lease>(),
        facts::<api::node::v1::RuntimeClass>(),
        facts::<api::discovery::v1::EndpointSlice>(),
        facts::<api::flowcontrol::v1::FlowSchema>(),
        facts::<api::flowcontrol::v1::PriorityLevelConfiguration>(),
    ]
}

const BUILTIN_TSV: &str = include_str!("../data/builtin-resources.tsv");

/// The object a subresource takes and returns, when it is not the parent's kind.
fn subresource_kind(name: &str, parent: &TypeFacts) -> (&'static str, &'static str, &'static str) {
    match name {
        "scale" => ("autoscaling", "v1", "Scale"),
        "eviction" => ("policy", "v1", "Eviction"),
        "binding" => ("", "v1", "Binding"),
        "token" => ("authentication.k8s.io", "v1", "TokenRequest"),
        "exec" => ("", "v1", "PodExecOptions"),
        "attach" => ("", "v1", "PodAttachOptions"),
        "portforward" => ("", "v1", "PodPortForwardOptions"),
        "proxy" => ("", "v1", proxy_options(parent.kind)),
        _ => (parent.group, parent.version, parent.kind),
    }
}

fn proxy_options(kind: &str) -> &'static str {
    match kind {
        "Node" => "NodeProxyOptions",
        "Service" => "ServiceProxyOptions",
        _ => "PodProxyOptions",
    }
}

fn list(field: &str, separator: char) -> Vec<String> {
    field
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The served resources, grouped and ordered for discovery.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<Resource>,
}

impl Registry {
    /// The built-in kinds. Panics only if the bundled table lacks a type k8s-openapi has,
    /// which the unit tests rule out.
    pub fn builtin() -> Registry {
        let mut rows: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
        for line in BUILTIN_TSV.lines().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() >= 9 {
                rows.insert((fields[0], fields[1], fields[2]), fields);
            }
        }
        let resources = builtin_types()
            .into_iter()
            .map(|t| {
                let row = rows
                    .get(&(t.group, t.version, t.plural))
                    .unwrap_or_else(|| {
                        panic!(
                            "builtin-resources.tsv has no row for {}/{} {}",
                            t.group, t.version, t.plural
                        )
                    });
                let subresources = list(row[6], ';')
                    .into_iter()
                    .filter_map(|entry| {
                        let (name, verbs) = entry.split_once(':')?;
                        let (group, version, kind) = subresource_kind(name, &t);
                        Some(Subresource {
                            name: name.to_owned(),
                            verbs: list(verbs, ','),
                            group,
                            version,
                            kind,
                        })
                    })
                    .collect();
                Resource {
                    group: t.group,
                    version: t.version,
                    kind: t.kind,
                    plural: t.plural,
                    singular: t.kind.to_lowercase(),
                    namespaced: t.namespaced,
                    verbs: list(row[5], ','),
                    short_names: list(row[7], ','),
                    categories: list(row[8], ','),
                    subresources,
                    custom: None,
                }
            })
            .collect();
        Registry { resources }
    }

    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// This registry with `extra` resources (custom resources) served too, after the
    /// built-in ones.
    pub fn extended(&self, extra: Vec<Resource>) -> Registry {
        let mut resources = self.resources.clone();
        resources.extend(extra);
        Registry { resources }
    }

    /// The resource of `plural` in a group-version.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Named groups (not the core group) in discovery order, each with its versions, the
    /// preferred one first.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
                Some(_) => {}
                None => groups.push((r.group, vec![r.version])),
            }
        }
        groups
    }

    /// The resources of one group-version, in registry order.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_finds_its_row_and_core_kinds_look_right() {
        let registry = Registry::builtin();
        let pods = registry
            .resources()
            .iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        assert_eq!((pods.group, pods.version, pods.kind), ("", "v1", "Pod"));
        assert!(pods.namespaced);
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.categories, ["all"]);
        assert!(pods.verbs.contains(&"watch".to_owned()));
        let eviction = pods
            .subresources
            .iter()
            .find(|s| s.name == "eviction")
            .unwrap();
        assert_eq!((eviction.group, eviction.kind), ("policy", "Eviction"));
        let status = pods
            .subresources
            .iter()
            .find(|s| s.name == "status")
            .unwrap();
        assert_eq!(status.kind, "Pod");

        let ns = registry
            .resources()
            .iter()
            .find(|r| r.plural == "namespaces")
            .unwrap();
        assert!(!ns.namespaced);
        let deploy = registry
            .resources()
            .iter()
            .find(|r| r.plural == "deployments")
            .unwrap();
        let scale = deploy
            .subresources
            .iter()
            .find(|s| s.name == "scale")
            .unwrap();
        assert_eq!(
            (scale.group, scale.version, scale.kind),
            ("autoscaling", "v1", "Scale")
        );
    }

    #[test]
    fn groups_list_preferred_versions_first() {
        let registry = Registry::builtin();
        let groups = registry.groups();
        assert_eq!(groups[0].0, "apiregistration.k8s.io");
        let autoscaling = groups.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, ["v2", "v1"]);
        assert!(groups.iter().all(|(g, _)| !g.is_empty()));
        assert!(groups.iter().any(|(g, _)| *g == "apiextensions.k8s.io"));
        assert_eq!(registry.in_group_version("apps", "v1").count(), 5);
    }
}
