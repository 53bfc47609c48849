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
        let qualified = if resource.group.is_empty() {
            resource.plural.to_owned()
        } else {
            format!("{}.{}", resource.plural, resource.group)
        };
        ApiError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: format!("{qualified} \"{name}\" not found"),
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

    pub fn gone(message: String) -> Self {
        ApiError {
            code: StatusCode::GONE,
            reason: "Expired",
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
