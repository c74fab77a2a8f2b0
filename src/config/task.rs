//! The task YAML of the original Light Bulb (`task`, `dataset`, `label`, `model`, `user`),
//! extended with learning settings. Parsed strictly and validated with file:line:column errors.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ml::encoder::{EncoderKind, Modality};

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
    /// Where the file was read from. Relative paths in it resolve against the process's
    /// working directory, as in the original (or the base given to [`load_task_in`]); the
    /// loaded config holds them resolved.
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
    /// CSV whose `path` column lists the items to use; the rest of the directory or file is
    /// ignored. Entries are item ids, or paths relative to the CSV's own directory.
    #[serde(default)]
    pub include: Option<PathBuf>,
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

/// `model.semi_supervised`: label spreading over the unlabelled items (`ml::semi`). Written
/// `off`, `on` or `auto`; `false` and `true` mean `off` and `on`, as before `auto` existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SemiSupervised {
    /// Human labels only.
    #[default]
    Off,
    /// Every fit also trains on confident pseudo-labels.
    On,
    /// Each fit tries both and keeps the one that predicts held-out human labels better.
    Auto,
}

impl SemiSupervised {
    pub const NAMES: &'static str = "off, on, auto (or false, true)";

    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
            Self::Auto => "auto",
        }
    }
}

impl std::str::FromStr for SemiSupervised {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "false" => Ok(Self::Off),
            "on" | "true" => Ok(Self::On),
            "auto" => Ok(Self::Auto),
            other => Err(format!("unknown semi_supervised setting {other:?}: expected one of {}", Self::NAMES)),
        }
    }
}

impl Serialize for SemiSupervised {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for SemiSupervised {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SemiSupervised;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "one of {}", SemiSupervised::NAMES)
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SemiSupervised, E> {
                Ok(if v { SemiSupervised::On } else { SemiSupervised::Off })
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SemiSupervised, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
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
    /// Default: mobilenet_v2 for images, minilm_l6 for text and json (minilm_l6_layers is
    /// the opt-in multi-layer text encoder).
    #[serde(default)]
    pub encoder: Option<EncoderKind>,
    #[serde(default)]
    pub head: HeadChoice,
    /// Query strategy name, one of [`STRATEGIES`]; default `ml::strategy::StrategyKind::DEFAULT`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Minimum calibrated probability for auto-labelling.
    #[serde(default = "default_auto_label_threshold")]
    pub auto_label_threshold: f64,
    /// Share of human labels that go to the TEST stage.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Label spreading over the unlabelled items adds confident pseudo-labels to each fit
    /// (`ml::semi`): off, on, or auto (kept per fit where it predicts held-out labels better).
    /// See `bench/results/lc-adaptive.md` for where it helps.
    #[serde(default)]
    pub semi_supervised: SemiSupervised,
    /// Two-class tasks: move the class biases after each fit so the model's mean prediction
    /// over the unlabelled items stays between uniform and the labelled class frequencies
    /// (fading out beyond 100 labels; see `ml::prior`).
    #[serde(default = "default_true")]
    pub prior_matching: bool,
    /// Normalise the head's features by the statistics of all items rather than of the
    /// labelled ones, which an active-learning strategy does not pick at random.
    #[serde(default = "default_true")]
    pub pool_statistics: bool,
    /// Exponent of the pool-covariance prior on the head's weights (0-2; 0, the default, turns
    /// it off; see `ml::head::HeadParams::covariance_prior`: cross-validation keeps it only
    /// where it predicts held-out labels better). Needs `pool_statistics`.
    #[serde(default = "default_covariance_prior")]
    pub covariance_prior: f64,
    #[serde(default)]
    pub seed: u64,
    /// Share of labelled items also given to a second labeller, to measure agreement (0-0.5).
    #[serde(default)]
    pub overlap: f64,
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
            semi_supervised: SemiSupervised::default(),
            prior_matching: true,
            pool_statistics: true,
            covariance_prior: default_covariance_prior(),
            seed: 0,
            overlap: 0.0,
        }
    }
}

fn default_auto_label_threshold() -> f64 {
    0.97
}

fn default_true() -> bool {
    true
}

fn default_covariance_prior() -> f64 {
    crate::ml::head::DEFAULT_COVARIANCE_PRIOR
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

impl DataType {
    /// The name used in the YAML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Images => "images",
            Self::Text => "text",
            Self::Json => "json",
        }
    }

    /// What kind of encoder can read items of this type.
    pub fn modality(self) -> Modality {
        match self {
            Self::Images => Modality::Image,
            Self::Text | Self::Json => Modality::Text,
        }
    }
}

