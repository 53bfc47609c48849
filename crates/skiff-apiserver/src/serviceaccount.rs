//! Service-account tokens. TokenRequest (`serviceaccounts/<name>/token`, what `kubectl create
//! token` asks for) issues JWTs signed with the cluster's service-account key, bound by uid to
//! the ServiceAccount and optionally to a Pod, Secret or Node. Bearer authentication and
//! TokenReview accept such a token only while its signature, issuer, audience and lifetime
//! hold and the objects it is bound to still exist with the same uids, as kube-apiserver's
//! service-account authenticator does. The OIDC discovery documents publish the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_pki::SigningKey;

use crate::registry::{Registry, Resource};
use crate::{ApiError, AppState, Identity, objects};

/// The issuer (`iss`) of every token, and the audience the API server itself accepts unless
/// told otherwise: k3s's and kubeadm's default.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// kube-apiserver's default and limits for `spec.expirationSeconds`.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// The groups every service account is in, beside its namespace's.
const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// Issues and verifies service-account tokens.
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    /// The audiences the API server accepts for authentication.
    api_audiences: Vec<String>,
}

/// What a token says (RFC 7519 registered claims plus Kubernetes' private ones).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubernetesClaims,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KubernetesClaims {
    namespace: String,
    serviceaccount: BoundRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod: Option<BoundRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<BoundRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<BoundRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BoundRef {
    name: String,
    uid: String,
}

/// The kinds a token may be bound to, as (kind, plural, namespaced).
const BINDABLE: &[(&str, &str, bool)] = &[
    ("Pod", "pods", true),
    ("Secret", "secrets", true),
    ("Node", "nodes", false),
];

impl TokenIssuer {
    /// An issuer signing with `key` as [`DEFAULT_ISSUER`], accepting that audience.
    pub fn new(key: SigningKey) -> TokenIssuer {
        TokenIssuer {
            key,
            issuer: DEFAULT_ISSUER.to_owned(),
            api_audiences: vec![DEFAULT_ISSUER.to_owned()],
        }
    }

    /// `/.well-known/openid-configuration`: where relying parties find the keys.
    pub(crate) fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// `/openid/v1/jwks`: the public signing key.
    pub(crate) fn jwks(&self) -> Value {
        let (x, y) = self.key.public_coordinates();
        json!({"keys": [{
            "use": "sig", "kty": "EC", "crv": "P-256", "alg": "ES256",
            "kid": self.key.key_id(), "x": x, "y": y,
        }]})
    }

    fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| ApiError::internal(format!("encoding token claims: {e}")))?;
        self.key
            .sign(&payload)
            .map_err(|e| ApiError::internal(format!("signing a token: {e}")))
    }

    /// The claims of a token this issuer signed that is valid now for one of `audiences`
    /// (the API's own when empty); `None` otherwise. Bound objects are not checked here.
    fn verify(&self, token: &str, audiences: &[String], now: i64) -> Option<Claims> {
        let claims: Claims = serde_json::from_slice(&self.key.verify(token)?).ok()?;
        let accepted = if audiences.is_empty() {
            &self.api_audiences
        } else {
            audiences
        };
        let valid = claims.iss == self.issuer
            && claims.nbf <= now
            && now < claims.exp
            && claims.aud.iter().any(|a| accepted.contains(a));
        valid.then_some(claims)
    }
}

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest answered with a signed token.
pub(crate) async fn request_token(
    state: &AppState,
    registry: &Registry,
    namespace: &str,
    name: &str,
    request: &Value,
) -> Result<Value, ApiError> {
    let accounts = registry
        .find("", "v1", "serviceaccounts")
        .ok_or_else(ApiError::not_found_path)?;
    let spec = &request["spec"];
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        value => value.as_i64().unwrap_or(0),
    };
    let invalid = |field: &str, detail: String| {
        let mut error = ApiError::invalid(accounts, name, field, &detail);
        error.message =
            format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: {field}: {detail}");
        error
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => state.token_issuer().api_audiences.clone(),
    };
    let account = objects::get(&state.store, accounts, Some(namespace), name).await?;
    let mut kubernetes = KubernetesClaims {
        namespace: namespace.to_owned(),
        serviceaccount: BoundRef {
            name: name.to_owned(),
            uid: uid_of(&account).to_owned(),
        },
        pod: None,
        secret: None,
        node: None,
    };
    let bound = &spec["boundObjectRef"];
    if bound.is_object() {
        let kind = bound["kind"].as_str().unwrap_or_default();
        let Some(&(_, plural, namespaced)) = BINDABLE.iter().find(|(k, _, _)| *k == kind) else {
            return Err(invalid(
                "spec.boundObjectRef.kind",
                format!(
                    "Unsupported value: {kind:?}: supported values: \"Pod\", \"Secret\", \"Node\""
                ),
            ));
        };
        let bound_name = bound["name"].as_str().unwrap_or_default();
        if bound_name.is_empty() {
            return Err(invalid(
                "spec.boundObjectRef.name",
                "Required value".to_owned(),
            ));
        }
        let resource = registry
            .find("", "v1", plural)
            .ok_or_else(ApiError::not_found_path)?;
        let object = objects::get(
            &state.store,
            resource,
            namespaced.then_some(namespace),
            bound_name,
        )
        .await?;
        let uid = uid_of(&object);
        if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
            && wanted != uid
        {
            let mut error = ApiError::conflict(resource, bound_name);
            error.message = format!(
                "Operation cannot be fulfilled on {plural} \"{bound_name}\": the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
            );
            return Err(error);
        }
        let reference = Some(BoundRef {
            name: bound_name.to_owned(),
            uid: uid.to_owned(),
        });
        match kind {
            "Pod" => kubernetes.pod = reference,
            "Secret" => kubernetes.secret = reference,
            _ => kubernetes.node = reference,
        }
    }
    let issuer = state.token_issuer();
    let now = unix_now();
    let claims = Claims {
        iss: issuer.issuer.clone(),
        sub: format!("system:serviceaccount:{namespace}:{name}"),
        aud: audiences.clone(),
        exp: now + expiration,
        iat: now,
        nbf: now,
        jti: objects::new_uid(),
        kubernetes,
    };
    let token = issuer.sign(&claims)?;
    let mut reply = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": objects::now_rfc3339(),
        },
        "spec": {
            "audiences": audiences,
            "expirationSeconds": expiration,
        },
        "status": {
            "token": token,
            "expirationTimestamp": rfc3339(claims.exp),
        },
    });
    if bound.is_object() {
        reply["spec"]["boundObjectRef"] = bound.clone();
    }
    Ok(reply)
}

