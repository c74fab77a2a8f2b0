//! Tests: data. Listing is stable and cheap; bad items are reported, never fatal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use lightbulb::config::task::{load_task, parse_task, TaskConfig};
use lightbulb::data::{self, Content, DataError, Dataset};

use crate::common::repo;

/// A config for the items under `base` (relative paths in `dataset` resolve against it).
fn config(base: &Path, dataset: &str, label: &str) -> TaskConfig {
    let yaml = format!("task:\n  title: t\ndataset:\n{dataset}label:\n{label}");
    parse_task(&yaml, &base.join("task.yml"), base).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn open(base: &Path, dataset: &str) -> Dataset {
    data::open(&config(base, dataset, "  type: binary\n  classes: [a, b]\n")).unwrap()
}

fn ids(dataset: &Dataset) -> Vec<&str> {
    dataset.items.iter().map(|i| i.id.as_str()).collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn text(dataset: &Dataset, i: usize) -> String {
    match dataset.read(i).unwrap() {
        Content::Text(t) => t,
        Content::Image(_) => panic!("item {i} is an image"),
    }
}

#[test]
fn nested_image_directories_list_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    for rel in [
        "b/2.png",
        "a/10.jpg",
        "a/9.JPG",
        "a.b.png",
        "top.gif",
        "c/d/e.webp",
        "z.bmp",
        "a/x.jpeg",
        // Not items: hidden, other types, no extension.
        ".hidden.png",
        ".cache/x.png",
        "a/.thumbs/y.png",
        "notes.txt",
        "README",
        "c/data.json",
    ] {
        write(&root.join(rel), b"bytes");
    }
    let dataset = open(dir.path(), "  directory: images\n  data_type: images\n");
    assert_eq!(
        ids(&dataset),
        ["a.b.png", "a/10.jpg", "a/9.JPG", "a/x.jpeg", "b/2.png", "c/d/e.webp", "top.gif", "z.bmp"]
    );
    assert!(dataset.skipped.is_empty(), "{:?}", dataset.skipped);
    // The same tree lists the same way again.
    let again = open(dir.path(), "  directory: images\n  data_type: images\n");
    assert_eq!(ids(&dataset), ids(&again));
    match dataset.read(0).unwrap() {
        Content::Image(bytes) => assert_eq!(bytes, b"bytes"),
        Content::Text(_) => panic!("an image reads as bytes"),
    }
}

#[test]
fn bad_image_files_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    write(&root.join("good.png"), b"png");
    write(&root.join("empty.png"), b"");
    // Sparse: no disk used, but over the size cap.
    let big = std::fs::File::create(root.join("huge.png")).unwrap();
    big.set_len((64 << 20) + 1).unwrap();
    let dataset = open(dir.path(), "  directory: images\n  data_type: images\n");
    assert_eq!(ids(&dataset), ["empty.png", "good.png", "huge.png"]);
    let err = dataset.read(0).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: the file is empty", root.join("empty.png").display()));
    assert!(dataset.read(1).is_ok());
    let err = dataset.read(2).unwrap_err().to_string();
    assert!(err.ends_with("huge.png: the file is 67108865 bytes, over the 64 MiB limit"), "{err}");
    std::fs::remove_file(root.join("good.png")).unwrap();
    let err = dataset.read(1).unwrap_err().to_string();
    assert!(err.contains("good.png: cannot open: "), "{err}");
    assert!(matches!(dataset.read(99), Err(DataError::BadItem { .. })));
}

#[cfg(unix)]
#[test]
fn symlinks_do_not_leave_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    write(&root.join("inside.png"), b"png");
    write(&dir.path().join("outside.png"), b"secret");
    write(&dir.path().join("elsewhere/deep.png"), b"secret");
    std::os::unix::fs::symlink(root.join("inside.png"), root.join("alias.png")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.png"), root.join("escape.png")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), root.join("linked_dir")).unwrap();
    let dataset = open(dir.path(), "  directory: images\n  data_type: images\n");
    assert_eq!(ids(&dataset), ["alias.png", "inside.png"]);
    assert_eq!(dataset.skipped.len(), 1);
    assert_eq!(dataset.skipped[0].id, "escape.png");
    assert!(dataset.skipped[0].reason.contains("not a file inside the dataset directory"));
}

