//! Every active namespace has a `default` ServiceAccount (kube's serviceaccounts-controller)
//! and a `kube-root-ca.crt` ConfigMap whose `ca.crt` is the cluster CA (kube's
//! root-ca-cert-publisher). One controller keyed by namespace watches namespaces and both
//! objects (by name), so a deleted or changed one is put back at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use skiff_workloads::Informers;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap carrying the cluster CA.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its key.
pub const ROOT_CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// kube's wording, so clients that show it see the same text.
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

struct Context {
    client: Client,
    root_ca_pem: String,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(
    informers: Informers,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = informers.client().clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let config_maps: Api<ConfigMap> = Api::all(client.clone());
    let by_namespace = |object: &ObjectMeta| {
        object
            .namespace
            .clone()
            .map(|namespace| ObjectRef::<Namespace>::new(&namespace))
    };
    let context = Arc::new(Context {
        client,
        root_ca_pem: config.root_ca_pem,
    });
    let stop = shutdown.clone();
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            accounts,
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
            move |account| by_namespace(&account.metadata),
        )
        .watches(
            config_maps,
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIG_MAP}")),
            move |map| by_namespace(&map.metadata),
        )
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "service account controller");
            }
        })
        .await;
    Ok(())
}

fn error_policy(namespace: Arc<Namespace>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(namespace = namespace.name_any(), %error, "ensuring the default service account and root CA");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action, Error> {
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    ensure_service_account(&context.client, &name).await?;
    ensure_root_ca(&context.client, &name, &context.root_ca_pem).await?;
    Ok(Action::await_change())
}

/// Creates `default` unless it exists (an existing one is left as it is).
async fn ensure_service_account(client: &Client, namespace: &str) -> Result<(), kube::Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    if accounts.get_opt(DEFAULT_SERVICE_ACCOUNT).await?.is_some() {
        return Ok(());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SERVICE_ACCOUNT.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    tolerate_create(accounts.create(&PostParams::default(), &account).await)
}

/// Creates `kube-root-ca.crt`, or puts back its data and description when they differ.
async fn ensure_root_ca(client: &Client, namespace: &str, pem: &str) -> Result<(), kube::Error> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let data = BTreeMap::from([(ROOT_CA_KEY.to_owned(), pem.to_owned())]);
    match maps.get_opt(ROOT_CA_CONFIG_MAP).await? {
        None => {
            let map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIG_MAP.to_owned()),
                    annotations: Some(BTreeMap::from([(
                        DESCRIPTION_ANNOTATION.to_owned(),
                        ROOT_CA_DESCRIPTION.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            tolerate_create(maps.create(&PostParams::default(), &map).await)
        }
        Some(mut map) => {
            let described = map
                .annotations()
                .get(DESCRIPTION_ANNOTATION)
                .is_some_and(|d| d == ROOT_CA_DESCRIPTION);
            if map.data.as_ref() == Some(&data) && described && map.binary_data.is_none() {
                return Ok(());
            }
            map.data = Some(data);
            map.binary_data = None;
            map.annotations_mut().insert(
                DESCRIPTION_ANNOTATION.to_owned(),
                ROOT_CA_DESCRIPTION.to_owned(),
            );
            // The replace carries the resourceVersion read: a concurrent change is a 409, and
            // the watch brings the namespace back here.
            match maps
                .replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &map)
                .await
            {
                Ok(_) => Ok(()),
                Err(error) if status_code(&error) == Some(409) => Ok(()),
                Err(error) if status_code(&error) == Some(404) => Ok(()),
                Err(error) => Err(error),
            }
        }
    }
}

/// A create that lost a race (409) or met a namespace being terminated (403) is not an error.
fn tolerate_create<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(error) if matches!(status_code(&error), Some(409 | 403 | 404)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The HTTP status of an API error.
pub(crate) fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
