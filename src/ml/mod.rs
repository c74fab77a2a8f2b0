//! Everything that touches tch: encoders, heads, query strategies, evaluation, the embedding cache.
//!
//! Nothing here knows HTTP, SQL or actors; state lives in plain structs and every heavy call
//! is synchronous, so a runtime can own it and run it on a dedicated compute thread.

pub mod autolabel;
pub mod cache;
pub mod calibration;
pub mod device;
pub mod embeddings;
pub mod encoder;
pub mod head;
pub mod metrics;
pub mod model_io;
pub mod prior;
pub mod semi;
pub mod strategy;
