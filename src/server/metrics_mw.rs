//! HTTP metrics: every request counted and timed under its route template
//! (`/api/v1/projects/{pid}/labels`), never its concrete path, so ids never become label
//! values. Requests that match no route share the template `unmatched`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    // Only the methods the API uses become label values; anything else is `other`.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
        let status = res.status().as_u16().to_string();
        m.http_requests.with_label_values(&[route.as_str(), method, status.as_str()]).inc();
        m.http_duration.with_label_values(&[route.as_str(), method]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}
