//! Lightbulb: label data, learn from it as it arrives, pick what to label next.
//!
//! Layering (see ARCHITECTURE.md): `config` and `data` know nothing of tch; `ml` knows
//! nothing of files' formats beyond what `data` hands it; `simulate` drives them all.

pub mod assets;
pub mod auth;
pub mod config;
pub mod data;
pub mod embed;
pub mod metrics;
pub mod ml;
pub mod project;
pub mod server;
pub mod simulate;
pub mod store;