#[test]
fn text_files_read_and_bad_utf8_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("texts/one.txt"), "The film is a delight.");
    write(&dir.path().join("texts/sub/two.TXT"), "Dull.\n");
    write(&dir.path().join("texts/bad.txt"), b"caf\xe9");
    write(&dir.path().join("texts/blank.txt"), " \n");
    let dataset = open(dir.path(), "  directory: texts\n  data_type: text\n");
    assert_eq!(ids(&dataset), ["bad.txt", "blank.txt", "one.txt", "sub/two.TXT"]);
    let err = dataset.read(0).unwrap_err().to_string();
    assert!(err.ends_with("bad.txt: not valid UTF-8 (first bad byte at offset 3)"), "{err}");
    assert!(dataset.read(1).unwrap_err().to_string().ends_with("blank.txt: the file holds only whitespace"));
    assert_eq!(text(&dataset, 2), "The film is a delight.");
    assert_eq!(text(&dataset, 3), "Dull.\n");
}

#[test]
fn csv_rows_with_bad_rows_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("rows.csv"),
        "id,stars,body\n\
         r1,5,Loved it\n\
         r2,1,\"Hated it, really\nand twice\"\n\
         r1,3,A duplicate key\n\
         r3,2,\n\
         r4,4\n\
         ,4,no key\n\
         r5,3,   \n\
         r6,4,Fine\n",
    );
    let dataset = open(dir.path(), "  file: rows.csv\n  data_type: text\n  text_column: body\n  id_column: id\n");
    assert_eq!(ids(&dataset), ["r1", "r2", "r6"]);
    assert_eq!(text(&dataset, 1), "Hated it, really\nand twice");
    let skipped: Vec<(&str, &str)> = dataset.skipped.iter().map(|s| (s.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(
        skipped,
        [
            ("r1", "duplicate key (first used by row 1; row 3 skipped)"),
            ("r3", "the text is empty"),
            ("r4", "the row has no `body` column"),
            ("row-6", "the key is empty"),
            ("r5", "the text is empty"),
        ]
    );
    // Without an id column, rows are keyed by number.
    let dataset = open(dir.path(), "  file: rows.csv\n  data_type: text\n  text_column: body\n");
    assert_eq!(ids(&dataset), ["row-1", "row-2", "row-3", "row-6", "row-8"]);
}

#[test]
fn a_csv_without_the_text_column_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("rows.csv"), "id,review\n1,Good\n");
    let config = config(dir.path(), "  file: rows.csv\n  data_type: text\n", "  type: binary\n  classes: [a, b]\n");
    let err = data::open(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: there is no column `text` (columns: id, review)", dir.path().join("rows.csv").display())
    );
    let config = self::config(
        dir.path(),
        "  file: rows.csv\n  data_type: text\n  text_column: review\n  id_column: key\n",
        "  type: binary\n  classes: [a, b]\n",
    );
    assert!(matches!(data::open(&config), Err(DataError::MissingColumn { column, .. }) if column == "key"));
}

#[test]
fn jsonl_rows_with_bad_lines_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("rows.jsonl"),
        "{\"id\": \"a\", \"text\": \"first\"}\n\
         \n\
         {\"id\": 7, \"text\": \"second\"}\n\
         {not json}\n\
         [1, 2]\n\
         {\"id\": \"b\"}\n\
         {\"id\": \"a\", \"text\": \"again\"}\n\
         {\"text\": \"no key\"}\n\
         {\"id\": \"c\", \"text\": 12}\n",
    );
    let dataset = open(dir.path(), "  file: rows.jsonl\n  data_type: text\n  id_column: id\n");
    assert_eq!(ids(&dataset), ["a", "7"]);
    assert_eq!(text(&dataset, 1), "second");
    let skipped: Vec<&str> = dataset.skipped.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(skipped, ["row-4", "row-5", "b", "a", "row-8", "c"]);
    assert!(dataset.skipped[0].reason.starts_with("not valid JSON: key must be a string at line 1 column 2"));
    assert_eq!(dataset.skipped[1].reason, "the line is not a JSON object");
    assert_eq!(dataset.skipped[3].reason, "duplicate key (first used by row 1; row 7 skipped)");
    assert_eq!(dataset.skipped[5].reason, "the object has no string field `text`");
    // No object has the field at all: a config mistake, not bad rows.
    let config = config(
        dir.path(),
        "  file: rows.jsonl\n  data_type: text\n  text_column: body\n",
        "  type: binary\n  classes: [a, b]\n",
    );
    let err = data::open(&config).unwrap_err().to_string();
    assert!(err.ends_with("rows.jsonl: there is no column `body` (columns: id, text)"), "{err}");
}

