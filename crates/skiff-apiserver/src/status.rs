//! The one place errors become HTTP responses: a `metav1.Status` body with the status code,
//! reason and message kubectl prints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

/// An error the API reports to its client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: StatusCode,
    /// The machine-readable reason (`NotFound`, `Unauthorized`, ...), as kube-apiserver uses.
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn unauthorized() -> Self {
        ApiError {
            code: StatusCode::UNAUTHORIZED,
            reason: "Unauthorized",
            message: "Unauthorized".to_owned(),
        }
    }

    pub fn not_found_path() -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_owned(),
        }
    }

    /// `<plural> "<name>" not found`, as kubectl prints it.
    pub fn not_found(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", qualified(resource)),
        }
    }

    pub fn not_found_namespace(name: &str) -> Self {
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("namespaces \"{name}\" not found"),
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
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    pub fn already_exists(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", qualified(resource)),
        }
    }

    pub fn conflict(resource: &crate::Resource, name: &str) -> Self {
        ApiError {
            code: StatusCode::CONFLICT,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(resource)
            ),
        }
    }

    /// A field that fails validation (422), with the message kubectl prints.
    pub fn invalid(resource: &crate::Resource, name: &str, field: &str, detail: &str) -> Self {
        ApiError {
            code: StatusCode::UNPROCESSABLE_ENTITY,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {field}: {detail}", resource.kind),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::FORBIDDEN,
            reason: "Forbidden",
            message: message.into(),
        }
    }

    pub fn from_status_code(code: StatusCode, message: String) -> Self {
        let reason = match code {
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            StatusCode::BAD_REQUEST => "BadRequest",
            _ => "InternalError",
        };
        ApiError {
            code,
            reason,
            message,
        }
    }

    pub fn gone(message: String) -> Self {
        ApiError {
            code: StatusCode::GONE,
            reason: "Expired",
            message,
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
        }
    }

    /// A server-side failure; the message says what, never a bare 500.
    pub fn internal(message: String) -> Self {
        ApiError {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "InternalError",
            message,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            code: StatusCode::SERVICE_UNAVAILABLE,
            reason: "ServiceUnavailable",
            message: message.into(),
        }
    }

    pub fn status(&self) -> Status {
        Status {
            status: Some("Failure".to_owned()),
            message: Some(self.message.clone()),
            reason: Some(self.reason.to_owned()),
            code: Some(i32::from(self.code.as_u16())),
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
