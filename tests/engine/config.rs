//! Tests: config. The task YAML of the original Light Bulb loads as written; every mistake is
//! an error naming the file, the line and the column.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lightbulb::config::task::{load_task, load_task_in, DataType, LabelType, STRATEGIES};
use lightbulb::config::ConfigError;
use lightbulb::ml::encoder::EncoderKind;

use crate::common::repo;

/// A temp working directory holding `images/` (one PNG), `texts/` (one .txt), `items/` (one
/// .json), `rows.csv` and `include.csv`, so path checks pass unless a test breaks them.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for sub in ["images", "texts", "items"] {
        std::fs::create_dir(p.join(sub)).unwrap();
    }
    std::fs::write(p.join("images/a.png"), b"png").unwrap();
    std::fs::write(p.join("texts/a.txt"), b"some text").unwrap();
    std::fs::write(p.join("items/a.json"), b"{}").unwrap();
    std::fs::write(p.join("rows.csv"), "id,text\n1,hello\n").unwrap();
    std::fs::write(p.join("include.csv"), "path\na.png\n").unwrap();
    std::fs::write(p.join("pretrain.csv"), "label,text\nCat,meow\n").unwrap();
    dir
}

const VALID: &str = "\
task:
  title: Is this a cat?
dataset:
  directory: images
  data_type: images
label:
  type: classification
  classes:
    - Cat
    - Not Cat
";

/// Writes `yaml` as `task.yml` in a fresh work dir and loads it from there.
fn load(yaml: &str) -> (Result<lightbulb::config::TaskConfig, ConfigError>, tempfile::TempDir) {
    let dir = workdir();
    let path = dir.path().join("task.yml");
    std::fs::write(&path, yaml).unwrap();
    (load_task_in(&path, dir.path()), dir)
}

/// The error a config gives: (line, column, message).
fn error(yaml: &str) -> (Option<(usize, usize)>, String) {
    let (result, _dir) = load(yaml);
    let err = result.expect_err("the config should be rejected");
    assert!(err.path.ends_with("task.yml"), "{err}");
    (err.location, err.message)
}

fn assert_error(yaml: &str, at: (usize, usize), contains: &str) {
    let (location, message) = error(yaml);
    assert_eq!(location, Some(at), "{message}\n---\n{yaml}");
    assert!(message.contains(contains), "`{message}` lacks `{contains}`\n---\n{yaml}");
}

#[test]
fn the_articles_config_loads_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dataset/cat_not_cat/indoor")).unwrap();
    std::fs::write(dir.path().join("dataset/cat_not_cat/indoor/tom.jpg"), b"jpeg").unwrap();
    let config = load_task_in(&repo("config/examples/cat_not_cat.yml"), dir.path()).unwrap();
    assert_eq!(config.task.title, "Is this a cat?");
    assert_eq!(config.dataset.data_type, DataType::Images);
    assert_eq!(config.dataset.directory.as_deref(), Some(dir.path().join("dataset/cat_not_cat/").as_path()));
    assert_eq!(
        config.dataset.judgements_file.as_deref(),
        Some(dir.path().join("outputs/cat_not_cat/labels.csv").as_path())
    );
    assert_eq!(config.label.kind, LabelType::Classification);
    assert_eq!(config.label.classes, ["Cat", "Not Cat"]);
    assert_eq!(config.user, "chris");
    assert_eq!(config.output_dir(), dir.path().join("outputs/cat_not_cat/models/"));
    assert_eq!(config.encoder(), EncoderKind::MobilenetV2);
    assert_eq!(config.model.test_fraction, 0.25);
    assert_eq!(config.source, repo("config/examples/cat_not_cat.yml"));
}

#[test]
fn relative_paths_resolve_against_the_working_directory() {
    // Cargo runs integration tests in the package root, which has no dataset/ folder.
    let err = load_task(Path::new("config/examples/cat_not_cat.yml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config/examples/cat_not_cat.yml:4:14: dataset.directory: dataset/cat_not_cat/ does not exist"
    );
}

#[test]
fn a_minimal_config_gets_defaults() {
    let (config, dir) = load(VALID);
    let config = config.unwrap();
    assert_eq!(config.user, "local");
    assert_eq!(config.output_dir(), dir.path().join("outputs/task"));
    assert_eq!(config.model.auto_label_threshold, 0.97);
    assert!(config.model.strategy.is_none());
}

#[test]
fn every_example_config_loads() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo("config/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    let demo_data = repo(".deps/data/mnist/images").is_dir();
    for path in names {
        let rel = path.strip_prefix(repo("")).unwrap();
        let result = load_task(rel);
        if rel.ends_with("cat_not_cat.yml") || (!demo_data && rel.to_string_lossy().contains("mnist")) {
            continue;
        }
        if !demo_data && result.is_err() {
            eprintln!("skipping {} (run scripts/setup.sh for the demo data)", rel.display());
            continue;
        }
        let config = result.unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.label.classes.is_empty());
    }
}