#[test]
fn json_items_read_their_text_fields() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("items/r1.json"),
        r#"{"title": "Great kettle", "stars": 5, "body": "Boils fast.", "meta": {"author": "Ann", "tags": ["home", "kitchen"]}}"#,
    );
    write(&dir.path().join("items/r2.json"), "{\"title\": \"broken\"");
    let all = open(dir.path(), "  directory: items\n  data_type: json\n");
    assert_eq!(ids(&all), ["r1.json", "r2.json"]);
    // Every string value, in key order.
    assert_eq!(text(&all, 0), "Boils fast.\nAnn\nhome\nkitchen\nGreat kettle");
    let err = all.read(1).unwrap_err();
    assert!(
        matches!(&err, DataError::BadItem { path, reason } if path.ends_with("r2.json") && reason.starts_with("not valid JSON: EOF while parsing an object")),
        "{err}"
    );
    let chosen = open(
        dir.path(),
        "  directory: items\n  data_type: json\n  text_fields: [title, body, stars, meta.author, missing]\n",
    );
    assert_eq!(text(&chosen, 0), "Great kettle\nBoils fast.\n5\nAnn");
    assert_eq!(chosen.read_json(0).unwrap()["stars"], 5);
    let none = open(dir.path(), "  directory: items\n  data_type: json\n  text_fields: [missing]\n");
    assert!(none.read(0).unwrap_err().to_string().ends_with("r1.json: the item has no text in the chosen fields"));
}

#[test]
fn the_example_json_items_load() {
    let config = load_task(Path::new("config/examples/product_reviews.yml")).unwrap();
    let dataset = data::open(&config).unwrap();
    assert!(dataset.len() >= 30, "{}", dataset.len());
    assert!(dataset.skipped.is_empty());
    for i in 0..dataset.len() {
        assert!(text(&dataset, i).lines().count() == 2);
    }
}

#[test]
fn include_lists_restrict_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    for rel in ["data/images/1.png", "data/images/2.png", "data/images/sub/3.png", "data/images/4.png"] {
        write(&dir.path().join(rel), b"png");
    }
    // Entries relative to the CSV's directory, or plain item ids; unknown ones are ignored.
    write(
        &dir.path().join("data/truth.csv"),
        "path,label\nimages/sub/3.png,a\n./images/1.png,b\n4.png,a\nimages/9.png,b\n",
    );
    let dataset = open(dir.path(), "  directory: data/images\n  data_type: images\n  include: data/truth.csv\n");
    assert_eq!(ids(&dataset), ["1.png", "4.png", "sub/3.png"]);

    write(&dir.path().join("rows.csv"), "id,text\nx,one\ny,two\nz,three\n");
    write(&dir.path().join("keep.csv"), "label,path\na,z\nb,x\n");
    let dataset = open(dir.path(), "  file: rows.csv\n  data_type: text\n  id_column: id\n  include: keep.csv\n");
    assert_eq!(ids(&dataset), ["x", "z"]);

    write(&dir.path().join("none.csv"), "path\nnothing\n");
    let config = config(
        dir.path(),
        "  file: rows.csv\n  data_type: text\n  id_column: id\n  include: none.csv\n",
        "  type: binary\n  classes: [a, b]\n",
    );
    let err = data::open(&config).unwrap_err().to_string();
    assert!(err.starts_with("the dataset has no usable items (none of the 3 items of"), "{err}");
    write(&dir.path().join("nopath.csv"), "id\nx\n");
    let config = self::config(
        dir.path(),
        "  file: rows.csv\n  data_type: text\n  id_column: id\n  include: nopath.csv\n",
        "  type: binary\n  classes: [a, b]\n",
    );
    let err = data::open(&config).unwrap_err().to_string();
    assert!(err.ends_with("nopath.csv: there is no column `path` (columns: id)"), "{err}");
}

