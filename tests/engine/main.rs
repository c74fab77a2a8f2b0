//! Integration tests of the learning engine: one binary, one file per feature.
//! They use the real pretrained weights and data that `scripts/setup.sh` fetched.

mod common;
mod config;
mod data;
mod encoders;
mod learning;
mod simulate;