/// The identity of a bearer token if it is a valid service-account token for the API.
pub(crate) async fn authenticate(state: &AppState, token: &str) -> Option<Identity> {
    let claims = state.token_issuer().verify(token, &[], unix_now())?;
    still_bound(state, &claims).await.then(|| identity(&claims))
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: whether a token is valid, and whose.
pub(crate) async fn review(state: &AppState, resource: &Resource, request: &Value) -> Value {
    let spec = &request["spec"];
    let token = spec["token"].as_str().unwrap_or_default();
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let issuer = state.token_issuer();
    let verified = match issuer.verify(token, &audiences, unix_now()) {
        Some(claims) if still_bound(state, &claims).await => Some(claims),
        _ => None,
    };
    let status = match verified {
        Some(claims) => {
            let who = identity(&claims);
            let wanted = if audiences.is_empty() {
                issuer.api_audiences.clone()
            } else {
                audiences
            };
            let matched: Vec<&String> = wanted.iter().filter(|a| claims.aud.contains(a)).collect();
            json!({
                "authenticated": true,
                "user": who.user_info(),
                "audiences": matched,
            })
        }
        None => json!({
            "authenticated": false,
            "user": {},
            "error": "invalid bearer token",
        }),
    };
    json!({
        "kind": resource.kind,
        "apiVersion": resource.group_version(),
        "metadata": { "creationTimestamp": null },
        "spec": spec,
        "status": status,
    })
}

/// Whether the service account and any object the token is bound to still exist with the
/// uids the token names (the watch cache first; the store for what it has not seen yet).
async fn still_bound(state: &AppState, claims: &Claims) -> bool {
    let k = &claims.kubernetes;
    let mut bindings = vec![(
        "serviceaccounts",
        Some(k.namespace.as_str()),
        &k.serviceaccount,
    )];
    if let Some(pod) = &k.pod {
        bindings.push(("pods", Some(k.namespace.as_str()), pod));
    }
    if let Some(secret) = &k.secret {
        bindings.push(("secrets", Some(k.namespace.as_str()), secret));
    }
    if let Some(node) = &k.node {
        bindings.push(("nodes", None, node));
    }
    let registry = state.registry();
    for (plural, namespace, reference) in bindings {
        let Some(resource) = registry.find("", "v1", plural) else {
            return false;
        };
        let key = objects::key(resource, namespace, &reference.name);
        let object = match state.cache.get(&key) {
            Some(object) => Some(object.to_value()),
            None => objects::get(&state.store, resource, namespace, &reference.name)
                .await
                .ok(),
        };
        let Some(object) = object else {
            return false;
        };
        if uid_of(&object) != reference.uid {
            return false;
        }
    }
    true
}

/// Who a token's holder is: `system:serviceaccount:<ns>:<name>`, in the service-account
/// groups, with what it is bound to as extra attributes (as kube-apiserver reports them).
fn identity(claims: &Claims) -> Identity {
    let k = &claims.kubernetes;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    extra.insert(
        "authentication.kubernetes.io/credential-id".to_owned(),
        vec![format!("JTI={}", claims.jti)],
    );
    if let Some(pod) = &k.pod {
        extra.insert(
            "authentication.kubernetes.io/pod-name".to_owned(),
            vec![pod.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".to_owned(),
            vec![pod.uid.clone()],
        );
    }
    if let Some(node) = &k.node {
        extra.insert(
            "authentication.kubernetes.io/node-name".to_owned(),
            vec![node.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/node-uid".to_owned(),
            vec![node.uid.clone()],
        );
    }
    Identity {
        user: claims.sub.clone(),
        uid: Some(k.serviceaccount.uid.clone()),
        groups: vec![
            ALL_SERVICE_ACCOUNTS_GROUP.to_owned(),
            format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{}", k.namespace),
            crate::authn::AUTHENTICATED_GROUP.to_owned(),
        ],
        extra,
    }
}

fn uid_of(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SigningKey::generate().unwrap())
    }

    fn claims(aud: &str, nbf: i64, exp: i64) -> Claims {
        Claims {
            iss: DEFAULT_ISSUER.to_owned(),
            sub: "system:serviceaccount:ns:sa".to_owned(),
            aud: vec![aud.to_owned()],
            exp,
            iat: nbf,
            nbf,
            jti: "j".to_owned(),
            kubernetes: KubernetesClaims {
                namespace: "ns".to_owned(),
                serviceaccount: BoundRef {
                    name: "sa".to_owned(),
                    uid: "u".to_owned(),
                },
                pod: None,
                secret: None,
                node: None,
            },
        }
    }

    #[test]
    fn tokens_hold_only_for_their_audience_and_lifetime() {
        let issuer = issuer();
        let token = issuer.sign(&claims(DEFAULT_ISSUER, 1000, 2000)).unwrap();
        assert!(issuer.verify(&token, &[], 1500).is_some());
        assert!(issuer.verify(&token, &[], 999).is_none(), "not yet valid");
        assert!(issuer.verify(&token, &[], 2000).is_none(), "expired");
        assert!(
            issuer.verify(&token, &["vault".to_owned()], 1500).is_none(),
            "another audience"
        );
        let vault = issuer.sign(&claims("vault", 1000, 2000)).unwrap();
        assert!(
            issuer.verify(&vault, &[], 1500).is_none(),
            "not for the API"
        );
        assert!(issuer.verify(&vault, &["vault".to_owned()], 1500).is_some());
        let mut foreign = claims(DEFAULT_ISSUER, 1000, 2000);
        foreign.iss = "https://elsewhere".to_owned();
        let foreign = issuer.sign(&foreign).unwrap();
        assert!(
            issuer.verify(&foreign, &[], 1500).is_none(),
            "another issuer"
        );
        // Signed by another key.
        assert!(self::issuer().verify(&token, &[], 1500).is_none());
    }

    #[test]
    fn identities_name_the_service_account_and_its_groups() {
        let who = identity(&claims(DEFAULT_ISSUER, 0, 1));
        assert_eq!(who.user, "system:serviceaccount:ns:sa");
        assert_eq!(who.uid.as_deref(), Some("u"));
        assert_eq!(
            who.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        assert_eq!(
            who.extra["authentication.kubernetes.io/credential-id"],
            ["JTI=j"]
        );
    }

    #[test]
    fn published_keys_name_the_signing_key() {
        let issuer = issuer();
        let jwks = issuer.jwks();
        assert_eq!(jwks["keys"][0]["kid"], issuer.key.key_id());
        assert_eq!(jwks["keys"][0]["x"].as_str().unwrap().len(), 43);
        assert_eq!(
            issuer.openid_configuration()["jwks_uri"],
            "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
        );
    }
}
