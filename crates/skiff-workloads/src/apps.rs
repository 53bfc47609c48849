//! The DaemonSet and StatefulSet controllers' informers (nodes, claims, revisions and the two
//! kinds; pods are shared with the other controllers) and their run loop.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::daemonset::DaemonSetController;
use crate::informer::Informer;
use crate::statefulset::StatefulSetController;

/// The two controllers and the informers only they use.
pub struct AppsControllers {
    daemonsets: Arc<DaemonSetController>,
    statefulsets: Arc<StatefulSetController>,
    daemonset_informer: Informer<DaemonSet>,
    statefulset_informer: Informer<StatefulSet>,
    revision_informer: Informer<ControllerRevision>,
    node_informer: Informer<Node>,
    claim_informer: Informer<PersistentVolumeClaim>,
    pods: Store<Pod>,
    shutdown: CancellationToken,
}

impl AppsControllers {
    /// Builds both controllers, registering their pod handlers on the shared `pods` informer.
    pub fn new(
        client: Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> AppsControllers {
        let mut daemonsets = Informer::new(Api::<DaemonSet>::all(client.clone()));
        let mut statefulsets = Informer::new(Api::<StatefulSet>::all(client.clone()));
        let mut revisions = Informer::new(Api::<ControllerRevision>::all(client.clone()));
        let mut nodes = Informer::new(Api::<Node>::all(client.clone()));
        let mut claims = Informer::new(Api::<PersistentVolumeClaim>::all(client.clone()));
        let daemonset_controller = DaemonSetController::new(
            client.clone(),
            &mut daemonsets,
            &mut revisions,
            pods,
            &mut nodes,
            shutdown.clone(),
        );
        let statefulset_controller = StatefulSetController::new(
            client,
            &mut statefulsets,
            &mut revisions,
            pods,
            &mut claims,
            shutdown.clone(),
        );
        AppsControllers {
            daemonsets: daemonset_controller,
            statefulsets: statefulset_controller,
            daemonset_informer: daemonsets,
            statefulset_informer: statefulsets,
            revision_informer: revisions,
            node_informer: nodes,
            claim_informer: claims,
            pods: pods.store(),
            shutdown,
        }
    }

    /// Runs the informers and, once they (and the shared pod informer) have listed, both
    /// controllers until shutdown.
    pub async fn run(self) {
        let daemonsets = self.daemonset_informer;
        let statefulsets = self.statefulset_informer;
        let revisions = self.revision_informer;
        let nodes = self.node_informer;
        let claims = self.claim_informer;
        let stores = (
            daemonsets.store(),
            statefulsets.store(),
            revisions.store(),
            nodes.store(),
            claims.store(),
        );
        let shutdown = self.shutdown;
        let informers = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::join!(
                    daemonsets.run(shutdown.clone()),
                    statefulsets.run(shutdown.clone()),
                    revisions.run(shutdown.clone()),
                    nodes.run(shutdown.clone()),
                    claims.run(shutdown),
                );
            }
        });
        crate::wait_ready(&stores.0, &shutdown).await;
        crate::wait_ready(&stores.1, &shutdown).await;
        crate::wait_ready(&stores.2, &shutdown).await;
        crate::wait_ready(&stores.3, &shutdown).await;
        crate::wait_ready(&stores.4, &shutdown).await;
        crate::wait_ready(&self.pods, &shutdown).await;
        tokio::join!(
            self.daemonsets.run(crate::WORKERS),
            self.statefulsets.run(crate::WORKERS),
        );
        if let Err(error) = informers.await {
            tracing::warn!(%error, "apps informers ended abnormally");
        }
    }
}
