//! Integration tests of the labelling server: the real binary on a loopback port, real
//! MobileNetV2 weights on a slice of MNIST, SQLite (and PostgreSQL for the store).

// Test helpers outside #[test] functions panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod api;
mod bad_input;
mod common;
mod durability;
mod hosted;
mod ownership;
mod redis;
mod store;
