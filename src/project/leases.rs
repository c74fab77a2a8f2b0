//! Item leases outside the actor's memory, so that a process taking a project over (its owner
//! died) knows which items are out with which labeller, in which stage. The actor keeps
//! deciding; the mirror only remembers (Redis in hosted mode, nothing in embedded mode).

use futures_util::future::BoxFuture;

/// One lease as remembered: an item out with a labeller until `expires` (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct HeldLease {
    pub item_id: i64,
    pub user_id: i64,
    pub expires: i64,
    pub test: bool,
}

pub trait LeaseMirror: Send + Sync {
    /// Remembers leases just handed out (fire and forget: the actor never waits).
    fn held(&self, leases: Vec<HeldLease>);
    /// Forgets the leases of these items (labelled, skipped, released).
    fn released(&self, item_ids: Vec<i64>);
    /// The leases remembered for the project, for an actor starting up.
    fn load(&self) -> BoxFuture<'static, Result<Vec<HeldLease>, String>>;
}
