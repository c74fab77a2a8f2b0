//! The browser app, embedded in the binary at build time (see build.rs). Unknown non-API
//! paths get `index.html` so that client-side routes survive a reload.

use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/frontend"]
struct Dist;

fn file(path: &str) -> Option<HttpResponse> {
    let asset = Dist::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    // Vite names assets by content hash: they never change, so they may be cached for good.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    Some(
        HttpResponse::Ok()
            .content_type(mime.as_ref())
            .insert_header(("Cache-Control", cache))
            .body(asset.data.into_owned()),
    )
}

async fn spa(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    if path.starts_with("api/") {
        let err = crate::server::error::ApiError::NotFound(format!("no route for {}", req.path()));
        return actix_web::ResponseError::error_response(&err);
    }
    if let Some(res) = file(path) {
        return res;
    }
    if path.starts_with("assets/") {
        return HttpResponse::NotFound().finish();
    }
    file("index.html").unwrap_or_else(|| HttpResponse::NotFound().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(spa));
}
