//! Tests: the oracle simulator on real digits with the real encoder, and the CLI around it.

use std::process::Command;

use crate::common::data;

/// A config over a 400-digit subset of MNIST threes and eights, and its truth file, in `dir`.
fn digits_task(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let truth = std::fs::read_to_string(data("mnist/truth-3v8.csv")).unwrap();
    let subset: Vec<&str> = truth.lines().take(401).collect();
    let truth_path = dir.join("truth.csv");
    std::fs::write(&truth_path, subset.join("\n") + "\n").unwrap();
    let config = format!(
        "task:\n  title: Three or eight?\ndataset:\n  directory: {}\n  data_type: images\n  include: {}\n\
         label:\n  type: binary\n  classes: [three, eight]\nmodel:\n  directory: {}\n",
        data("mnist/images").display(),
        truth_path.display(),
        dir.join("out").display()
    );
    let config_path = dir.join("digits.yml");
    std::fs::write(&config_path, config).unwrap();
    (config_path, truth_path)
}

fn lightbulb() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lightbulb"));
    cmd.env("LIGHTBULB_ASSETS", crate::common::assets());
    cmd
}

/// `lightbulb simulate` to 60 labels in steps of 10 with `extra` arguments; its JSON report.
fn simulate(config: &std::path::Path, truth: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = lightbulb()
        .args(["simulate", "--config"])
        .arg(config)
        .arg("--truth")
        .arg(truth)
        .args(["--budget", "60", "--step", "10", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON object on stdout: {stdout}");
    serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
}

#[test]
fn simulate_prints_one_json_report_with_a_rising_curve() {
    let dir = tempfile::tempdir().unwrap();
    let (config, truth) = digits_task(dir.path());
    let run = |seed: &str| simulate(&config, &truth, &["--seed", seed]);
    let report = run("1");
    for key in ["strategy", "items", "test_items", "curve", "ceiling", "embed_items_per_s", "seconds"] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    assert_eq!(report["items"], 400);
    assert_eq!(report["test_items"], 100);
    let curve = report["curve"].as_array().unwrap();
    let labels: Vec<u64> = curve.iter().map(|p| p["labels"].as_u64().unwrap()).collect();
    assert_eq!(labels, vec![10, 20, 30, 40, 50, 60]);
    let last = curve.last().unwrap();
    // Threes and eights are easy for ImageNet features: 60 labels must do well.
    assert!(last["accuracy"].as_f64().unwrap() > 0.9, "{report}");
    assert!(last["macro_f1"].as_f64().unwrap() > 0.9, "{report}");
    assert!(report["ceiling"]["accuracy"].as_f64().unwrap() > 0.95, "{report}");
    // The second run reuses the embedding cache and reproduces the curve exactly.
    let again = run("1");
    assert_eq!(again["curve"], report["curve"]);
    assert_eq!(again["embedded"], 0, "all embeddings come from the cache");
}

#[test]
fn bait_and_labelled_row_statistics_run_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (config, truth) = digits_task(dir.path());
    for (extra, strategy) in
        [(&["--strategy", "bait"][..], "bait"), (&["--pool-statistics", "false"][..], "adaptive_bait")]
    {
        let report = simulate(&config, &truth, extra);
        assert_eq!(report["strategy"], strategy, "{report}");
        let last = report["curve"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["labels"], 60, "{report}");
        assert!(last["accuracy"].as_f64().unwrap() > 0.9, "{extra:?}: {report}");
    }
}

#[test]
fn a_bad_config_exits_non_zero_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(&path, "task:\n  title: x\n  colour: red\n").unwrap();
    let out = lightbulb().args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yml:3:3"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
}

#[test]
fn a_truth_file_with_an_unknown_class_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = digits_task(dir.path());
    let truth = dir.path().join("bad-truth.csv");
    std::fs::write(&truth, "path,label\n00001.png,three\n00002.png,seven\n").unwrap();
    let out = lightbulb().args(["simulate", "--config"]).arg(&config).arg("--truth").arg(&truth).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad-truth.csv:3") && stderr.contains("seven"), "{stderr}");
}