#[test]
fn every_strategy_name_is_accepted() {
    for name in STRATEGIES {
        let (config, _dir) = load(&format!("{VALID}model:\n  strategy: {name}\n"));
        assert_eq!(config.unwrap().model.strategy.as_deref(), Some(*name));
    }
}

#[test]
fn semi_supervised_takes_off_on_auto_or_a_boolean() {
    use lightbulb::config::task::SemiSupervised;
    for (value, expected) in [
        ("off", SemiSupervised::Off),
        ("false", SemiSupervised::Off),
        ("on", SemiSupervised::On),
        ("true", SemiSupervised::On),
        ("auto", SemiSupervised::Auto),
    ] {
        let (config, _dir) = load(&format!("{VALID}model:\n  semi_supervised: {value}\n"));
        assert_eq!(config.unwrap().model.semi_supervised, expected, "{value}");
    }
    let (config, _dir) = load(VALID);
    assert_eq!(config.unwrap().model.semi_supervised, SemiSupervised::Off, "the default");
    assert_error(
        &format!("{VALID}model:\n  semi_supervised: sometimes\n"),
        (12, 20),
        "unknown semi_supervised setting \"sometimes\": expected one of off, on, auto (or false, true)",
    );
    assert_error(&format!("{VALID}model:\n  semi_supervised: 1\n"), (12, 20), "expected one of off, on, auto");
}

#[test]
fn schema_errors_point_at_the_key() {
    // Unknown keys at each level.
    assert_error(&format!("{VALID}colour: red\n"), (11, 1), "unknown field `colour`");
    assert_error(
        &VALID.replace("  data_type: images\n", "  data_type: images\n  dirs: x\n"),
        (6, 3),
        "dataset: unknown field `dirs`",
    );
    assert_error(&VALID.replace("title:", "titel:"), (2, 3), "task: unknown field `titel`");
    // Wrong types.
    assert_error(
        &format!("{VALID}model:\n  test_fraction: lots\n"),
        (12, 18),
        "model.test_fraction: invalid type: string \"lots\", expected f64",
    );
    assert_error(
        &VALID.replace("  classes:\n    - Cat\n    - Not Cat\n", "  classes: Cat\n"),
        (8, 12),
        "label.classes: invalid type: string \"Cat\", expected a sequence",
    );
    assert_error(
        &format!("{VALID}model:\n  seed: -1\n"),
        (12, 9),
        "model.seed: invalid type: integer `-1`, expected u64",
    );
    assert_error(
        &format!("{VALID}model: [a]\n"),
        (11, 8),
        "model: invalid type: sequence, expected struct ModelSection",
    );
    // Unknown enum values.
    assert_error(&VALID.replace("data_type: images", "data_type: video"), (5, 14), "unknown variant `video`");
    assert_error(&VALID.replace("type: classification", "type: multiclass"), (7, 9), "unknown variant `multiclass`");
    assert_error(&format!("{VALID}model:\n  encoder: resnet\n"), (12, 12), "unknown variant `resnet`");
    assert_error(&format!("{VALID}model:\n  head: forest\n"), (12, 9), "unknown variant `forest`");
    // Missing required keys: the mapping that lacks it.
    assert_error(&VALID.replace("  data_type: images\n", ""), (4, 3), "dataset: missing field `data_type`");
    assert_error(&VALID.replace("  type: classification\n", ""), (7, 3), "label: missing field `type`");
    let (location, message) = error("task:\n  title: t\ndataset:\n  directory: images\n  data_type: images\n");
    assert_eq!((location, message.as_str()), (Some((1, 1)), "missing field `label`"));
}

