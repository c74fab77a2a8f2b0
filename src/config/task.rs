//! The task YAML of the original Light Bulb (`task`, `dataset`, `label`, `model`, `user`),
//! extended with learning settings. Parsed strictly and validated with file:line:column errors.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ml::encoder::EncoderKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub task: TaskSection,
    pub dataset: DatasetSection,
    pub label: LabelSection,
    #[serde(default)]
    pub model: ModelSection,
    /// Written as `labelled_by` on labels made by the local user.
    #[serde(default = "default_user")]
    pub user: String,
    /// Where the file was read from; relative paths in it resolve against its directory's
    /// parent project root (the process's working directory, as in the original).
    #[serde(skip)]
    pub source: PathBuf,
}

fn default_user() -> String {
    "local".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// HTML with `{{key}}` placeholders filled from a JSON item.
    #[serde(default)]
    pub template: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    Images,
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// A directory of items (images, .txt or .json files), searched recursively.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Or one CSV / JSONL file holding text items (one per row).
    #[serde(default)]
    pub file: Option<PathBuf>,
    pub data_type: DataType,
    /// Column (CSV) or field (JSONL) with the text; default `text`.
    #[serde(default)]
    pub text_column: Option<String>,
    /// Column / field with a stable row key; default: the 1-based row number as `row-N`.
    #[serde(default)]
    pub id_column: Option<String>,
    /// For `json` items: which fields the text encoder reads (default: every string value).
    #[serde(default)]
    pub text_fields: Option<Vec<String>>,
    /// CSV of labels (`path,label,labelled_by,time_taken_ms,stage,created_at`), created if absent.
    #[serde(default)]
    pub judgements_file: Option<PathBuf>,
    /// Kept for compatibility with the original configs; encoders resize to their own input.
    #[serde(default)]
    pub image_width: Option<u32>,
    #[serde(default)]
    pub image_height: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelType {
    Classification,
    Binary,
    Sequence,
    ObjectDetection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSection {
    #[serde(rename = "type")]
    pub kind: LabelType,
    pub classes: Vec<String>,
    #[serde(default)]
    pub default_class: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeadChoice {
    #[default]
    Logistic,
    Mlp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Where models, caches and outputs are written.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// CSV `label,text` of extra labelled examples (text tasks), used for training only.
    #[serde(default)]
    pub pretrain_file: Option<PathBuf>,
    /// Default: mobilenet_v2 for images, minilm_l6 for text and json.
    #[serde(default)]
    pub encoder: Option<EncoderKind>,
    #[serde(default)]
    pub head: HeadChoice,
    /// Query strategy name (see `ml::strategy::StrategyKind`); default `entropy`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Minimum calibrated probability for auto-labelling.
    #[serde(default = "default_auto_label_threshold")]
    pub auto_label_threshold: f64,
    /// Share of human labels that go to the TEST stage.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    #[serde(default)]
    pub semi_supervised: bool,
    #[serde(default)]
    pub seed: u64,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            directory: None,
            pretrain_file: None,
            encoder: None,
            head: HeadChoice::default(),
            strategy: None,
            auto_label_threshold: default_auto_label_threshold(),
            test_fraction: default_test_fraction(),
            semi_supervised: false,
            seed: 0,
        }
    }
}

fn default_auto_label_threshold() -> f64 {
    0.97
}

fn default_test_fraction() -> f64 {
    0.25
}

impl TaskConfig {
    pub fn encoder(&self) -> EncoderKind {
        self.model.encoder.unwrap_or(match self.dataset.data_type {
            DataType::Images => EncoderKind::MobilenetV2,
            DataType::Text | DataType::Json => EncoderKind::MinilmL6,
        })
    }

    /// Directory for models and caches: `model.directory`, else `outputs/<file stem>/`.
    pub fn output_dir(&self) -> PathBuf {
        self.model.directory.clone().unwrap_or_else(|| {
            let stem = self.source.file_stem().and_then(|s| s.to_str()).unwrap_or("task");
            PathBuf::from("outputs").join(stem)
        })
    }
}

/// A config that failed to load: always names the file, and the line and column when known.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

/// Reads, parses and validates a task config.
pub fn load_task(path: &Path) -> Result<TaskConfig, ConfigError> {
    let _ = path;
    todo!("config helper")
}
