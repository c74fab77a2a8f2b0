//! Which process runs a project's actor when several share one database (ARCHITECTURE.md).
//!
//! Every process identifies itself by the URL other processes can reach it at
//! (`--advertise-url`). Before opening a project it claims it (a lease row in the database,
//! `store::owners`); a project someone else holds stays registered here as *remote*, and its
//! requests are forwarded to the owner (`server::forward`). A loop renews this process's leases
//! and takes over projects whose owner stopped renewing, rebuilding their actors from the
//! database exactly as a restart does; it also registers projects created on other processes.

use std::sync::Arc;
use std::time::Duration;

use super::registry::{Entry, Status};
use super::AppState;

/// Several processes share projects only through Redis (events, rate limits, leases); without
/// it a process is alone and runs every project it has, claiming nothing.
fn shared(state: &AppState) -> bool {
    state.open.relay.is_some()
}

/// Claims the project for this process. True when this process may open it.
pub async fn claim(state: &AppState, entry: &Entry) -> anyhow::Result<bool> {
    if !shared(state) {
        return Ok(true);
    }
    let owner = state.store.claim_project(entry.scope.project_id, &state.instance, state.owner_ttl_ms).await?;
    if owner == state.instance {
        entry.set_remote_owner(None);
        Ok(true)
    } else {
        tracing::info!(project = %entry.slug, owner = %owner, "the project is run by another process");
        entry.set_remote_owner(Some(owner));
        Ok(false)
    }
}

/// Renews leases and takes over lapsed projects, every third of the lease's lifetime.
pub fn start(state: Arc<AppState>) {
    if !shared(&state) {
        return;
    }
    let every = Duration::from_millis((state.owner_ttl_ms / 3).max(200) as u64);
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = round(&state).await {
                tracing::warn!(error = %format!("{e:#}"), "project ownership round failed");
            }
        }
    });
}

async fn round(state: &Arc<AppState>) -> anyhow::Result<()> {
    let mine = state.store.renew_projects(&state.instance, state.owner_ttl_ms).await?;
    super::ingest::register_hosted_projects(state).await?;
    for entry in state.projects.all() {
        let owned = mine.contains(&entry.scope.project_id);
        match (entry.remote_owner(), owned) {
            // Lost: the lease lapsed (this process was cut off from the database for longer
            // than its lifetime) and someone else took over. Requests go there from now on; the
            // local actor stays idle until this process restarts.
            (None, false) => {
                let owner = state.store.project_owner(entry.scope.project_id).await?.map(|(o, _)| o);
                if owner.as_deref() != Some(state.instance.as_str()) {
                    tracing::error!(project = %entry.slug, owner = ?owner, "lost the project to another process");
                    entry.set_remote_owner(owner);
                }
            }
            (Some(_), _) => take_over_if_lapsed(state, &entry).await?,
            _ => {}
        }
    }
    let owned = state.projects.all().iter().filter(|e| e.handle().is_some()).count();
    state.metrics.owned_projects.set(owned as i64);
    Ok(())
}

async fn take_over_if_lapsed(state: &Arc<AppState>, entry: &Arc<Entry>) -> anyhow::Result<()> {
    let lapsed = match state.store.project_owner(entry.scope.project_id).await? {
        Some((_, expires_at)) => expires_at < crate::store::now_ms(),
        None => true,
    };
    if !lapsed || !claim(state, entry).await? {
        return Ok(());
    }
    tracing::warn!(project = %entry.slug, "took the project over from a process that stopped renewing it");
    if entry.opened_here() {
        return Ok(());
    }
    let status = state.store.project_row(entry.scope).await?.status;
    entry.set_status(Status::parse(&status).unwrap_or(Status::Failed), None);
    super::ingest::resume(state.clone(), entry.clone()).await;
    Ok(())
}
