//! Dataset sources: what the items of a task are and how to read one.
//!
//! An item's identity is its path relative to the dataset directory (`cats/001.jpg`) or, for
//! rows of a CSV/JSONL file, its row key. Listing is cheap (no decoding); unreadable items are
//! reported when their content is read and never stop a run.

pub mod files;
pub mod rows;

use std::path::PathBuf;

use crate::config::task::{DataType, TaskConfig};

/// Where an item's content lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file on disk (absolute or relative to the working directory).
    File(PathBuf),
    /// Text held inline (a CSV/JSONL row), already extracted.
    Inline(String),
}

#[derive(Debug, Clone)]
pub struct ItemRef {
    pub id: String,
    pub location: Location,
}

/// An item the source could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// The items of a task in a stable order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub data_type: DataType,
    pub items: Vec<ItemRef>,
    /// Items found while listing that cannot be used (bad rows, unreadable files).
    pub skipped: Vec<Skipped>,
}

/// What an item contains, ready for an encoder.
#[derive(Debug, Clone)]
pub enum Content {
    /// Encoded image bytes.
    Image(Vec<u8>),
    /// Text to encode (for `json` items: the chosen fields, joined).
    Text(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset directory {0} does not exist or is not a directory")]
    MissingDirectory(PathBuf),
    #[error("dataset file {0} cannot be read: {1}")]
    UnreadableFile(PathBuf, String),
    #[error("{path}: {reason}")]
    BadItem { path: String, reason: String },
    #[error("the dataset has no usable items ({0})")]
    Empty(String),
}

/// Lists the task's items (directory walk or file rows). Nothing is decoded here.
pub fn open(config: &TaskConfig) -> Result<Dataset, DataError> {
    let _ = config;
    todo!("data helper")
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Reads one item's content. Errors name the item and the reason.
    pub fn read(&self, index: usize) -> Result<Content, DataError> {
        let _ = index;
        todo!("data helper")
    }
}
