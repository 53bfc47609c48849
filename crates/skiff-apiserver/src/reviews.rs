//! The review kinds that are asked, not stored: SelfSubjectReview (`kubectl auth whoami`),
//! SelfSubjectAccessReview and SelfSubjectRulesReview (`kubectl auth can-i [--list]`).
//!
//! There is no authorizer yet (RBAC comes later): every authenticated user may do
//! everything, and the answers say so rather than pretend otherwise.

use serde_json::{Value, json};

use crate::registry::Resource;
use crate::{ApiError, Identity};

/// Why everything is allowed, as the `reason` of an access review.
const ALLOW_ALL: &str = "skiff has no authorizer configured: every authenticated user is allowed";

/// Answers a review of `resource` asked by `who`; `None` if `resource` is not a review kind.
pub(crate) fn answer(
    resource: &Resource,
    who: &Identity,
    request: &Value,
) -> Option<Result<Value, ApiError>> {
    let answered = match (resource.group, resource.kind) {
        ("authentication.k8s.io", "SelfSubjectReview") => json!({ "userInfo": who.user_info() }),
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            let spec = &request["spec"];
            if !spec["resourceAttributes"].is_object() && !spec["nonResourceAttributes"].is_object()
            {
                return Some(Err(ApiError::invalid(
                    resource,
                    "",
                    "spec.resourceAttributes",
                    "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )));
            }
            json!({ "allowed": true, "reason": ALLOW_ALL })
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => json!({
            "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }],
            "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
            "incomplete": false,
        }),
        _ => return None,
    };
    let mut reply = json!({
        "kind": resource.kind,
        "apiVersion": resource.group_version(),
        "metadata": { "creationTimestamp": null },
        "status": answered,
    });
    if let Some(spec) = request.get("spec") {
        reply["spec"] = spec.clone();
    }
    Some(Ok(reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn review(kind: &str) -> Resource {
        Registry::builtin()
            .resources()
            .iter()
            .find(|r| r.kind == kind)
            .unwrap()
            .clone()
    }

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            groups: vec!["devs".into(), "system:authenticated".into()],
            ..Identity::default()
        }
    }

    #[test]
    fn whoami_reports_the_authenticated_identity() {
        let reply = answer(&review("SelfSubjectReview"), &alice(), &json!({}))
            .unwrap()
            .unwrap();
        assert_eq!(reply["status"]["userInfo"]["username"], "alice");
        assert_eq!(reply["status"]["userInfo"]["groups"][0], "devs");
    }

    #[test]
    fn access_reviews_need_attributes_and_are_allowed() {
        let ssar = review("SelfSubjectAccessReview");
        let request = json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}});
        let reply = answer(&ssar, &alice(), &request).unwrap().unwrap();
        assert_eq!(reply["status"]["allowed"], true);
        assert_eq!(reply["spec"], request["spec"]);
        let err = answer(&ssar, &alice(), &json!({"spec": {}}))
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer(&review("ConfigMap"), &alice(), &json!({})).is_none());
    }
}
