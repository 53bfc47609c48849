//! The Deployment controller's arithmetic, as pure functions over Deployments and their
//! ReplicaSets (upstream's `pkg/controller/deployment/util`): surge and unavailability
//! fenceposts, revisions and their annotations, proportional scaling, status and conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;

use crate::util::{now, scaled_value, templates_equal_ignoring_hash};

/// The revision of a ReplicaSet, mirrored on its Deployment.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The revisions a reused ReplicaSet had before.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `spec.replicas` when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas` + max surge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The longest `revision-history` annotation kept.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Condition types and reasons `kubectl rollout status` and users read.
pub mod reason {
    /// Condition type: enough pods are available.
    pub const AVAILABLE: &str = "Available";
    /// Condition type: the rollout makes progress (or finished, or timed out).
    pub const PROGRESSING: &str = "Progressing";
    /// Condition type: a ReplicaSet could not create or delete pods.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// Available=True.
    pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// Available=False.
    pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    /// Progressing=True: a new ReplicaSet was created.
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    /// Progressing=True: an existing ReplicaSet matches the template.
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    /// Progressing=True: pods moved.
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    /// Progressing=True: the rollout is complete.
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// Progressing=False: no progress within `progressDeadlineSeconds`.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// Progressing=False: the new ReplicaSet could not be created.
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    /// Progressing=Unknown: paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// Progressing=Unknown: resumed.
    pub const RESUMED: &str = "DeploymentResumed";
}

/// `spec.replicas` (default 1).
pub fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (default 1).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Whether the strategy is `RollingUpdate` (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) != "Recreate"
}

/// The strategy type.
pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Whether the Deployment is paused.
pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `(max surge, max unavailable)` as counts; both zero after rounding makes unavailable 1.
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let replicas = desired(d);
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled_value(
        rolling.and_then(|r| r.max_surge.as_ref()),
        replicas,
        true,
        "25%",
    );
    let unavailable = scaled_value(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        false,
        "25%",
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The max surge of a rolling update (0 otherwise).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling_update(d) {
        resolve_fenceposts(d).0
    } else {
        0
    }
}

/// The max unavailable of a rolling update, at most `spec.replicas` (0 otherwise).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || desired(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(desired(d))
}

/// Whether `progressDeadlineSeconds` is set (and not "infinite").
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// The revision annotation of an object (0 if absent or unparsable).
pub fn revision(annotations: Option<&BTreeMap<String, String>>) -> i64 {
    annotations
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among ReplicaSets.
pub fn max_revision(rses: &[ReplicaSet]) -> i64 {
    rses.iter()
        .map(|rs| revision(rs.metadata.annotations.as_ref()))
        .max()
        .unwrap_or(0)
}

/// Sorts oldest first (creation time, then name).
pub fn sort_by_creation(rses: &mut [ReplicaSet]) {
    rses.sort_by(|a, b| {
        let key = |rs: &ReplicaSet| {
            (
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                rs.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// The index of the ReplicaSet whose template equals the Deployment's (the oldest if
/// several do).
pub fn find_new(d: &Deployment, rses: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref().map(|s| &s.template)?;
    let mut order: Vec<usize> = (0..rses.len()).collect();
    order.sort_by_key(|&i| {
        (
            rses[i].metadata.creation_timestamp.as_ref().map(|t| t.0),
            rses[i].metadata.name.clone(),
        )
    });
    order.into_iter().find(|&i| {
        rses[i]
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| templates_equal_ignoring_hash(t, template))
    })
}

/// ReplicaSets with a positive `spec.replicas`.
pub fn active(rses: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rses.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .cloned()
        .collect()
}

/// Sum of `spec.replicas`.
pub fn total_replicas(rses: &[ReplicaSet]) -> i32 {
    rses.iter().map(rs_replicas).sum()
}

/// Sum of `status.availableReplicas`.
pub fn total_available(rses: &[ReplicaSet]) -> i32 {
    rses.iter().map(rs_available).sum()
}

/// How many replicas the new ReplicaSet should have now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new_replicas: i32) -> i32 {
    if !is_rolling_update(d) {
        return desired(d);
    }
    let current = total_replicas(all);
    let max_total = desired(d) + max_surge(d);
    if current >= max_total {
        return new_replicas;
    }
    let scale_up = (max_total - current).min(desired(d) - new_replicas);
    new_replicas + scale_up
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
}

/// The `desired-replicas` annotation.
pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, DESIRED_REPLICAS)
}

/// Whether the new ReplicaSet runs everything the Deployment wants, all available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    desired_annotation(rs) == Some(desired(d))
        && rs_available(rs) == desired(d)
        && rs_replicas(rs) == desired(d)
}

/// Sets the `desired-replicas` and `max-replicas` annotations; whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_owned(), value);
            changed = true;
        }
    }
    changed
}

