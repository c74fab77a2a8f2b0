//! Every error the API returns, and the one place it becomes an HTTP status and a JSON body:
//! `{"error": {"code": "<stable>", "message": "<for people>"}}`. Never a 200.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::project::compute::ScoreError;
use crate::project::state::LabelRefusal;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    LeasedElsewhere(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    UnknownClass(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this API key is over its rate limit; retry in {0} s")]
    RateLimited(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::LeasedElsewhere(_) => "leased_elsewhere",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::UnknownClass(_) => "unknown_class",
            ApiError::Unprocessable(_) => "unprocessable_input",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::LeasedElsewhere(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UnknownClass(_) | ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotReady(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Overloaded(_)) {
            res.insert_header(("Retry-After", "1"));
        }
        if let ApiError::RateLimited(seconds) = self {
            res.insert_header(("Retry-After", seconds.to_string()));
        }
        if matches!(self, ApiError::Unauthenticated(_)) {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        res.json(serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}

impl From<LabelRefusal> for ApiError {
    fn from(e: LabelRefusal) -> Self {
        match e {
            LabelRefusal::UnknownItem(_) => ApiError::NotFound(e.to_string()),
            LabelRefusal::UnknownClass(_) => ApiError::UnknownClass(e.to_string()),
            LabelRefusal::LeasedElsewhere(_) => ApiError::LeasedElsewhere(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Db(e) => ApiError::Internal(e.to_string()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Closed => ApiError::Internal("the database writer has stopped".into()),
        }
    }
}

impl From<ScoreError> for ApiError {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::NotReady => ApiError::NotReady(e.to_string()),
            ScoreError::Overloaded => ApiError::Overloaded(e.to_string()),
            ScoreError::Failed(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::NotReady(format!("the project is restarting ({e}); retry"))
    }
}

/// Maps actix-web's JSON extractor errors (body too big, wrong content type, bad JSON).
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge(limit),
        E::ContentType => ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()),
        E::Deserialize(e) => ApiError::InvalidJson(e.to_string()),
        other => ApiError::BadRequest(other.to_string()),
    }
}