/// Query strategies a config may name (`model.strategy`); mirrors `ml::strategy::StrategyKind`.
pub const STRATEGIES: &[&str] = &[
    "random",
    "entropy",
    "margin",
    "least_confidence",
    "kcenter",
    "cluster_margin",
    "power_margin",
    "adaptive_margin",
    "bait",
    "adaptive_bait",
];

/// A config that failed to load: always names the file, and the line and column when known.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

/// Reads, parses and validates a task config; relative paths in it resolve against the
/// process's working directory.
pub fn load_task(path: &Path) -> Result<TaskConfig, ConfigError> {
    load_task_in(path, Path::new(""))
}

/// Like [`load_task`], with relative paths resolved against `base` instead (tests, or a
/// server that holds several projects).
pub fn load_task_in(path: &Path, base: &Path) -> Result<TaskConfig, ConfigError> {
    let fail = |location, message: String| ConfigError { path: path.to_path_buf(), location, message };
    let bytes = std::fs::read(path).map_err(|e| fail(None, format!("cannot read the task config: {e}")))?;
    let src = match String::from_utf8(bytes) {
        Ok(src) => src,
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let location = position_of(e.as_bytes(), bad);
            return Err(fail(Some(location), "the file is not valid UTF-8".into()));
        }
    };
    parse_task(&src, path, base)
}

/// Whether validation looks for items in the dataset directory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// The directory must hold items of the declared type (a config file).
    Required,
    /// The items arrive later (a project created through the API, before its upload).
    Later,
}

/// Parses and validates config text as if read from `path`; relative paths resolve against
/// `base` (empty: the working directory).
pub fn parse_task(src: &str, path: &Path, base: &Path) -> Result<TaskConfig, ConfigError> {
    parse_task_with(src, path, base, Items::Required)
}

/// [`parse_task`], choosing whether the dataset directory must hold items already.
pub fn parse_task_with(src: &str, path: &Path, base: &Path, items: Items) -> Result<TaskConfig, ConfigError> {
    let fail = |location, message: String| ConfigError { path: path.to_path_buf(), location, message };
    let value: serde_yaml::Value = serde_yaml::from_str(src).map_err(|e| from_yaml(path, &e))?;
    match &value {
        serde_yaml::Value::Null => {
            return Err(fail(None, "the file is empty: expected the sections task, dataset and label".into()));
        }
        serde_yaml::Value::Mapping(_) => {}
        other => {
            let found = match other {
                serde_yaml::Value::Sequence(_) => "a list",
                serde_yaml::Value::Tagged(_) => "a tagged value",
                _ => "a single value",
            };
            return Err(fail(
                first_content(src),
                format!("expected a mapping with the sections task, dataset and label, found {found}"),
            ));
        }
    }
    // From the text, not the `Value`: only the text carries positions for the errors.
    let mut config: TaskConfig = serde_yaml::from_str(src).map_err(|e| from_yaml(path, &e))?;
    config.source = path.to_path_buf();
    resolve_paths(&mut config, base);
    validate(&config, items).map_err(|(key, message)| ConfigError {
        path: path.to_path_buf(),
        location: super::locate::locate(src, &key),
        message: format!("{key}: {message}"),
    })?;
    Ok(config)
}

