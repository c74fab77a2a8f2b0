//! Who may do what. The same table guards REST and WebSocket routes (docs/ACCESS.md).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Labeller,
    Admin,
    Owner,
}

/// What a route does, as far as access is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Projects, items, stats, events.
    Read,
    /// Scoring new data with the project's model.
    Score,
    /// Labels, undo, skip, confirming auto-label batches.
    Label,
    /// Exporting labels and downloading models (audited).
    Export,
    /// Creating and revoking API keys.
    ManageKeys,
    /// Listing members, changing roles, removing members, invitations.
    ManageMembers,
    /// Creating projects, uploading or importing their data, changing their settings.
    ManageProjects,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "labeller" => Some(Role::Labeller),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Labeller => "labeller",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read | Action::Score => true,
            Action::Label => self >= Role::Labeller,
            Action::Export | Action::ManageKeys | Action::ManageMembers | Action::ManageProjects => self >= Role::Admin,
        }
    }

    /// Whether someone of this role may give (or take away) `other`: admins manage everyone
    /// below owner, owners everyone.
    pub fn may_assign(self, other: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => other < Role::Owner,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        assert!(Role::Viewer.allows(Action::Read));
        assert!(!Role::Viewer.allows(Action::Label));
        assert!(Role::Labeller.allows(Action::Label));
        assert!(!Role::Labeller.allows(Action::Export));
        assert!(Role::Admin.allows(Action::ManageKeys));
        assert!(Role::Admin.may_assign(Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Owner.may_assign(Role::Owner));
        for r in [Role::Viewer, Role::Labeller, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
