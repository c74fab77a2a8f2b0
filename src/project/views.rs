//! What the project actor answers with: serialisable snapshots, shaped as in `docs/API.md`.
//! No HTTP here; the server layer adds URLs and content.

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::Stage;

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    pub probabilities: BTreeMap<String, f32>,
}

/// An item handed out for labelling.
#[derive(Debug, Clone)]
pub struct LeasedItem {
    pub index: usize,
    pub id: i64,
    pub key: String,
    pub stage: Stage,
    pub prediction: Option<Prediction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub labelled: usize,
    pub train: usize,
    pub test: usize,
    pub model_labelled: usize,
    pub unlabelled: usize,
    pub total: usize,
    pub skipped_items: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub test_labels: usize,
}

impl Accuracy {
    pub fn of(e: &crate::ml::metrics::Evaluation) -> Self {
        Accuracy { value: e.accuracy, low: e.accuracy_ci.0, high: e.accuracy_ci.1, test_labels: e.n }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CurvePoint {
    pub labels: usize,
    pub accuracy: f64,
    pub low: f64,
    pub high: f64,
    pub test_labels: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub matrix: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub class: String,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutoLabelStats {
    pub threshold: f64,
    /// Unlabelled items at or above the threshold (what batches would hold).
    pub ready_items: usize,
    pub ready_batches: usize,
    /// Precision of predictions at or above the threshold on the TEST labels.
    pub expected_precision: Option<f64>,
    pub expected_precision_test_items: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub counts: Counts,
    pub training: bool,
    pub model_version: i64,
    pub embedding: Progress,
    pub embedding_error: Option<String>,
    pub accuracy: Option<Accuracy>,
    pub curve: Vec<CurvePoint>,
    pub confusion: Option<Confusion>,
    pub per_class: Vec<ClassRow>,
    pub median_seconds_per_label: Option<f64>,
    pub auto_label: AutoLabelStats,
}

#[derive(Debug, Clone)]
pub struct BatchView {
    pub id: String,
    pub class: String,
    /// (item index, id, key, probability)
    pub items: Vec<(usize, i64, String, f32)>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct BrowseFilter {
    pub status: Option<String>,
    pub label: Option<String>,
    pub predicted: Option<String>,
    pub min_confidence: Option<f32>,
    pub max_confidence: Option<f32>,
    /// Substring of the item's path (text content search is done by the caller).
    pub q: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct BrowseRow {
    pub index: usize,
    pub id: i64,
    pub key: String,
    pub label: Option<String>,
    pub labelled_by: Option<i64>,
    pub stage: Option<Stage>,
    pub predicted: Option<String>,
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct BrowsePage {
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub rows: Vec<BrowseRow>,
}
