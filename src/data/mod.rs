//! Dataset sources: what the items of a task are and how to read one.
//!
//! An item's identity is its path relative to the dataset directory (`cats/001.jpg`) or, for
//! rows of a CSV/JSONL file, its row key. Listing is cheap (no decoding); unreadable items are
//! reported when their content is read and never stop a run.

pub mod files;
pub mod rows;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config::task::{DataType, TaskConfig};

/// Where an item's content lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file on disk (absolute or relative to the working directory).
    File(PathBuf),
    /// Text held inline (a CSV/JSONL row), already extracted.
    Inline(String),
}

impl Location {
    /// The file behind the item, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Inline(_) => None,
        }
    }
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
    /// For `json` items: the fields whose text the encoder reads (`None`: every string value).
    pub text_fields: Option<Vec<String>>,
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
    #[error("{path}: there is no column `{column}` (columns: {})", present.join(", "), path = path.display())]
    MissingColumn { path: PathBuf, column: String, present: Vec<String> },
    #[error("the dataset has no usable items ({0})")]
    Empty(String),
}

/// Lists the task's items (directory walk or file rows). Nothing is decoded here.
pub fn open(config: &TaskConfig) -> Result<Dataset, DataError> {
    let d = &config.dataset;
    let data_type = d.data_type;
    let (mut items, mut skipped) = match (&d.directory, &d.file) {
        (Some(dir), _) => {
            if !dir.is_dir() {
                return Err(DataError::MissingDirectory(dir.clone()));
            }
            files::list(dir, data_type)
        }
        (None, Some(file)) => {
            let text = d.text_column.as_deref().unwrap_or("text");
            rows::list(file, rows::Columns { text, id: d.id_column.as_deref() })?
        }
        (None, None) => {
            return Err(DataError::Empty("the config names neither dataset.directory nor dataset.file".into()));
        }
    };
    let source = d.directory.as_ref().or(d.file.as_ref()).map(|p| p.display().to_string()).unwrap_or_default();
    if let Some(include) = &d.include {
        let listed = items.len();
        let wanted = include_keys(include, d.directory.as_deref())?;
        items.retain(|item| wanted.contains(&item.id));
        // Skipped items outside the include list are not this task's concern.
        skipped.retain(|s| wanted.contains(&s.id));
        if items.len() < wanted.len() {
            tracing::warn!(
                include = %include.display(),
                entries = wanted.len(),
                matched = items.len(),
                "some include entries name no item of the dataset"
            );
        }
        if items.is_empty() {
            return Err(DataError::Empty(format!(
                "none of the {listed} items of {source} is listed in {}",
                include.display()
            )));
        }
    }
    if items.is_empty() {
        let what = match (data_type, d.file.is_some()) {
            (_, true) => "rows with text",
            (DataType::Images, false) => "image files",
            (DataType::Text, false) => ".txt files",
            (DataType::Json, false) => ".json files",
        };
        return Err(DataError::Empty(format!("no {what} in {source}, {} skipped", skipped.len())));
    }
    Ok(Dataset { data_type, items, skipped, text_fields: d.text_fields.clone() })
}

/// The item ids an include CSV's `path` column names (see [`EntryKeys`]).
pub fn include_keys(csv: &Path, dataset_dir: Option<&Path>) -> Result<HashSet<String>, DataError> {
    let keys = EntryKeys::new(csv, dataset_dir);
    Ok(rows::path_column(csv)?.iter().map(|entry| keys.resolve(entry)).collect())
}

/// Maps the `path` entries of a CSV kept beside the data (an include list, a truth file) to
/// item ids. For a directory dataset an entry is read as a path relative to the CSV's own
/// directory when that lands inside the dataset directory, so `truth.csv` next to `images/`
/// can say `images/00003.png` for the item `00003.png`; otherwise it is the id as written.
#[derive(Debug, Clone)]
pub struct EntryKeys {
    csv_dir: PathBuf,
    dataset_dir: Option<PathBuf>,
}

impl EntryKeys {
    /// `dataset_dir`: the task's `dataset.directory` (`None` for rows, whose ids are keys).
    pub fn new(csv: &Path, dataset_dir: Option<&Path>) -> Self {
        let csv_dir = csv.parent().unwrap_or(Path::new(""));
        Self { csv_dir: files::normalize(csv_dir), dataset_dir: dataset_dir.map(files::normalize) }
    }

    pub fn resolve(&self, entry: &str) -> String {
        let entry = entry.trim().replace('\\', "/");
        self.dataset_dir.as_deref().and_then(|dir| key_under(&self.csv_dir.join(&entry), dir)).unwrap_or(entry)
    }
}

/// The id of `path` if it lies under the dataset directory (normalised).
fn key_under(path: &Path, dataset_dir: &Path) -> Option<String> {
    let path = files::normalize(path);
    let rel = path.strip_prefix(dataset_dir).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let parts = parts?;
    (!parts.is_empty()).then(|| parts.join("/"))
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
        let item = self.item(index)?;
        let bad = |path: &Path, reason: String| DataError::BadItem { path: path.display().to_string(), reason };
        match (&item.location, self.data_type) {
            (Location::Inline(text), _) => Ok(Content::Text(text.clone())),
            (Location::File(path), DataType::Images) => {
                files::read_capped(path).map(Content::Image).map_err(|r| bad(path, r))
            }
            (Location::File(path), DataType::Text) => {
                files::read_text(path).map(Content::Text).map_err(|r| bad(path, r))
            }
            (Location::File(path), DataType::Json) => {
                let value = files::read_json(path).map_err(|r| bad(path, r))?;
                let text = files::json_text(&value, self.text_fields.as_deref());
                if text.trim().is_empty() {
                    return Err(bad(path, "the item has no text in the chosen fields".into()));
                }
                Ok(Content::Text(text))
            }
        }
    }

    /// A `json` item as parsed, e.g. to fill the task's HTML template.
    pub fn read_json(&self, index: usize) -> Result<serde_json::Value, DataError> {
        let item = self.item(index)?;
        match item.location.path() {
            Some(path) if self.data_type == DataType::Json => {
                files::read_json(path).map_err(|reason| DataError::BadItem { path: path.display().to_string(), reason })
            }
            _ => Err(DataError::BadItem { path: item.id.clone(), reason: "not a json item".into() }),
        }
    }

    fn item(&self, index: usize) -> Result<&ItemRef, DataError> {
        self.items.get(index).ok_or_else(|| DataError::BadItem {
            path: format!("#{index}"),
            reason: format!("no such item (the dataset has {})", self.items.len()),
        })
    }
}