#[test]
fn open_reports_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("images/a.png"), b"png");
    let mut config =
        config(dir.path(), "  directory: images\n  data_type: images\n", "  type: binary\n  classes: [a, b]\n");
    std::fs::remove_dir_all(dir.path().join("images")).unwrap();
    let err = data::open(&config).unwrap_err();
    assert!(matches!(err, DataError::MissingDirectory(_)));
    assert!(err.to_string().ends_with("images does not exist or is not a directory"));
    std::fs::create_dir(dir.path().join("images")).unwrap();
    let err = data::open(&config).unwrap_err().to_string();
    assert!(err.starts_with("the dataset has no usable items (no image files in "), "{err}");
    config.dataset.directory = None;
    assert!(matches!(data::open(&config), Err(DataError::Empty(_))));
}

#[test]
fn listing_100k_files_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    for shard in 0..100 {
        let sub = root.join(format!("{shard:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..1000 {
            std::fs::File::create(sub.join(format!("{i:04}.jpg"))).unwrap();
        }
    }
    let config =
        config(dir.path(), "  directory: images\n  data_type: images\n", "  type: binary\n  classes: [a, b]\n");
    let started = Instant::now();
    let dataset = data::open(&config).unwrap();
    let took = started.elapsed();
    assert_eq!(dataset.len(), 100_000);
    assert_eq!(dataset.items[1000].id, "001/0000.jpg");
    assert!(took.as_secs_f64() < 5.0, "listing took {took:?}");
}

#[test]
fn demo_data_lists() {
    if !repo(".deps/data/mnist/images").is_dir() {
        eprintln!("skipping: run scripts/setup.sh for the demo data");
        return;
    }
    let mnist = data::open(&load_task(Path::new("config/examples/mnist.yml")).unwrap()).unwrap();
    assert_eq!(mnist.len(), 10_000);
    assert_eq!(mnist.items[3].id, "00003.png");
    assert!(matches!(mnist.read(3), Ok(Content::Image(bytes)) if bytes.starts_with(b"\x89PNG")));

    let truth = |rel: &str| std::fs::read_to_string(repo(rel)).unwrap().lines().count() - 1;
    let three_eight = data::open(&load_task(Path::new("config/examples/mnist_3v8.yml")).unwrap()).unwrap();
    assert_eq!(three_eight.len(), truth(".deps/data/mnist/truth-3v8.csv"));
    assert_eq!(three_eight.items[0].id, "00003.png");
    // Truth files name items relative to themselves; EntryKeys maps them to item ids.
    let keys = data::EntryKeys::new(&repo(".deps/data/mnist/truth-3v8.csv"), Some(&repo(".deps/data/mnist/images")));
    assert_eq!(keys.resolve("images/00003.png"), "00003.png");
    assert_eq!(keys.resolve("00003.png"), "00003.png");

    let reviews = data::open(&load_task(Path::new("config/examples/rotten_tomatoes.yml")).unwrap()).unwrap();
    assert_eq!(reviews.len() + reviews.skipped.len(), truth(".deps/data/rotten_tomatoes/truth-sentiment.csv"));
    assert!(!text(&reviews, 0).is_empty());
    let three = data::open(&load_task(Path::new("config/examples/rotten_tomatoes_3class.yml")).unwrap()).unwrap();
    assert_eq!(three.len() + three.skipped.len(), truth(".deps/data/rotten_tomatoes/truth-3class.csv"));

    // 20 Newsgroups: the 4-topic task keeps 1,000 posts per topic of the 11,293 in the file.
    let topics_config = load_task(Path::new("config/examples/newsgroups_4topic.yml")).unwrap();
    let topics = data::open(&topics_config).unwrap();
    assert_eq!(topics.len(), 4_000);
    assert!(topics.skipped.is_empty());
    let truth_4 = std::fs::read_to_string(repo(".deps/data/newsgroups/truth-4topic.csv")).unwrap();
    for class in &topics_config.label.classes {
        assert_eq!(truth_4.lines().filter(|l| l.ends_with(&format!(",{class}"))).count(), 1_000, "{class}");
    }
    let groups = data::open(&load_task(Path::new("config/examples/newsgroups_20class.yml")).unwrap()).unwrap();
    assert_eq!(groups.len(), truth(".deps/data/newsgroups/truth-20class.csv"));
    assert_eq!(groups.len(), 11_293);
    assert!(!text(&groups, 0).is_empty());
}
