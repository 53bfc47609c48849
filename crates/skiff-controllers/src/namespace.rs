//! Namespace lifecycle (kube's namespace controller). A namespace marked for deletion (the
//! API server sets `deletionTimestamp` and phase `Terminating` and keeps `spec.finalizers:
//! [kubernetes]`) is emptied: every namespaced resource discovery reports with `list` and
//! `delete`/`deletecollection` is deleted (a collection delete where served, else one by one),
//! then listed again. While something is left (objects with finalizers, pods stopping) the
//! namespace is looked at again a moment later. Its `status.conditions` carry kube's five
//! deletion conditions with kube's reasons and messages. Once nothing is left, `kubernetes` is
//! removed from `spec.finalizers` through `PUT namespaces/<name>/finalize`, after which the API
//! server deletes the namespace (when `metadata.finalizers` is empty too).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::verbs;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_workloads::Informers;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::discovery::{Served, SharedCatalog};
use crate::serviceaccounts::status_code;

/// The finalizer (in `spec.finalizers`) this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// The condition types, in kube's order, with (reason when false, message when false, reason
/// when true).
const CONDITIONS: [(&str, &str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
        "DiscoveryFailed",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
        "GroupVersionParsingFailed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
        "ContentDeletionFailed",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
        "SomeResourcesRemain",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
        "SomeFinalizersRemain",
    ),
];

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

struct Context {
    client: Client,
    catalog: SharedCatalog,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(
    informers: Informers,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = informers.client().clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let context = Arc::new(Context {
        catalog: SharedCatalog::new(client.clone(), config.discovery_interval),
        client,
    });
    Controller::new(namespaces, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "namespace controller");
            }
        })
        .await;
    Ok(())
}