/// serde_yaml's message without its trailing " at line L column C" (the location is ours).
fn from_yaml(path: &Path, e: &serde_yaml::Error) -> ConfigError {
    let mut message = e.to_string();
    let location = e.location().map(|l| (l.line(), l.column()));
    if let Some((line, column)) = location {
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    ConfigError { path: path.to_path_buf(), location, message }
}

/// 1-based line and column of a byte offset.
fn position_of(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// Where the first non-comment text starts.
fn first_content(src: &str) -> Option<(usize, usize)> {
    src.lines().enumerate().find_map(|(i, line)| {
        let body = line.trim_start();
        (!body.is_empty() && !body.starts_with('#') && body != "---")
            .then(|| (i + 1, line[..line.len() - body.len()].chars().count() + 1))
    })
}

fn resolve(base: &Path, path: &mut PathBuf) {
    if !base.as_os_str().is_empty() && path.is_relative() {
        *path = base.join(&*path);
    }
}

fn resolve_paths(config: &mut TaskConfig, base: &Path) {
    let output_dir = config.output_dir();
    let d = &mut config.dataset;
    for path in [&mut d.directory, &mut d.file, &mut d.include, &mut d.judgements_file].into_iter().flatten() {
        resolve(base, path);
    }
    let m = &mut config.model;
    m.directory = Some(output_dir);
    for path in [&mut m.directory, &mut m.pretrain_file].into_iter().flatten() {
        resolve(base, path);
    }
}

/// A failed check: the dotted key path it concerns (located in the text later) and why.
type Invalid = (String, String);

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    (key.into(), message.into())
}

/// Semantic checks serde cannot express, in the order a person reads the file.
fn validate(config: &TaskConfig, items: Items) -> Result<(), Invalid> {
    if config.task.title.trim().is_empty() {
        return Err(invalid("task.title", "the title is empty"));
    }
    validate_dataset(&config.dataset, items)?;
    validate_label(&config.label)?;
    validate_model(config)?;
    if config.user.trim().is_empty() {
        return Err(invalid("user", "the user name is empty"));
    }
    Ok(())
}

fn validate_dataset(d: &DatasetSection, items: Items) -> Result<(), Invalid> {
    let dt = d.data_type;
    match (&d.directory, &d.file) {
        (None, None) => {
            return Err(invalid(
                "dataset",
                "give either `directory` (a folder of items) or `file` (a CSV or JSONL file of text rows)",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(invalid("dataset.file", "give either `directory` or `file`, not both"));
        }
        (Some(dir), None) => {
            if !dir.is_dir() {
                let what = if dir.exists() { "is not a directory" } else { "does not exist" };
                return Err(invalid("dataset.directory", format!("{} {what}", dir.display())));
            }
            if items == Items::Required {
                check_directory_contents(dir, dt)?;
            }
            for key in ["text_column", "id_column"] {
                let given = if key == "text_column" { &d.text_column } else { &d.id_column };
                if given.is_some() {
                    return Err(invalid(
                        format!("dataset.{key}"),
                        "only applies to the rows of `dataset.file` (CSV or JSONL)",
                    ));
                }
            }
        }
        (None, Some(file)) => {
            if !file.is_file() {
                let what = if file.exists() { "is not a file" } else { "does not exist" };
                return Err(invalid("dataset.file", format!("{} {what}", file.display())));
            }
            if dt != DataType::Text {
                return Err(invalid(
                    "dataset.file",
                    format!("a file of rows holds text items; for data_type {} give `directory` instead", dt.name()),
                ));
            }
            if crate::data::rows::Format::of(file).is_none() {
                return Err(invalid(
                    "dataset.file",
                    format!("{} is not a .csv, .tsv, .jsonl or .ndjson file", file.display()),
                ));
            }
            for (key, value) in [("text_column", &d.text_column), ("id_column", &d.id_column)] {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    return Err(invalid(format!("dataset.{key}"), "the column name is empty"));
                }
            }
        }
    }
    if let Some(fields) = &d.text_fields {
        if dt != DataType::Json {
            return Err(invalid("dataset.text_fields", "only applies to data_type json"));
        }
        if fields.is_empty() {
            return Err(invalid("dataset.text_fields", "the list is empty (omit it to read every string value)"));
        }
        if let Some(i) = fields.iter().position(|f| f.trim().is_empty()) {
            return Err(invalid(format!("dataset.text_fields[{i}]"), "the field name is empty"));
        }
    }
    if let Some(include) = &d.include {
        if !include.is_file() {
            return Err(invalid("dataset.include", format!("{} does not exist or is not a file", include.display())));
        }
    }
    if let Some(judgements) = &d.judgements_file {
        if judgements.is_dir() {
            return Err(invalid("dataset.judgements_file", format!("{} is a directory", judgements.display())));
        }
    }
    Ok(())
}

/// The directory must hold items of the declared type; a folder of images declared as text is
/// the likely mistake, so name what was found instead.
fn check_directory_contents(dir: &Path, dt: DataType) -> Result<(), Invalid> {
    let probe = crate::data::files::probe(dir, dt);
    if probe.found {
        return Ok(());
    }
    let wanted = match dt {
        DataType::Images => "image files (.jpg, .jpeg, .png, .gif, .webp, .bmp)",
        DataType::Text => ".txt files",
        DataType::Json => ".json files",
    };
    let hint = match probe.other {
        Some((other, example)) => {
            format!(" but it has {} items such as {example}; is data_type `{}` meant?", other.name(), other.name())
        }
        None if dt == DataType::Text => " (for a CSV or JSONL file of rows, give `file` instead)".into(),
        None => String::new(),
    };
    Err(invalid("dataset.data_type", format!("data_type {} needs {wanted} in {}{hint}", dt.name(), dir.display())))
}

fn validate_label(l: &LabelSection) -> Result<(), Invalid> {
    match l.kind {
        LabelType::Classification | LabelType::Binary => {}
        LabelType::Sequence | LabelType::ObjectDetection => {
            let name = if l.kind == LabelType::Sequence { "sequence" } else { "object_detection" };
            return Err(invalid(
                "label.type",
                format!("`{name}` labelling is not supported yet; use classification or binary"),
            ));
        }
    }
    if l.classes.is_empty() {
        return Err(invalid("label.classes", "the class list is empty"));
    }
    for (i, class) in l.classes.iter().enumerate() {
        if class.trim().is_empty() {
            return Err(invalid(format!("label.classes[{i}]"), "the class name is empty"));
        }
        if let Some(first) = l.classes[..i].iter().position(|c| c.trim() == class.trim()) {
            return Err(invalid(
                format!("label.classes[{i}]"),
                format!("class `{class}` is listed twice (also item {})", first + 1),
            ));
        }
    }
    if l.kind == LabelType::Binary && l.classes.len() != 2 {
        return Err(invalid(
            "label.classes",
            format!("binary labelling needs exactly 2 classes, found {}", l.classes.len()),
        ));
    }
    if l.classes.len() < 2 {
        return Err(invalid("label.classes", "classification needs at least 2 classes"));
    }
    if let Some(default) = &l.default_class {
        if !l.classes.contains(default) {
            return Err(invalid(
                "label.default_class",
                format!("`{default}` is not one of the classes ({})", l.classes.join(", ")),
            ));
        }
    }
    Ok(())
}

fn validate_model(config: &TaskConfig) -> Result<(), Invalid> {
    let m = &config.model;
    if let Some(strategy) = &m.strategy {
        if !STRATEGIES.contains(&strategy.as_str()) {
            return Err(invalid(
                "model.strategy",
                format!("unknown strategy `{strategy}`, expected one of {}", STRATEGIES.join(", ")),
            ));
        }
    }
    let t = m.auto_label_threshold;
    if !(t > 0.0 && t <= 1.0) {
        return Err(invalid("model.auto_label_threshold", format!("{t} is not in (0, 1]")));
    }
    if !(0.0..=0.5).contains(&m.overlap) {
        return Err(invalid("model.overlap", format!("{} is not in [0, 0.5]", m.overlap)));
    }
    if !crate::ml::head::COVARIANCE_PRIOR_RANGE.contains(&m.covariance_prior) {
        return Err(invalid("model.covariance_prior", format!("{} is not in [0, 2]", m.covariance_prior)));
    }
    let f = m.test_fraction;
    if !(0.0..=0.9).contains(&f) {
        return Err(invalid("model.test_fraction", format!("{f} is not in [0, 0.9]")));
    }
    let dt = config.dataset.data_type;
    if let Some(encoder) = m.encoder {
        if encoder.modality() != dt.modality() {
            return Err(invalid(
                "model.encoder",
                format!(
                    "encoder `{}` reads {} but data_type {} needs a {} encoder",
                    encoder_name(encoder),
                    modality_name(encoder.modality()),
                    dt.name(),
                    modality_name(dt.modality())
                ),
            ));
        }
    }
    if let Some(pretrain) = &m.pretrain_file {
        if dt == DataType::Images {
            return Err(invalid("model.pretrain_file", "pretraining examples (label,text) apply to text tasks only"));
        }
        if !pretrain.is_file() {
            return Err(invalid(
                "model.pretrain_file",
                format!("{} does not exist or is not a file", pretrain.display()),
            ));
        }
    }
    if let Some(dir) = &m.directory {
        if dir.exists() && !dir.is_dir() {
            return Err(invalid("model.directory", format!("{} is not a directory", dir.display())));
        }
    }
    Ok(())
}

fn encoder_name(kind: EncoderKind) -> String {
    serde_yaml::to_string(&kind).map(|s| s.trim().to_string()).unwrap_or_else(|_| format!("{kind:?}"))
}

fn modality_name(m: Modality) -> &'static str {
    match m {
        Modality::Image => "images",
        Modality::Text => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::STRATEGIES;
    use crate::ml::strategy::StrategyKind;

    #[test]
    fn strategies_mirror_the_strategy_kinds() {
        let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, STRATEGIES);
    }
}
