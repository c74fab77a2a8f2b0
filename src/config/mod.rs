//! Configuration: the task YAML (what to label and how to learn).

pub mod locate;
pub mod task;

pub use task::{load_task, ConfigError, TaskConfig};
