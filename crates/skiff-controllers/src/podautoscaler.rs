//! The horizontal pod autoscaler controller (upstream's `pkg/controller/podautoscaler`), for
//! `autoscaling/v2` HorizontalPodAutoscalers.
//!
//! Every HPA is looked at when it changes and again every `Config::hpa_sync_period` (15 s,
//! upstream's `--horizontal-pod-autoscaler-sync-period`): its target's `scale` subresource is
//! read (the resource found by discovery from `scaleTargetRef`), a target outside
//! `[minReplicas, maxReplicas]` is brought back within them, and otherwise the replica count
//! comes from the metrics, stabilized and rate-limited by `spec.behavior` (see [`replicas`]).
//! Resource metrics are read from `metrics.k8s.io/v1beta1` PodMetrics through the API
//! ([`MetricsSource`]); skiff serves no such API yet, so today those fail as they do on a
//! cluster without metrics-server: `ScalingActive=False` (`FailedGetResourceMetric`) and the
//! replicas are left alone. The status (`currentReplicas`, `desiredReplicas`,
//! `lastScaleTime`, `currentMetrics`, conditions `AbleToScale`, `ScalingActive`,
//! `ScalingLimited`) and events use upstream's reasons, which `kubectl describe hpa` shows.

pub mod replicas;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::json;
use skiff_workloads::events::{NORMAL, Recorder, WARNING};
use skiff_workloads::informer::{Change, Informers};
use skiff_workloads::queue::Queue;
use skiff_workloads::util::{key_of, now, split_key};
use tokio_util::sync::CancellationToken;

use self::replicas::{Limited, PodFacts, Policy, Rules, Sample, Select, Target, Timed};
use crate::Config;
use crate::discovery::SharedCatalog;

/// Workers (upstream's `--concurrent-horizontal-pod-autoscaler-syncs`, 5).
const WORKERS: usize = 5;

/// Where per-pod resource usage comes from.
pub trait MetricsSource: Send + Sync + 'static {
    /// Usage of `resource` (summed over the containers, or only `container`) of the pods of
    /// `namespace` matching `selector`, by pod name; the error says why there is none, in the
    /// words upstream's metrics client uses.
    fn pod_usage(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> impl Future<Output = Result<BTreeMap<String, Sample>, String>> + Send;
}

/// The resource metrics API (`metrics.k8s.io/v1beta1` PodMetrics), read through the API
/// server like any other resource.
pub struct ResourceMetricsApi {
    client: Client,
}

impl ResourceMetricsApi {
    pub fn new(client: Client) -> ResourceMetricsApi {
        ResourceMetricsApi { client }
    }
}

impl MetricsSource for ResourceMetricsApi {
    async fn pod_usage(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, Sample>, String> {
        let pod_metrics = ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: "PodMetrics".into(),
            plural: "pods".into(),
        };
        let api =
            Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &pod_metrics);
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|error| {
                let why = match error {
                    kube::Error::Api(status) if status.code == 404 => {
                        "the server could not find the requested resource (get pods.metrics.k8s.io)"
                            .to_owned()
                    }
                    other => other.to_string(),
                };
                format!("unable to fetch metrics from resource metrics API: {why}")
            })?;
        if list.items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut usage = BTreeMap::new();
        for item in list.items {
            let Some(name) = item.metadata.name.clone() else {
                continue;
            };
            let timestamp = item.data["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map_or(0, |t| t.as_second());
            let window = item.data["window"]
                .as_str()
                .and_then(|w| w.strip_suffix('s'))
                .and_then(|w| w.parse::<f64>().ok())
                .map_or(0, |w| w as i64);
            let mut total = 0;
            let mut found = false;
            for c in item.data["containers"].as_array().into_iter().flatten() {
                if container.is_some_and(|wanted| c["name"].as_str() != Some(wanted)) {
                    continue;
                }
                if let Some(value) = c["usage"][resource].as_str() {
                    total +=
                        skiff_scheduler::quantity::milli_value(value).map_err(|e| e.to_string())?;
                    found = true;
                }
            }
            // A pod whose containers report no usage of the resource is a missing sample.
            if found {
                usage.insert(
                    name,
                    Sample {
                        value: total,
                        timestamp,
                        window,
                    },
                );
            }
        }
        Ok(usage)
    }
}

