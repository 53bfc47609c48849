//! The one place errors become HTTP responses: a `metav1.Status` body with the status code,
//! reason and message kubectl prints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

/// An error the API reports to its client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: StatusCode,
    /// The machine-readable reason (`NotFound`, `Unauthorized`, ...), as kube-apiserver uses.
    pub reason: &'static str,
    pub message: String,
    /// What the error is about, with field-level causes (kubectl prints them).
    pub details: Option<Box<Details>>,
}

/// `metav1.StatusDetails`: the object the error concerns and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Cause>,
}

/// `metav1.StatusCause`: one reason, usually about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl ApiError {
    pub fn unauthorized() -> Self {
        ApiError {
            code: StatusCode::UNAUTHORIZED,
            reason: "Unauthorized",
            message: "Unauthorized".to_owned(),
            details: None,
        }
    }

    pub fn not_found_path() -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_owned(),
            details: None,
        }
    }

    /// `<plural> "<name>" not found`, as kubectl prints it.
    pub fn not_found(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", qualified(resource)),
            details: None,
        }
        .with_details(about(resource, name))
    }

    pub fn not_found_namespace(name: &str) -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("namespaces \"{name}\" not found"),
            details: None,
        }
    }

    pub fn method_not_allowed(verb: &str, resource: &crate::Resource) -> Self {
        ApiError {
            code: StatusCode::METHOD_NOT_ALLOWED,
            reason: "MethodNotAllowed",
            message: format!(
                "{verb} is not supported on resources of kind {:?}",
                resource.plural
            ),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    pub fn already_exists(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", qualified(resource)),
            details: None,
        }
        .with_details(about(resource, name))
    }

    pub fn conflict(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(resource)
            ),
            details: None,
        }
        .with_details(about(resource, name))
    }

    /// A field that fails validation (422), with the message kubectl prints.
    pub fn invalid(resource: &crate::Resource, name: &str, field: &str, detail: &str) -> Self {
        let reason = if detail.starts_with("Required value") {
            "FieldValueRequired"
        } else {
            "FieldValueInvalid"
        };
        ApiError {
            code: StatusCode::UNPROCESSABLE_ENTITY,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {field}: {detail}", resource.kind),
            details: None,
        }
        .with_details(Details {
            name: name.to_owned(),
            group: resource.group.to_owned(),
            kind: resource.kind.to_owned(),
            causes: vec![Cause {
                reason: reason.to_owned(),
                message: detail.to_owned(),
                field: field.to_owned(),
            }],
        })
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::FORBIDDEN,
            reason: "Forbidden",
            message: message.into(),
            details: None,
        }
    }

    pub fn from_status_code(code: StatusCode, message: String) -> Self {
        let reason = match code {
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::NOT_ACCEPTABLE => "NotAcceptable",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
            _ => "InternalError",
        };
        ApiError {
            code,
            reason,
            message,
            details: None,
        }
    }

    pub fn gone(message: String) -> Self {
        ApiError {
            code: StatusCode::GONE,
            reason: "Expired",
            message,
            details: None,
        }
    }

    /// A watch or list from a revision compaction has removed.
    pub fn expired(requested: i64, compacted: i64) -> Self {
        ApiError::gone(format!(
            "too old resource version: {requested} ({compacted})"
        ))
    }

    /// A request for a revision this server has not caught up with in time.
    pub fn timeout(message: String) -> Self {
        ApiError {
            code: StatusCode::GATEWAY_TIMEOUT,
            reason: "Timeout",
            message,
            details: None,
        }
    }

    /// A server-side failure; the message says what, never a bare 500.
    pub fn internal(message: String) -> Self {
        ApiError {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "InternalError",
            message,
            details: None,
        }
    }

    /// The request may succeed later (429), e.g. an eviction a disruption budget holds back.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::TOO_MANY_REQUESTS,
            reason: "TooManyRequests",
            message: message.into(),
            details: None,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            reason: "ServiceUnavailable",
            message: message.into(),
            details: None,
        }
    }

    /// Attaches the object the error concerns and its causes.
    pub fn with_details(mut self, details: Details) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn status(&self) -> Status {
        Status {
            status: Some("Failure".to_owned()),
            message: Some(self.message.clone()),
            reason: Some(self.reason.to_owned()),
            code: Some(i32::from(self.code.as_u16())),
            details: self.details.as_ref().map(|d| StatusDetails {
                name: non_empty(&d.name),
                group: non_empty(&d.group),
                kind: non_empty(&d.kind),
                causes: (!d.causes.is_empty()).then(|| {
                    d.causes
                        .iter()
                        .map(|c| StatusCause {
                            reason: non_empty(&c.reason),
                            message: non_empty(&c.message),
                            field: non_empty(&c.field),
                        })
                        .collect()
                }),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code, Json(self.status())).into_response()
    }
}

/// `pods`, or `deployments.apps` for named groups, as kube-apiserver names resources in
/// messages.
fn qualified(resource: &crate::Resource) -> String {
    if resource.group.is_empty() {
        resource.plural.to_owned()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// The object an error is about, as kube-apiserver names it in `details` (the resource's plural
/// as `kind`).
fn about(resource: &crate::Resource, name: &str) -> Details {
    Details {
        name: name.to_owned(),
        group: resource.group.to_owned(),
        kind: resource.plural.to_owned(),
        causes: Vec::new(),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}
