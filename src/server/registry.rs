//! The projects this process serves, by organisation and id: those of `--config` files and
//! those created through the API. A created project is listed from the moment it exists; it
//! gets its actor (a `ProjectHandle`) once its dataset is in and indexed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;

use crate::config::TaskConfig;
use crate::project::events::Events;
use crate::project::settings::ProjectSettings;
use crate::project::ProjectHandle;
use crate::store::ProjectScope;

/// Where a project's items come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A `--config` file's dataset.
    Config,
    /// Files uploaded through the API.
    Upload,
    /// Objects under a prefix of a bucket, copied in.
    S3 { bucket: String, prefix: String },
}

/// Where a created project is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AwaitingUpload,
    Importing,
    Indexing,
    /// Open: items registered, the trainer embedding them (or done).
    Ready,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingUpload => "awaiting_upload",
            Status::Importing => "importing",
            Status::Indexing => "indexing",
            Status::Ready => "ready",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "awaiting_upload" => Status::AwaitingUpload,
            "importing" => Status::Importing,
            "indexing" => Status::Indexing,
            "ready" => Status::Ready,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

/// A file refused during upload, import or indexing, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub name: String,
    pub reason: String,
}

/// Progress of getting a created project's dataset in.
#[derive(Clone, Debug, Serialize)]
pub struct Ingest {
    pub status: Status,
    pub files: u64,
    pub bytes: u64,
    pub rejected: Vec<Rejected>,
    pub error: Option<String>,
}

/// Refused files kept for the progress view: enough to act on, bounded against hostile input.
pub const MAX_REJECTED_SHOWN: usize = 1000;

impl Ingest {
    pub fn reject(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        if self.rejected.len() < MAX_REJECTED_SHOWN {
            self.rejected.push(Rejected { name: name.into(), reason: reason.into() });
        }
    }
}

pub struct Entry {
    pub scope: ProjectScope,
    pub slug: String,
    pub config: Arc<TaskConfig>,
    pub source: Source,
    pub settings: Arc<RwLock<ProjectSettings>>,
    pub ingest: Mutex<Ingest>,
    /// The project's event stream in this process: its actor publishes to it when this process
    /// owns the project; otherwise events arrive through Redis from the owner.
    pub events: Events,
    handle: OnceLock<ProjectHandle>,
    /// The process that runs the project's actor, when it is not this one (its URL).
    remote: RwLock<Option<String>>,
}

impl Entry {
    pub fn new(
        scope: ProjectScope,
        slug: &str,
        config: Arc<TaskConfig>,
        source: Source,
        settings: ProjectSettings,
        status: Status,
        events: Events,
    ) -> Entry {
        Entry {
            scope,
            slug: slug.to_string(),
            config,
            source,
            settings: Arc::new(RwLock::new(settings)),
            ingest: Mutex::new(Ingest { status, files: 0, bytes: 0, rejected: Vec::new(), error: None }),
            events,
            handle: OnceLock::new(),
            remote: RwLock::new(None),
        }
    }

    /// The URL of the process that owns the project, when another one does.
    pub fn remote_owner(&self) -> Option<String> {
        self.remote.read().ok().and_then(|r| r.clone())
    }

    pub fn set_remote_owner(&self, owner: Option<String>) {
        if let Ok(mut r) = self.remote.write() {
            *r = owner;
        }
    }

    /// The running project, once it is open here (and while this process owns it).
    pub fn handle(&self) -> Option<&ProjectHandle> {
        if self.remote_owner().is_some() {
            return None;
        }
        self.handle.get()
    }

    /// Whether this process has opened the project at some point (its actor exists).
    pub fn opened_here(&self) -> bool {
        self.handle.get().is_some()
    }

    /// Records the opened project (once; a second open of the same entry is a bug upstream).
    pub fn set_open(&self, handle: ProjectHandle) {
        if self.handle.set(handle).is_err() {
            tracing::error!(project = %self.slug, "a project was opened twice; the first stays");
        }
        self.set_status(Status::Ready, None);
    }

    pub fn status(&self) -> Status {
        self.ingest.lock().map(|i| i.status).unwrap_or(Status::Failed)
    }

    pub fn set_status(&self, status: Status, error: Option<String>) {
        if let Ok(mut i) = self.ingest.lock() {
            i.status = status;
            i.error = error;
        }
    }

    /// What the API shows: `embedding` while an open project's items are being encoded.
    pub fn shown_status(&self) -> &'static str {
        if self.remote_owner().is_some() {
            return self.status().as_str();
        }
        match self.handle() {
            Some(h) if h.cx.rows.read().map(|r| r.is_none()).unwrap_or(false) => "embedding",
            Some(_) => "ready",
            None => self.status().as_str(),
        }
    }

    pub fn settings(&self) -> ProjectSettings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    entries: RwLock<BTreeMap<(i64, String), Arc<Entry>>>,
}

impl Registry {
    /// Adds a project; false when the organisation already has one by that id.
    pub fn insert(&self, entry: Arc<Entry>) -> bool {
        let Ok(mut entries) = self.entries.write() else { return false };
        let key = (entry.scope.org_id, entry.slug.clone());
        if entries.contains_key(&key) {
            return false;
        }
        entries.insert(key, entry);
        true
    }

    pub fn get(&self, org_id: i64, slug: &str) -> Option<Arc<Entry>> {
        self.entries.read().ok()?.get(&(org_id, slug.to_string())).cloned()
    }

    /// The organisation's projects, by id.
    pub fn of_org(&self, org_id: i64) -> Vec<Arc<Entry>> {
        let Ok(entries) = self.entries.read() else { return Vec::new() };
        entries
            .range((org_id, String::new())..)
            .take_while(|((o, _), _)| *o == org_id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Whether a project with this id (of any organisation) is run by another process: then its
    /// requests may need forwarding.
    pub fn any_remote(&self, slug: &str) -> bool {
        let Ok(entries) = self.entries.read() else { return false };
        entries.iter().any(|((_, s), e)| s == slug && e.remote_owner().is_some())
    }

    /// Every project (all organisations): for the process's own bookkeeping only.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.entries.read().map(|e| e.values().cloned().collect()).unwrap_or_default()
    }
}