/// Runs the HPA controller, reading metrics through the API, until `shutdown`.
pub async fn run(informers: Informers, config: Config, shutdown: CancellationToken) -> Result<()> {
    let metrics = ResourceMetricsApi::new(informers.client().clone());
    run_with(informers, config, metrics, shutdown).await
}

/// Runs the HPA controller with the given metrics source until `shutdown`.
pub async fn run_with<M: MetricsSource>(
    informers: Informers,
    config: Config,
    metrics: M,
    shutdown: CancellationToken,
) -> Result<()> {
    let client = informers.client().clone();
    let hpas = informers.all::<HorizontalPodAutoscaler>();
    let controller = Arc::new(HpaController {
        catalog: SharedCatalog::new(client.clone(), config.discovery_interval),
        recorder: Recorder::new(client.clone(), "horizontal-pod-autoscaler"),
        client,
        hpas: hpas.store(),
        queue: Queue::new(shutdown.clone()),
        metrics,
        sync_period: config.hpa_sync_period,
        history: Mutex::default(),
    });
    let c = Arc::clone(&controller);
    hpas.on_change(move |change| match change {
        Change::Applied(hpa) => c.queue.add(key_of(hpa)),
        Change::Deleted(hpa) => c.forget(&key_of(hpa)),
        Change::Resynced => {}
    });
    crate::wait_ready(&controller.hpas, &shutdown).await;
    tracing::info!("horizontal pod autoscaler controller started");
    crate::work(Arc::clone(&controller), WORKERS).await;
    Ok(())
}

/// What the controller remembers of an HPA between syncs (upstream keeps the same in memory).
#[derive(Default)]
struct History {
    /// Recommendations before stabilization.
    recommendations: Vec<Timed>,
    /// Replica changes made, positive or negative.
    scale_events: Vec<Timed>,
}

struct HpaController<M> {
    client: Client,
    catalog: SharedCatalog,
    recorder: Recorder,
    hpas: Store<HorizontalPodAutoscaler>,
    queue: Arc<Queue>,
    metrics: M,
    sync_period: Duration,
    history: Mutex<HashMap<String, History>>,
}

impl<M: MetricsSource> crate::Reconcile for HpaController<M> {
    const NAME: &'static str = "horizontal-pod-autoscaler";

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(hpa) = self.hpas.get(&ObjectRef::new(name).within(namespace)) else {
            self.forget(key);
            return Ok(None);
        };
        if hpa.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        // The API requires a spec; an object without one has nothing to act on.
        let Some(spec) = hpa.spec.as_ref() else {
            return Ok(None);
        };
        self.reconcile(key, &hpa, spec).await?;
        Ok(Some(self.sync_period))
    }
}

/// The conditions and fields of the status being built.
struct Outcome {
    status: HorizontalPodAutoscalerStatus,
}

impl Outcome {
    fn set(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        let conditions = self.status.conditions.get_or_insert_default();
        let status = if ok { "True" } else { "False" };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(condition) => {
                if condition.status != status {
                    condition.last_transition_time = Some(now());
                }
                condition.status = status.into();
                condition.reason = Some(reason.into());
                condition.message = Some(message.into());
            }
            None => conditions.push(HorizontalPodAutoscalerCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(now()),
            }),
        }
    }
}

/// One metric's result.
enum MetricResult {
    Proposal {
        replicas: i32,
        status: Box<MetricStatus>,
        name: String,
    },
    /// The condition reason and the error.
    Failed { reason: String, error: String },
}

