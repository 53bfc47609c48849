//! The DaemonSet and StatefulSet controllers, built together over the shared informers (their
//! two kinds, nodes, claims, revisions and pods), and their run loop.

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::runtime::reflector::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::daemonset::DaemonSetController;
use crate::informer::{Informer, Informers};
use crate::statefulset::StatefulSetController;

/// The two controllers and the stores they wait for.
pub struct AppsControllers {
    daemonsets: Arc<DaemonSetController>,
    statefulsets: Arc<StatefulSetController>,
    /// Each informer's first list.
    listed: Vec<BoxFuture<'static, ()>>,
    shutdown: CancellationToken,
}

impl AppsControllers {
    /// Builds both controllers, registering their handlers on the shared informers.
    pub fn new(
        informers: &Informers,
        pods: &Informer<Pod>,
        shutdown: CancellationToken,
    ) -> AppsControllers {
        let client = informers.client().clone();
        let daemonsets = informers.all::<DaemonSet>();
        let statefulsets = informers.all::<StatefulSet>();
        let revisions = informers.all::<ControllerRevision>();
        let nodes = informers.all::<Node>();
        let claims = informers.all::<PersistentVolumeClaim>();
        let daemonset_controller = DaemonSetController::new(
            client.clone(),
            &daemonsets,
            &revisions,
            pods,
            &nodes,
            shutdown.clone(),
        );
        let statefulset_controller = StatefulSetController::new(
            client,
            &statefulsets,
            &revisions,
            pods,
            &claims,
            shutdown.clone(),
        );
        AppsControllers {
            daemonsets: daemonset_controller,
            statefulsets: statefulset_controller,
            listed: vec![
                listed(daemonsets.store(), &shutdown),
                listed(statefulsets.store(), &shutdown),
                listed(revisions.store(), &shutdown),
                listed(nodes.store(), &shutdown),
                listed(claims.store(), &shutdown),
                listed(pods.store(), &shutdown),
            ],
            shutdown,
        }
    }

    /// Once the informers have listed, runs both controllers until shutdown.
    pub async fn run(self) {
        tokio::select! {
            () = self.shutdown.cancelled() => return,
            _ = futures::future::join_all(self.listed) => {}
        }
        tokio::join!(
            self.daemonsets.run(crate::WORKERS),
            self.statefulsets.run(crate::WORKERS),
        );
    }
}

fn listed<K>(store: Store<K>, shutdown: &CancellationToken) -> BoxFuture<'static, ()>
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let shutdown = shutdown.clone();
    Box::pin(async move { crate::wait_ready(&store, &shutdown).await })
}