/// Whether the replica annotations differ from these values.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation_i32(rs, DESIRED_REPLICAS) != Some(desired)
        || annotation_i32(rs, MAX_REPLICAS) != Some(max)
}

fn skip_copied(key: &str) -> bool {
    matches!(
        key,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// Copies the Deployment's own annotations onto the ReplicaSet; whether any changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if skip_copied(key) || annotations.get(key) == Some(value) {
            continue;
        }
        annotations.insert(key.clone(), value.clone());
        changed = true;
    }
    changed
}

/// Annotates the new ReplicaSet: the Deployment's annotations, the new revision (keeping
/// the old one in `revision-history` when a ReplicaSet is reused), and the replica counts
/// when it is about to be created. Returns whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations.get(REVISION).cloned();
    let old_revision = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(r)) => r,
        Some(Err(_)) => return changed,
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.to_owned(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            let mut revisions: Vec<&str> = history.split(',').filter(|r| !r.is_empty()).collect();
            revisions.push(&old);
            while revisions.join(",").len() > MAX_REVISION_HISTORY_CHARS && revisions.len() > 1 {
                revisions.remove(0);
            }
            let joined = revisions.join(",");
            annotations.insert(REVISION_HISTORY.to_owned(), joined);
        }
    }
    if !exists && set_replicas_annotations(rs, desired(d), desired(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Finds the only active ReplicaSet, or the newest one (the new one first) if none is active.
pub fn find_active_or_latest<'a>(
    new: Option<&'a ReplicaSet>,
    olds: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut olds_newest_first: Vec<&ReplicaSet> = olds.iter().collect();
    olds_newest_first.sort_by(|a, b| {
        let key = |rs: &ReplicaSet| {
            (
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                rs.metadata.name.clone(),
            )
        };
        key(b).cmp(&key(a))
    });
    let actives: Vec<&ReplicaSet> = olds_newest_first
        .iter()
        .copied()
        .chain(new)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match actives.len() {
        0 => new.or(olds_newest_first.first().copied()),
        1 => Some(actives[0]),
        _ => None,
    }
}

/// How many replicas a ReplicaSet should gain (or lose) when the Deployment is scaled by
/// `to_add` and `added` have been handed out already.
pub fn replica_set_proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired(d) == 0 {
        -rs_replicas(rs)
    } else {
        let deployment_replicas = desired(d) + max_surge(d);
        let annotated = annotation_i32(rs, MAX_REPLICAS)
            .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        if annotated == 0 {
            0
        } else {
            let size =
                f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
            #[allow(clippy::cast_possible_truncation)]
            let rounded = size.round() as i32;
            rounded - rs_replicas(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// A condition with both times now.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: Some(now()),
        last_update_time: Some(now()),
    }
}

/// The condition of a type.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// Sets a condition unless one with the same status and reason is there, keeping the
/// transition time when the status does not change.
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &condition.type_);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

/// Removes the condition of a type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// The status the ReplicaSets give (conditions carried over, `Available` recomputed).
pub fn calculate_status(
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available = total_available(all);
    let total = total_replicas(all);
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: Some(all.iter().map(rs_actual).sum()),
        updated_replicas: Some(new.map_or(0, rs_actual)),
        ready_replicas: Some(all.iter().map(rs_ready).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= desired(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                reason::AVAILABLE,
                "True",
                reason::MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                reason::AVAILABLE,
                "False",
                reason::MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    status
}

/// A status with absent counters as zero, for comparisons.
pub fn normalized(status: Option<&DeploymentStatus>) -> DeploymentStatus {
    let status = status.cloned().unwrap_or_default();
    DeploymentStatus {
        observed_generation: Some(status.observed_generation.unwrap_or(0)),
        replicas: Some(status.replicas.unwrap_or(0)),
        updated_replicas: Some(status.updated_replicas.unwrap_or(0)),
        ready_replicas: Some(status.ready_replicas.unwrap_or(0)),
        available_replicas: Some(status.available_replicas.unwrap_or(0)),
        unavailable_replicas: Some(status.unavailable_replicas.unwrap_or(0)),
        conditions: Some(status.conditions.unwrap_or_default()),
        ..status
    }
}

/// Whether everything is updated and available at the current generation.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = desired(d);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether the new status shows progress over the Deployment's current one.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = normalized(d.status.as_ref());
    let new = normalized(Some(new));
    let old_olds = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_olds = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas > old.updated_replicas
        || new_olds < old_olds
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
}

/// Whether the rollout has made no progress for `progressDeadlineSeconds`.
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(condition) = get_condition(status, reason::PROGRESSING) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => false,
        Some(reason::TIMED_OUT) => true,
        _ => condition
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + i64::from(deadline) < now.as_second()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn rs(replicas: i32, max_replicas: i32) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..ReplicaSetSpec::default()
            }),
            ..ReplicaSet::default()
        };
        set_replicas_annotations(&mut rs, max_replicas, max_replicas);
        rs
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let pct = |s: &str| IntOrString::String(s.into());
        let d = deployment(3, pct("25%"), pct("25%"));
        assert_eq!(resolve_fenceposts(&d), (1, 0));
        let d = deployment(10, pct("25%"), pct("25%"));
        assert_eq!(resolve_fenceposts(&d), (3, 2));
        let d = deployment(3, IntOrString::Int(0), IntOrString::Int(0));
        assert_eq!(resolve_fenceposts(&d), (0, 1));
        assert_eq!(
            max_unavailable(&deployment(1, IntOrString::Int(0), IntOrString::Int(5))),
            1
        );
    }

    #[test]
    fn the_new_replica_set_grows_within_the_surge() {
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let all = vec![rs(3, 4), rs(0, 4)];
        assert_eq!(new_rs_new_replicas(&d, &all, 0), 1);
        let all = vec![rs(3, 4), rs(1, 4)];
        assert_eq!(new_rs_new_replicas(&d, &all, 1), 1);
    }

    #[test]
    fn proportions_follow_the_max_replicas_annotation() {
        let d = deployment(20, IntOrString::Int(0), IntOrString::Int(1));
        // Scaling 10 -> 20: a ReplicaSet holding 6 of 10 gets 6 more.
        assert_eq!(replica_set_proportion(&d, &rs(6, 10), 10, 0), 6);
        assert_eq!(replica_set_proportion(&d, &rs(4, 10), 10, 6), 4);
    }

    #[test]
    fn reused_replica_sets_keep_their_revision_history() {
        let d = deployment(1, IntOrString::Int(1), IntOrString::Int(0));
        let mut old = rs(0, 1);
        old.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION.into(), "1".into());
        assert!(set_new_rs_annotations(&d, &mut old, 3, true));
        let annotations = old.metadata.annotations.unwrap();
        assert_eq!(annotations[REVISION], "3");
        assert_eq!(annotations[REVISION_HISTORY], "1");
    }
}