fn error_policy(namespace: Arc<Namespace>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(namespace = namespace.name_any(), %error, "deleting a namespace");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action, Error> {
    if namespace.metadata.deletion_timestamp.is_none() || !has_finalizer(&namespace) {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let progress = delete_content(&context, &name).await;
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    update_conditions(&namespaces, &namespace, &progress).await?;
    if progress.done() {
        finalize(&namespaces, &name).await?;
        return Ok(Action::await_change());
    }
    tracing::debug!(namespace = name, ?progress, "namespace content remains");
    // Objects with finalizers wait for someone else; plain leftovers go quickly.
    let wait = if progress.discovery_error.is_some() || !progress.failures.is_empty() {
        Duration::from_secs(5)
    } else if !progress.finalizers.is_empty() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(1)
    };
    Ok(Action::requeue(wait))
}

fn has_finalizer(namespace: &Namespace) -> bool {
    namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// How far emptying a namespace got in one pass.
#[derive(Debug, Default)]
struct Progress {
    discovery_error: Option<String>,
    /// Resources whose deletion failed, with why.
    failures: Vec<String>,
    /// Objects left per resource (`configmaps.`, `deployments.apps`).
    remaining: BTreeMap<String, usize>,
    /// Objects left per finalizer they carry.
    finalizers: BTreeMap<String, usize>,
}

impl Progress {
    fn done(&self) -> bool {
        self.discovery_error.is_none() && self.failures.is_empty() && self.remaining.is_empty()
    }

    /// kube's condition for each type: `None` when it is false (all well).
    fn failure(&self, condition: &str) -> Option<String> {
        match condition {
            "NamespaceDeletionDiscoveryFailure" => self
                .discovery_error
                .as_ref()
                .map(|error| format!("Discovery failed for some groups, 1 failing: {error}")),
            "NamespaceDeletionContentFailure" if !self.failures.is_empty() => Some(format!(
                "Failed to delete all resource types, {} remaining: {}",
                self.failures.len(),
                self.failures.join(", ")
            )),
            "NamespaceContentRemaining" if !self.remaining.is_empty() => Some(format!(
                "Some resources are remaining: {}",
                self.remaining
                    .iter()
                    .map(|(resource, n)| format!("{resource} has {n} resource instances"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "NamespaceFinalizersRemaining" if !self.finalizers.is_empty() => Some(format!(
                "Some content in the namespace has finalizers remaining: {}",
                self.finalizers
                    .iter()
                    .map(|(finalizer, n)| format!("{finalizer} in {n} resource instances"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        }
    }
}

/// Deletes what is in `namespace` and counts what is left.
async fn delete_content(context: &Context, namespace: &str) -> Progress {
    let mut progress = Progress::default();
    let catalog = match context.catalog.get().await {
        Ok(catalog) => catalog,
        Err(error) => {
            progress.discovery_error = Some(error.to_string());
            return progress;
        }
    };
    let deletable = catalog.preferred().into_iter().filter(|served| {
        served.namespaced()
            && served.supports(&[verbs::LIST])
            && (served.supports(&[verbs::DELETE]) || served.supports(&[verbs::DELETE_COLLECTION]))
    });
    let passes = deletable.map(|served| async move {
        let result = delete_resource(&context.client, namespace, &served).await;
        (served, result)
    });
    // A few resources at a time: enough to be quick, little enough not to flood the server.
    let mut passes = futures::stream::iter(passes).buffer_unordered(8);
    while let Some((served, result)) = passes.next().await {
        match result {
            Ok(left) => {
                if !left.is_empty() {
                    progress.remaining.insert(served.display(), left.len());
                }
                for object in &left {
                    for finalizer in object.finalizers() {
                        *progress.finalizers.entry(finalizer.clone()).or_default() += 1;
                    }
                }
            }
            Err(error) => progress
                .failures
                .push(format!("{}: {error}", served.display())),
        }
    }
    progress.failures.sort();
    progress
}

/// Deletes every object of one resource in `namespace`; returns those still there.
async fn delete_resource(
    client: &Client,
    namespace: &str,
    served: &Served,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &served.resource);
    let listed = api.list(&ListParams::default()).await?.items;
    if listed.is_empty() {
        return Ok(listed);
    }
    let options = DeleteParams::background();
    if served.supports(&[verbs::DELETE_COLLECTION]) {
        api.delete_collection(&options, &ListParams::default())
            .await?;
        return Ok(api.list(&ListParams::default()).await?.items);
    }
    let mut left = Vec::new();
    for object in listed {
        match api.delete(&object.name_any(), &options).await {
            // Marked for deletion, not gone (finalizers or a grace period).
            Ok(either) => {
                if let either::Either::Left(marked) = either {
                    left.push(marked);
                }
            }
            Err(error) if status_code(&error) == Some(404) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(left)
}

/// Writes the five deletion conditions; a condition that did not change keeps its
/// `lastTransitionTime`, and nothing is written when none changed.
async fn update_conditions(
    namespaces: &Api<Namespace>,
    namespace: &Namespace,
    progress: &Progress,
) -> Result<(), kube::Error> {
    let current = namespace
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut conditions: Vec<NamespaceCondition> = current
        .iter()
        .filter(|c| !CONDITIONS.iter().any(|(kind, ..)| *kind == c.type_))
        .cloned()
        .collect();
    let mut changed = false;
    for (kind, ok_reason, ok_message, failed_reason) in CONDITIONS {
        let (status, reason, message) = match progress.failure(kind) {
            Some(message) => ("True", failed_reason, message),
            None => ("False", ok_reason, ok_message.to_owned()),
        };
        let old = current.iter().find(|c| c.type_ == kind);
        let same = old.is_some_and(|old| {
            old.status == status
                && old.reason.as_deref() == Some(reason)
                && old.message.as_deref() == Some(message.as_str())
        });
        if same {
            conditions.extend(old.cloned());
            continue;
        }
        changed = true;
        conditions.push(NamespaceCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_transition_time: Some(now.clone()),
        });
    }
    if !changed {
        return Ok(());
    }
    let patch = json!({ "status": { "conditions": conditions } });
    match namespaces
        .patch_status(
            &namespace.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if status_code(&error) == Some(404) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes [`FINALIZER`] from `spec.finalizers` through the `finalize` subresource.
async fn finalize(namespaces: &Api<Namespace>, name: &str) -> Result<(), kube::Error> {
    let mut namespace = match namespaces.get_opt(name).await? {
        Some(namespace) => namespace,
        None => return Ok(()),
    };
    let finalizers: Vec<String> = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    namespace.spec.get_or_insert_default().finalizers = Some(finalizers.clone());
    match namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &namespace)
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if matches!(status_code(&error), Some(404 | 405)) => {
            // A server without the finalize subresource: write the finalizers on the
            // namespace itself (a server that keeps spec.finalizers on plain updates, as
            // kube's does, ignores this; one that does not lets the namespace go).
            let patch = json!({ "spec": { "finalizers": finalizers } });
            match namespaces
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(error) if status_code(&error) == Some(404) => Ok(()),
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}