#[test]
fn dataset_errors_point_at_the_key() {
    let v = VALID;
    assert_error(&v.replace("directory: images", "directory: nowhere"), (4, 14), "nowhere does not exist");
    assert_error(&v.replace("directory: images", "directory: rows.csv"), (4, 14), "rows.csv is not a directory");
    assert_error(
        &v.replace("  directory: images\n", ""),
        (3, 1),
        "give either `directory` (a folder of items) or `file`",
    );
    assert_error(&v.replace("  directory: images\n", "  directory: images\n  file: rows.csv\n"), (5, 9), "not both");
    assert_error(
        &v.replace("  directory: images\n  data_type: images", "  file: missing.csv\n  data_type: text"),
        (4, 9),
        "missing.csv does not exist",
    );
    assert_error(
        &v.replace("  directory: images\n  data_type: images", "  file: rows.csv\n  data_type: images"),
        (4, 9),
        "a file of rows holds text items; for data_type images give `directory` instead",
    );
    assert_error(
        &v.replace(
            "  directory: images\n  data_type: images",
            "  file: pretrain.csv\n  data_type: text\n  text_column: ''",
        ),
        (6, 16),
        "the column name is empty",
    );
    assert_error(
        &v.replace("  data_type: images\n", "  data_type: images\n  text_column: body\n"),
        (6, 16),
        "only applies to the rows of `dataset.file`",
    );
    assert_error(
        &v.replace("  data_type: images\n", "  data_type: images\n  include: none.csv\n"),
        (6, 12),
        "none.csv does not exist or is not a file",
    );
    assert_error(
        &v.replace("  data_type: images\n", "  data_type: images\n  text_fields: [title]\n"),
        (6, 16),
        "only applies to data_type json",
    );
    assert_error(
        &v.replace("  data_type: images\n", "  data_type: images\n  judgements_file: texts\n"),
        (6, 20),
        "is a directory",
    );
    // The declared type does not fit what the directory holds.
    assert_error(&v.replace("data_type: images", "data_type: text"), (5, 14), "data_type text needs .txt files in ");
    let (_, message) = error(&v.replace("data_type: images", "data_type: text"));
    assert!(
        message.ends_with("images but it has images items such as a.png; is data_type `images` meant?"),
        "{message}"
    );
    assert_error(&v.replace("directory: images", "directory: texts"), (5, 14), "data_type images needs image files");
    assert_error(
        &v.replace("directory: images\n  data_type: images", "directory: images\n  data_type: json"),
        (5, 14),
        "data_type json needs .json files",
    );
}

#[test]
fn label_errors_point_at_the_value() {
    let v = VALID;
    assert_error(
        &v.replace("  classes:\n    - Cat\n    - Not Cat\n", "  classes: []\n"),
        (8, 12),
        "the class list is empty",
    );
    assert_error(&format!("{v}    - Cat\n"), (11, 7), "label.classes[2]: class `Cat` is listed twice (also item 1)");
    assert_error(&v.replace("- Not Cat", "- ''"), (10, 7), "label.classes[1]: the class name is empty");
    assert_error(&v.replace("    - Not Cat\n", ""), (8, 3), "classification needs at least 2 classes");
    assert_error(
        &format!("{}    - Dog\n", v.replace("classification", "binary")),
        (8, 3),
        "binary labelling needs exactly 2 classes, found 3",
    );
    assert_error(
        &v.replace("  classes:", "  default_class: O\n  classes:"),
        (8, 18),
        "`O` is not one of the classes (Cat, Not Cat)",
    );
    assert_error(&v.replace("classification", "sequence"), (7, 9), "`sequence` labelling is not supported yet");
    assert_error(
        &v.replace("classification", "object_detection"),
        (7, 9),
        "`object_detection` labelling is not supported yet",
    );
    // Flow sequences are located too.
    assert_error(
        &v.replace("  classes:\n    - Cat\n    - Not Cat\n", "  classes: [Cat, Dog, Cat]\n"),
        (8, 23),
        "listed twice",
    );
}

#[test]
fn model_errors_point_at_the_value() {
    let m = |extra: &str| format!("{VALID}model:\n{extra}");
    assert_error(
        &m("  strategy: greedy\n"),
        (12, 13),
        "unknown strategy `greedy`, expected one of random, entropy, margin, least_confidence, kcenter, cluster_margin, power_margin, adaptive_margin, bait, adaptive_bait",
    );
    assert_error(&m("  auto_label_threshold: 0\n"), (12, 25), "0 is not in (0, 1]");
    assert_error(&m("  auto_label_threshold: 1.5\n"), (12, 25), "1.5 is not in (0, 1]");
    assert_error(&m("  auto_label_threshold: .nan\n"), (12, 25), "NaN is not in (0, 1]");
    assert_error(&m("  test_fraction: 0.95\n"), (12, 18), "0.95 is not in [0, 0.9]");
    assert_error(&m("  test_fraction: -0.1\n"), (12, 18), "-0.1 is not in [0, 0.9]");
    assert_error(&m("  covariance_prior: 3\n"), (12, 21), "3 is not in [0, 2]");
    assert_error(&m("  covariance_prior: .nan\n"), (12, 21), "NaN is not in [0, 2]");
    assert_error(
        &m("  encoder: minilm_l6\n"),
        (12, 12),
        "encoder `minilm_l6` reads text but data_type images needs a images encoder",
    );
    assert_error(&m("  pretrain_file: pretrain.csv\n"), (12, 18), "apply to text tasks only");
    assert_error(&m("  directory: rows.csv\n"), (12, 14), "rows.csv is not a directory");
    assert_error(&VALID.replace("Is this a cat?", "''"), (2, 10), "task.title: the title is empty");
    assert_error(&format!("{VALID}user: ' '\n"), (11, 7), "user: the user name is empty");
    // Thresholds at the edges are fine.
    let (ok, _dir) = load(&m("  auto_label_threshold: 1\n  test_fraction: 0\n"));
    ok.unwrap();
}

