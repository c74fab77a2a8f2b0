//! Integration tests of the learning engine: one binary, one file per feature.
//! They use the real pretrained weights and data that `scripts/setup.sh` fetched.

// Test helpers outside #[test] functions panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod config;
mod data;
mod encoders;
mod learning;
mod simulate;
