//! A Job's `podFailurePolicy` applied to one failed pod, as upstream's
//! `matchPodFailurePolicy`: the first rule whose exit codes (of a terminated container, exit
//! code 0 never matches) or pod conditions match decides whether the failure fails the Job
//! at once (`FailJob`), is ignored (`Ignore`: not counted against `backoffLimit`) or counts
//! as usual (`Count`; `FailIndex` counts too, as `backoffLimitPerIndex` is not implemented).
//! Pure: a policy and a pod in, a verdict out.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;

/// What the policy says about a failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fail the Job now, with this condition message.
    FailJob(String),
    /// Do not count the failure.
    Ignore,
    /// Count the failure towards `backoffLimit`.
    Count,
}

/// The verdict of `policy` on the failed `pod` (no rule matching counts the failure).
pub fn judge(policy: &PodFailurePolicy, pod: &Pod) -> Verdict {
    for (index, rule) in policy.rules.iter().enumerate() {
        if let Some(what) = matching(rule, pod) {
            return match rule.action.as_str() {
                "FailJob" => {
                    Verdict::FailJob(format!("{what} matching FailJob rule at index {index}"))
                }
                "Ignore" => Verdict::Ignore,
                _ => Verdict::Count,
            };
        }
    }
    Verdict::Count
}

/// What in `pod` matches `rule`, worded as upstream's condition messages, if anything.
fn matching(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(requirement) = &rule.on_exit_codes {
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for container in containers {
            if requirement
                .container_name
                .as_ref()
                .is_some_and(|n| *n != container.name)
            {
                continue;
            }
            let Some(code) = container
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
                .filter(|c| *c != 0)
            else {
                continue;
            };
            let listed = requirement.values.contains(&code);
            let matches = match requirement.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            if matches {
                return Some(format!(
                    "Container {} for pod {namespace}/{name} failed with exit code {code}",
                    container.name
                ));
            }
        }
    }
    for pattern in rule.on_pod_conditions.iter().flatten() {
        let found = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == pattern.type_ && c.status == pattern.status);
        if let Some(condition) = found {
            return Some(format!(
                "Pod {namespace}/{name} has condition {}",
                condition.type_
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).unwrap()
    }

    fn failed_pod(exit_code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{
                    "name": "main", "image": "busybox", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit_code}},
                }],
            },
        }))
        .unwrap()
    }

    #[test]
    fn exit_codes_decide_by_the_first_matching_rule() {
        let rules = policy(json!([
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [5]}},
        ]));
        assert_eq!(judge(&rules, &failed_pod(1, json!([]))), Verdict::Ignore);
        assert_eq!(
            judge(&rules, &failed_pod(42, json!([]))),
            Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            )
        );
        assert_eq!(judge(&rules, &failed_pod(7, json!([]))), Verdict::Count);
        // Exit code 0 matches no NotIn rule.
        let not_in = policy(
            json!([{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [1]}}]),
        );
        assert_eq!(judge(&not_in, &failed_pod(0, json!([]))), Verdict::Count);
    }

    #[test]
    fn pod_conditions_match_type_and_status() {
        let rules = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]));
        let disrupted = failed_pod(137, json!([{"type": "DisruptionTarget", "status": "True"}]));
        assert_eq!(judge(&rules, &disrupted), Verdict::Ignore);
        let not_disrupted = failed_pod(
            137,
            json!([{"type": "DisruptionTarget", "status": "False"}]),
        );
        assert_eq!(judge(&rules, &not_disrupted), Verdict::Count);
        let fail = policy(json!([
            {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]));
        assert_eq!(
            judge(&fail, &disrupted),
            Verdict::FailJob(
                "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0".into()
            )
        );
    }
}
