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
