//! Configuration: the task YAML (what to label and how to learn).

pub mod locate;
pub mod task;

pub use task::{load_task, load_task_in, parse_task, ConfigError, TaskConfig, STRATEGIES};