#[test]
fn text_and_json_configs_validate() {
    let text = "task:\n  title: t\ndataset:\n  file: rows.csv\n  data_type: text\n  id_column: id\n  include: include.csv\nlabel:\n  type: binary\n  classes: [a, b]\nmodel:\n  pretrain_file: pretrain.csv\n";
    let (config, dir) = load(text);
    let config = config.unwrap();
    assert_eq!(config.dataset.file.as_deref(), Some(dir.path().join("rows.csv").as_path()));
    assert_eq!(config.encoder(), EncoderKind::MinilmL6);
    let json = "task:\n  title: t\n  template: '<b>{{title}}</b>'\ndataset:\n  directory: items\n  data_type: json\n  text_fields: [title, body]\nlabel:\n  type: binary\n  classes: [a, b]\n";
    let (config, _dir) = load(json);
    assert_eq!(config.unwrap().dataset.text_fields.unwrap(), ["title", "body"]);
    let wrong = json.replace("label:", "model:\n  encoder: mobilenet_v2\nlabel:");
    assert_error(&wrong, (9, 12), "encoder `mobilenet_v2` reads images but data_type json needs a text encoder");
}

#[test]
fn files_that_are_not_configs() {
    let (location, message) = error("");
    assert_eq!(
        (location, message.as_str()),
        (None, "the file is empty: expected the sections task, dataset and label")
    );
    let (location, message) = error("# only a comment\n\n");
    assert_eq!(
        (location, message.as_str()),
        (None, "the file is empty: expected the sections task, dataset and label")
    );
    assert_error(
        "# a list\n- task\n- label\n",
        (2, 1),
        "expected a mapping with the sections task, dataset and label, found a list",
    );
    assert_error("just words\n", (1, 1), "found a single value");
    let (location, message) = error(&format!("{VALID}---\n{VALID}"));
    assert_eq!(location, None);
    assert!(message.contains("more than one document"), "{message}");
    assert_error("task:\n  title: [unclosed\n", (3, 1), "did not find expected ',' or ']'");
    let missing = load_task_in(Path::new("/nonexistent/task.yml"), Path::new("")).unwrap_err();
    assert!(missing.to_string().starts_with("/nonexistent/task.yml: cannot read the task config: "), "{missing}");
}

/// Full messages, exactly as the CLI prints them.
#[test]
fn error_messages_snapshot() {
    let cases = [
        (
            "unknown_key.yml",
            "tests/fixtures/configs/unknown_key.yml:7:3: dataset: unknown field `judgment_file`, expected one of \
             `directory`, `file`, `data_type`, `text_column`, `id_column`, `text_fields`, `include`, \
             `judgements_file`, `image_width`, `image_height`",
        ),
        (
            "wrong_type.yml",
            "tests/fixtures/configs/wrong_type.yml:8:12: label.classes: invalid type: string \"Cat, Not Cat\", \
             expected a sequence",
        ),
        ("missing_key.yml", "tests/fixtures/configs/missing_key.yml:4:3: dataset: missing field `data_type`"),
        (
            "bad_data_type.yml",
            "tests/fixtures/configs/bad_data_type.yml:5:14: dataset.data_type: unknown variant `video`, expected \
             one of `images`, `text`, `json`",
        ),
        ("syntax.yml", "tests/fixtures/configs/syntax.yml:5:13: mapping values are not allowed in this context"),
        ("not_utf8.yml", "tests/fixtures/configs/not_utf8.yml:2:13: the file is not valid UTF-8"),
        (
            "empty.yml",
            "tests/fixtures/configs/empty.yml: the file is empty: expected the sections task, dataset and label",
        ),
        (
            "list.yml",
            "tests/fixtures/configs/list.yml:1:1: expected a mapping with the sections task, dataset and label, \
             found a list",
        ),
    ];
    for (file, expected) in cases {
        let path = PathBuf::from("tests/fixtures/configs").join(file);
        let err = load_task(&path).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}