impl<M: MetricsSource> HpaController<M> {
    fn forget(&self, key: &str) {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    async fn reconcile(
        &self,
        key: &str,
        hpa: &HorizontalPodAutoscaler,
        spec: &HorizontalPodAutoscalerSpec,
    ) -> Result<()> {
        let namespace = hpa.metadata.namespace.as_deref().unwrap_or_default();
        let name = hpa.metadata.name.as_deref().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}", target.kind, target.name);
        let mut outcome = Outcome {
            status: hpa.status.clone().unwrap_or_default(),
        };
        outcome.status.observed_generation = hpa.metadata.generation;

        let scale = match self.get_scale(namespace, target).await {
            Ok(scale) => scale,
            Err(error) => {
                let error = format!("{error:#}");
                self.recorder
                    .record(hpa, WARNING, "FailedGetScale", &error)
                    .await;
                outcome.set(
                    "AbleToScale",
                    false,
                    "FailedGetScale",
                    &format!(
                        "the HPA controller was unable to get the target's current scale: {error}"
                    ),
                );
                self.write_status(hpa, outcome.status).await?;
                tracing::info!(hpa = key, %error, "cannot get the scale of {reference}");
                return Ok(());
            }
        };
        outcome.set(
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        );
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        let selector = scale.status.as_ref().and_then(|s| s.selector.clone());
        outcome.status.current_replicas = Some(current);

        let (desired, reason) = if current == 0 && min != 0 {
            outcome.set(
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
            (0, None)
        } else if current > max {
            outcome.set(
                "ScalingLimited",
                true,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            );
            (
                max,
                Some("Current number of replicas above Spec.MaxReplicas".to_owned()),
            )
        } else if current < min {
            outcome.set(
                "ScalingLimited",
                true,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            );
            (
                min,
                Some("Current number of replicas below Spec.MinReplicas".to_owned()),
            )
        } else {
            let metrics = self
                .compute_metrics(
                    hpa,
                    spec,
                    namespace,
                    selector.as_deref(),
                    current,
                    &mut outcome,
                )
                .await?;
            let Some((proposed, metric_name, statuses)) = metrics else {
                // Nothing to go by: the replicas stay as they are until the metrics come, and
                // no stale measurement is shown meanwhile.
                outcome.status.current_metrics = None;
                self.write_status(hpa, outcome.status).await?;
                return Ok(());
            };
            outcome.status.current_metrics = Some(statuses);
            let desired = self.normalize(key, spec, current, proposed, &mut outcome);
            let reason = if desired > current {
                format!("{metric_name} above target")
            } else {
                "All metrics below target".to_owned()
            };
            (desired, Some(reason))
        };

        let rescale = reason.is_some() && desired != current;
        if rescale {
            let reason = reason.unwrap_or_default();
            match self.update_scale(namespace, target, desired).await {
                Ok(()) => {
                    outcome.set(
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        &format!(
                            "the HPA controller was able to update the target scale to {desired}"
                        ),
                    );
                    let message = format!("New size: {desired}; reason: {reason}");
                    self.recorder
                        .record(hpa, NORMAL, "SuccessfulRescale", &message)
                        .await;
                    tracing::info!(hpa = key, "{reference}: {message}");
                    self.remember_scale(key, desired - current);
                    outcome.status.last_scale_time = Some(now());
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    outcome.set(
                        "AbleToScale",
                        false,
                        "FailedUpdateScale",
                        &format!(
                            "the HPA controller was unable to update the target scale: {error}"
                        ),
                    );
                    self.recorder
                        .record(
                            hpa,
                            WARNING,
                            "FailedRescale",
                            &format!("New size: {desired}; reason: {reason}; error: {error}"),
                        )
                        .await;
                    self.write_status(hpa, outcome.status).await?;
                    anyhow::bail!("rescaling {reference} of HPA {name}: {error}");
                }
            }
        }
        outcome.status.desired_replicas = desired;
        self.write_status(hpa, outcome.status).await
    }

    /// The target's scale subresource.
    async fn get_scale(
        &self,
        namespace: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<Scale> {
        let api = self.scale_api(namespace, target).await?;
        let name = &target.name;
        api.get_scale(name)
            .await
            .with_context(|| format!("getting the scale of {name}"))
    }

    async fn update_scale(
        &self,
        namespace: &str,
        target: &CrossVersionObjectReference,
        replicas: i32,
    ) -> Result<()> {
        let api = self.scale_api(namespace, target).await?;
        let name = &target.name;
        api.patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .with_context(|| format!("updating the scale of {name}"))?;
        Ok(())
    }

    /// The API of the target's resource, found through discovery (asked again once when the
    /// kind is unknown: it may be a custom resource defined a moment ago).
    async fn scale_api(
        &self,
        namespace: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<Api<DynamicObject>> {
        let api_version = target.api_version.as_deref().unwrap_or_default();
        let catalog = self.catalog.get().await.context("discovering resources")?;
        let served = match catalog.resolve(api_version, &target.kind) {
            Some(served) => served,
            None => self
                .catalog
                .refresh()
                .await
                .context("discovering resources")?
                .resolve(api_version, &target.kind)
                .with_context(|| {
                    format!(
                        "unable to determine resource for scale target reference: no matches for kind {:?} in version {:?}",
                        target.kind, api_version
                    )
                })?,
        };
        Ok(Api::namespaced_with(
            self.client.clone(),
            namespace,
            &served.resource,
        ))
    }

    /// The replicas the metrics ask for (the highest of them), the metric behind it and the
    /// metric statuses; `None` when no metric gave a proposal, after recording why as
    /// upstream does (a condition and events).
    async fn compute_metrics(
        &self,
        hpa: &HorizontalPodAutoscaler,
        spec: &HorizontalPodAutoscalerSpec,
        namespace: &str,
        selector: Option<&str>,
        current: i32,
        outcome: &mut Outcome,
    ) -> Result<Option<(i32, String, Vec<MetricStatus>)>> {
        let Some(selector) = selector.filter(|s| !s.is_empty()) else {
            let message = "the HPA target's scale is missing a selector";
            self.recorder
                .record(hpa, WARNING, "SelectorRequired", message)
                .await;
            outcome.set("ScalingActive", false, "InvalidSelector", message);
            return Ok(None);
        };
        let specs = spec.metrics.clone().unwrap_or_default();
        let mut best: Option<(i32, String)> = None;
        let mut statuses = Vec::new();
        let mut first_failure: Option<(String, String)> = None;
        let mut failures = 0;
        for metric in &specs {
            match self
                .compute_metric(metric, namespace, selector, current)
                .await?
            {
                MetricResult::Proposal {
                    replicas,
                    status,
                    name,
                } => {
                    statuses.push(*status);
                    if best.as_ref().is_none_or(|(r, _)| replicas > *r) {
                        best = Some((replicas, name));
                    }
                }
                MetricResult::Failed { reason, error } => {
                    failures += 1;
                    self.recorder.record(hpa, WARNING, &reason, &error).await;
                    first_failure.get_or_insert((reason, error));
                }
            }
        }
        if failures == 0
            && let Some((replicas, name)) = best
        {
            outcome.set(
                "ScalingActive",
                true,
                "ValidMetricFound",
                &format!("the HPA was able to successfully calculate a replica count from {name}"),
            );
            return Ok(Some((replicas, name, statuses)));
        }
        let Some((reason, error)) = first_failure else {
            // No metrics at all: nothing to scale by.
            return Ok(None);
        };
        outcome.set(
            "ScalingActive",
            false,
            &reason,
            &format!("the HPA was unable to compute the replica count: {error}"),
        );
        if let Some((replicas, name)) = best {
            // Upstream scales on the valid metrics when that only adds replicas.
            if replicas > current {
                return Ok(Some((replicas, name, statuses)));
            }
        }
        let message = format!(
            "invalid metrics ({failures} invalid out of {}), first error is: {error}",
            specs.len()
        );
        self.recorder
            .record(hpa, WARNING, "FailedComputeMetricsReplicas", &message)
            .await;
        tracing::info!(hpa = ?hpa.metadata.name, %message, "no replica count from metrics");
        Ok(None)
    }

    async fn compute_metric(
        &self,
        metric: &MetricSpec,
        namespace: &str,
        selector: &str,
        current: i32,
    ) -> Result<MetricResult> {
        let (resource, container, target, reason) = match metric.type_.as_str() {
            "Resource" => match &metric.resource {
                Some(r) => (
                    r.name.clone(),
                    None,
                    r.target.clone(),
                    "FailedGetResourceMetric",
                ),
                None => return Ok(invalid("FailedGetResourceMetric", "missing resource")),
            },
            "ContainerResource" => match &metric.container_resource {
                Some(r) => (
                    r.name.clone(),
                    Some(r.container.clone()),
                    r.target.clone(),
                    "FailedGetContainerResourceMetric",
                ),
                None => {
                    return Ok(invalid(
                        "FailedGetContainerResourceMetric",
                        "missing container resource",
                    ));
                }
            },
            other => {
                // Pods, Object and External metrics come from the custom and external
                // metrics APIs, which skiff does not serve.
                let reason = format!("FailedGet{other}Metric");
                return Ok(MetricResult::Failed {
                    error: format!(
                        "unable to get {other} metric: the custom and external metrics APIs are not served"
                    ),
                    reason,
                });
            }
        };
        let target_value = match (
            target.type_.as_str(),
            target.average_utilization,
            target.average_value.as_ref(),
        ) {
            ("Utilization", Some(percent), _) => Target::Utilization(percent),
            ("AverageValue", _, Some(value)) => {
                match skiff_scheduler::quantity::milli_value(&value.0) {
                    Ok(value) => Target::AverageValue(value),
                    Err(error) => return Ok(invalid(reason, &error.to_string())),
                }
            }
            _ => {
                return Ok(invalid(
                    reason,
                    "invalid resource metric source: neither a utilization target nor a value target was set",
                ));
            }
        };
        let usage = match self
            .metrics
            .pod_usage(namespace, selector, &resource, container.as_deref())
            .await
        {
            Ok(usage) => usage,
            Err(error) => {
                return Ok(invalid(
                    reason,
                    &format!("unable to get metrics for resource {resource}: {error}"),
                ));
            }
        };
        let pods = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .with_context(|| format!("listing the pods of {namespace} matching {selector}"))?;
        let facts: Vec<PodFacts> = pods
            .items
            .iter()
            .map(|pod| pod_facts(pod, &resource, container.as_deref()))
            .collect();
        let now = Timestamp::now().as_second();
        let proposal = match replicas::resource_replicas(
            current,
            target_value,
            resource == "cpu",
            &facts,
            &usage,
            now,
        ) {
            Ok(proposal) => proposal,
            Err(error) => return Ok(invalid(reason, &error)),
        };
        let current_value = MetricValueStatus {
            average_utilization: proposal.utilization,
            average_value: Some(milli_quantity(proposal.average_value)),
            value: None,
        };
        let (status, name) = match container {
            None => (
                MetricStatus {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricStatus {
                        name: resource.clone(),
                        current: current_value,
                    }),
                    ..MetricStatus::default()
                },
                format!("{resource} resource"),
            ),
            Some(container) => (
                MetricStatus {
                    type_: "ContainerResource".into(),
                    container_resource: Some(
                        k8s_openapi::api::autoscaling::v2::ContainerResourceMetricStatus {
                            name: resource.clone(),
                            container: container.clone(),
                            current: current_value,
                        },
                    ),
                    ..MetricStatus::default()
                },
                format!("{resource} container resource"),
            ),
        };
        let name = match target_value {
            Target::Utilization(_) => format!("{name} utilization (percentage of request)"),
            Target::AverageValue(_) => name,
        };
        Ok(MetricResult::Proposal {
            replicas: proposal.replicas,
            status: Box::new(status),
            name,
        })
    }

    /// Stabilizes and rate-limits a proposal by the HPA's behavior, setting `AbleToScale`
    /// and `ScalingLimited` as upstream's `normalizeDesiredReplicasWithBehaviors`.
    fn normalize(
        &self,
        key: &str,
        spec: &HorizontalPodAutoscalerSpec,
        current: i32,
        proposed: i32,
        outcome: &mut Outcome,
    ) -> i32 {
        let behavior = spec.behavior.as_ref();
        let up = rules(
            behavior.and_then(|b| b.scale_up.as_ref()),
            Rules::default_up(),
        );
        let down = rules(
            behavior.and_then(|b| b.scale_down.as_ref()),
            Rules::default_down(),
        );
        let now = Instant::now();
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let entry = history.entry(key.to_owned()).or_default();
        // A controller that just started treats the current size as a recent recommendation,
        // so it does not scale down before a window's worth of them.
        if entry.recommendations.is_empty() {
            entry.recommendations.push(Timed {
                at: now,
                replicas: current,
            });
        }
        let (stabilized, note) =
            replicas::stabilize(current, proposed, &entry.recommendations, &up, &down, now);
        let keep = up.stabilization.max(down.stabilization);
        entry
            .recommendations
            .retain(|r| now.saturating_duration_since(r.at) < keep);
        entry.recommendations.push(Timed {
            at: now,
            replicas: proposed,
        });
        match note {
            Some((reason, message)) => outcome.set("AbleToScale", true, reason, message),
            None => outcome.set(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
        }
        let min = spec.min_replicas.unwrap_or(1);
        let Limited {
            replicas,
            limited,
            reason,
            message,
        } = replicas::limit_rate(
            current,
            stabilized,
            min,
            spec.max_replicas,
            &up,
            &down,
            &entry.scale_events,
            now,
        );
        outcome.set("ScalingLimited", limited, reason, message);
        replicas
    }

    fn remember_scale(&self, key: &str, change: i32) {
        let now = Instant::now();
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let entry = history.entry(key.to_owned()).or_default();
        // No policy period is longer than 30 minutes (the API's limit).
        entry
            .scale_events
            .retain(|e| now.saturating_duration_since(e.at) < Duration::from_secs(1800));
        entry.scale_events.push(Timed {
            at: now,
            replicas: change,
        });
    }

    /// Writes the status when it changed.
    async fn write_status(
        &self,
        hpa: &HorizontalPodAutoscaler,
        status: HorizontalPodAutoscalerStatus,
    ) -> Result<()> {
        if hpa.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let namespace = hpa.metadata.namespace.as_deref().unwrap_or_default();
        let name = hpa.metadata.name.as_deref().unwrap_or_default();
        let mut updated = hpa.clone();
        updated.status = Some(status);
        Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), namespace)
            .replace_status(name, &PostParams::default(), &updated)
            .await
            .with_context(|| format!("updating the status of HPA {namespace}/{name}"))?;
        Ok(())
    }
}

fn invalid(reason: &str, error: &str) -> MetricResult {
    MetricResult::Failed {
        reason: reason.to_owned(),
        error: error.to_owned(),
    }
}

/// A quantity of milli-units as `resource.NewMilliQuantity` prints it.
fn milli_quantity(milli: i64) -> Quantity {
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

/// One direction's rules from the API, upstream's defaults filling what is unset.
fn rules(api: Option<&HPAScalingRules>, defaults: Rules) -> Rules {
    let Some(api) = api else {
        return defaults;
    };
    let select = match api.select_policy.as_deref() {
        Some("Min") => Select::Min,
        Some("Disabled") => Select::Disabled,
        _ => Select::Max,
    };
    let policies = match api.policies.as_deref() {
        Some(policies) if !policies.is_empty() => policies
            .iter()
            .map(|p| {
                let period = Duration::from_secs(u64::try_from(p.period_seconds).unwrap_or(0));
                match p.type_.as_str() {
                    "Pods" => Policy::Pods {
                        value: p.value,
                        period,
                    },
                    _ => Policy::Percent {
                        value: p.value,
                        period,
                    },
                }
            })
            .collect(),
        _ => defaults.policies,
    };
    Rules {
        stabilization: api
            .stabilization_window_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(defaults.stabilization, Duration::from_secs),
        select,
        policies,
    }
}

/// What the replica calculation needs of a pod.
fn pod_facts(pod: &Pod, resource: &str, container: Option<&str>) -> PodFacts {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| {
            (
                c.status == "True",
                c.last_transition_time
                    .as_ref()
                    .map_or(0, |t| t.0.as_second()),
            )
        });
    let mut request = Some(0);
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        if container.is_some_and(|wanted| c.name != wanted) {
            continue;
        }
        let value = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| skiff_scheduler::quantity::milli_value(&q.0).ok());
        request = match (request, value) {
            (Some(total), Some(value)) => Some(total + value),
            _ => None,
        };
    }
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        ignored: pod.metadata.deletion_timestamp.is_some() || phase == Some("Failed"),
        pending: phase == Some("Pending"),
        ready,
        start_time: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_second()),
        request,
    }
}
