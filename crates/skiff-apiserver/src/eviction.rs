//! The `pods/<name>/eviction` subresource (what `kubectl drain` posts): deletes a pod unless
//! that would break its PodDisruptionBudget, as kube-apiserver does. A pod that is not
//! running yet, has finished or is already being deleted goes at once; otherwise the one
//! budget selecting it must allow a disruption (`status.disruptionsAllowed`, as the disruption
//! controller computes it), which the eviction spends by a compare-and-swap on the budget's
//! status before the pod is deleted, so two concurrent evictions never both take the last one.

use serde_json::{Value, json};

use crate::objects::{self, DeleteOptions};
use crate::registry::{Registry, Resource};
use crate::selector::{LabelSelector, Selectors, labels_of, text_of};
use crate::status::{Cause, Details};
use crate::{ApiError, AppState};

/// kube-apiserver's limit on pods a budget remembers as disrupted but not yet gone.
const MAX_DISRUPTED_PODS: usize = 2000;

/// Evicts `namespace/name`; `options` are the Eviction's `deleteOptions`. Returns the Status
/// kube-apiserver answers a successful eviction with.
pub(crate) async fn evict(
    state: &AppState,
    registry: &Registry,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let pods = core(registry, "", "v1", "pods")?;
    let budgets = core(registry, "policy", "v1", "poddisruptionbudgets")?;
    let pod = objects::get(&state.store, pods, Some(namespace), name).await?;
    if !can_ignore_budget(&pod) {
        state.cache.sync().await?;
        let prefix = objects::prefix(budgets, Some(namespace));
        let (_, candidates) = state.cache.list(&prefix, &Selectors::default());
        let labels = labels_of(&pod);
        let matching: Vec<Value> = candidates
            .iter()
            .map(|budget| budget.to_value())
            .filter(|budget| selects(budget, &labels))
            .collect();
        match matching.as_slice() {
            [] => {}
            [budget] => {
                let budget_name = budget["metadata"]["name"].as_str().unwrap_or_default();
                spend_disruption(
                    state,
                    budgets,
                    namespace,
                    budget_name,
                    &pod,
                    options.dry_run,
                )
                .await?;
            }
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".to_owned(),
                ));
            }
        }
    }
    if !options.dry_run {
        mark_disruption_target(state, pods, namespace, name).await?;
    }
    objects::delete(&state.store, pods, Some(namespace), name, options).await?;
    Ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }))
}

fn core<'r>(
    registry: &'r Registry,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<&'r Resource, ApiError> {
    registry
        .find(group, version, plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
}

/// Pods whose eviction disrupts nothing: not yet running, finished, or already going.
fn can_ignore_budget(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
        || matches!(
            pod["status"]["phase"].as_str(),
            Some("Pending" | "Succeeded" | "Failed") | None
        )
}

/// Whether a budget's selector selects these labels. In policy/v1 an empty selector selects
/// every pod of the namespace and a missing one none.
fn selects(budget: &Value, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let selector = &budget["spec"]["selector"];
    if !selector.is_object() {
        return false;
    }
    LabelSelector::parse(&text_of(selector)).is_ok_and(|s| s.matches(labels))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Takes one allowed disruption from the budget (or refuses with 429), recording the pod in
/// `status.disruptedPods` so the disruption controller does not count it healthy meanwhile.
async fn spend_disruption(
    state: &AppState,
    budgets: &Resource,
    namespace: &str,
    budget_name: &str,
    pod: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let ready = is_ready(pod);
    let refusal = |detail: String| {
        ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_details(Details {
            name: pod_name.to_owned(),
            group: "policy".to_owned(),
            kind: "Eviction".to_owned(),
            causes: vec![Cause {
                reason: "DisruptionBudget".to_owned(),
                message: detail,
                field: String::new(),
            }],
        })
    };
    // Decided on the stored budget inside the compare-and-swap; `Ok(None)` writes nothing.
    let decide = |budget: &Value| -> Result<Option<Value>, ApiError> {
        let status = &budget["status"];
        let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
        if status["observedGeneration"].as_i64().unwrap_or(0) < generation {
            return Err(refusal(format!(
                "The disruption budget {budget_name} is still being processed by the server."
            )));
        }
        let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
        let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
        // An unready pod does not count as healthy: evicting it spends nothing, if the policy
        // says so or the budget is met anyway.
        if !ready {
            let policy = budget["spec"]["unhealthyPodEvictionPolicy"].as_str();
            if policy == Some("AlwaysAllow") || (healthy >= desired && desired > 0) {
                return Ok(None);
            }
        }
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            return Err(refusal(format!(
                "The disruption budget {budget_name} needs {desired} healthy pods and has {healthy} currently"
            )));
        }
        let disrupted = status["disruptedPods"].as_object().map_or(0, |m| m.len());
        if disrupted > MAX_DISRUPTED_PODS {
            return Err(ApiError::forbidden(
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        let mut spent = budget.clone();
        spent["status"]["disruptionsAllowed"] = json!(allowed - 1);
        if !spent["status"]["disruptedPods"].is_object() {
            spent["status"]["disruptedPods"] = json!({});
        }
        spent["status"]["disruptedPods"][pod_name] = json!(objects::now_rfc3339());
        Ok(Some(spent))
    };
    let current = objects::get(&state.store, budgets, Some(namespace), budget_name).await?;
    if decide(&current)?.is_none() || dry_run {
        return Ok(());
    }
    objects::update_with(
        &state.store,
        budgets,
        Some(namespace),
        budget_name,
        None,
        false,
        |budget| Ok(decide(budget)?.unwrap_or_else(|| budget.clone())),
    )
    .await?;
    Ok(())
}

/// The `DisruptionTarget` condition kube-apiserver sets on a pod it evicts, so controllers and
/// the pod's owner can tell an eviction from a failure.
async fn mark_disruption_target(
    state: &AppState,
    pods: &Resource,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    objects::update_with(
        &state.store,
        pods,
        Some(namespace),
        name,
        None,
        false,
        |pod| {
            let mut pod = pod.clone();
            let condition = json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
                "lastTransitionTime": objects::now_rfc3339(),
            });
            let conditions = pod["status"]["conditions"].as_array_mut();
            match conditions {
                Some(list) => {
                    list.retain(|c| c["type"] != "DisruptionTarget");
                    list.push(condition);
                }
                None => pod["status"]["conditions"] = json!([condition]),
            }
            Ok(pod)
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_not_running_are_evicted_without_a_budget() {
        assert!(can_ignore_budget(&json!({"status": {"phase": "Pending"}})));
        assert!(can_ignore_budget(
            &json!({"status": {"phase": "Succeeded"}})
        ));
        assert!(can_ignore_budget(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}})
        ));
        assert!(!can_ignore_budget(&json!({"status": {"phase": "Running"}})));
    }

    #[test]
    fn empty_selectors_select_all_and_missing_ones_none() {
        let labels = [("app".to_owned(), "web".to_owned())].into_iter().collect();
        assert!(selects(&json!({"spec": {"selector": {}}}), &labels));
        assert!(!selects(&json!({"spec": {}}), &labels));
        assert!(selects(
            &json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}}),
            &labels
        ));
        assert!(!selects(
            &json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}}),
            &labels
        ));
    }
}
