//! Shared test helpers.
#![allow(dead_code)]

use std::path::PathBuf;

/// The assets root fetched by scripts/setup.sh.
pub fn assets() -> PathBuf {
    lightbulb::assets::default_dir()
}

/// A file under `<assets>/data`.
pub fn data(rel: &str) -> PathBuf {
    assets().join("data").join(rel)
}

/// The repository root (for example configs and fixtures).
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}
