//! The settings of a project that can change while it runs: shown to labellers (title,
//! description), used by the actor (auto-label threshold) and by the trainer's next ranking
//! (strategy). They start from the task config; changes made through the API are stored in the
//! database and laid over the config at the next start.

use serde::{Deserialize, Serialize};

use crate::config::TaskConfig;
use crate::ml::strategy::StrategyKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectSettings {
    pub title: String,
    pub description: String,
    pub auto_label_threshold: f64,
    pub strategy: StrategyKind,
    /// Share of labelled items also given to a second labeller (agreement statistics).
    pub overlap: f64,
}

/// A change requested through the API: every field optional, unknown ones refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub auto_label_threshold: Option<f64>,
    pub strategy: Option<String>,
    pub overlap: Option<f64>,
}

impl ProjectSettings {
    /// The config's values. The config was validated, so its strategy name parses.
    pub fn from_config(config: &TaskConfig) -> ProjectSettings {
        ProjectSettings {
            title: config.task.title.clone(),
            description: config.task.description.clone(),
            auto_label_threshold: config.model.auto_label_threshold,
            strategy: config.model.strategy.as_deref().and_then(|s| s.parse().ok()).unwrap_or(StrategyKind::DEFAULT),
            overlap: config.model.overlap,
        }
    }

    /// These settings with `change` applied, or a message naming the first bad field.
    pub fn apply(&self, change: &SettingsChange) -> Result<ProjectSettings, String> {
        let mut next = self.clone();
        if let Some(title) = &change.title {
            let title = title.trim();
            if title.is_empty() || title.chars().count() > 200 {
                return Err("title: 1-200 characters".into());
            }
            next.title = title.to_string();
        }
        if let Some(description) = &change.description {
            if description.len() > 20_000 {
                return Err("description: at most 20,000 bytes".into());
            }
            next.description = description.clone();
        }
        if let Some(t) = change.auto_label_threshold {
            if !(0.5..=1.0).contains(&t) {
                return Err(format!("auto_label_threshold: between 0.5 and 1, got {t}"));
            }
            next.auto_label_threshold = t;
        }
        if let Some(share) = change.overlap {
            if !(0.0..=0.5).contains(&share) {
                return Err(format!("overlap: between 0 and 0.5, got {share}"));
            }
            next.overlap = share;
        }
        if let Some(name) = &change.strategy {
            next.strategy = name.parse::<StrategyKind>().map_err(|e| format!("strategy: {e}"))?;
        }
        Ok(next)
    }

    /// The stored form: only what differs from the config is worth storing, but storing all of
    /// it keeps the record readable and is as cheap.
    pub fn to_change(&self) -> SettingsChange {
        SettingsChange {
            title: Some(self.title.clone()),
            description: Some(self.description.clone()),
            auto_label_threshold: Some(self.auto_label_threshold),
            strategy: Some(self.strategy.name().to_string()),
            overlap: Some(self.overlap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ProjectSettings {
        ProjectSettings {
            title: "t".into(),
            description: String::new(),
            auto_label_threshold: 0.97,
            strategy: StrategyKind::DEFAULT,
            overlap: 0.0,
        }
    }

    #[test]
    fn a_change_applies_only_what_it_names_and_refuses_bad_values() {
        let s = base();
        let next = s
            .apply(&SettingsChange {
                auto_label_threshold: Some(0.9),
                strategy: Some("margin".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next.title, "t");
        assert_eq!(next.auto_label_threshold, 0.9);
        assert_eq!(next.strategy.name(), "margin");
        assert!(s.apply(&SettingsChange { auto_label_threshold: Some(1.5), ..Default::default() }).is_err());
        assert!(s.apply(&SettingsChange { strategy: Some("magic".into()), ..Default::default() }).is_err());
        assert!(s.apply(&SettingsChange { title: Some("  ".into()), ..Default::default() }).is_err());
        let round = s.apply(&next.to_change()).unwrap();
        assert_eq!(round, next);
    }
}
