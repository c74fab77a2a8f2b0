//! Items that are rows of one file: CSV/TSV with a header, or JSONL (one object per line).
//!
//! A bad row (no text, a duplicate key, a line that is not JSON) is skipped and reported,
//! never fatal; only a file without the text column at all is an error, since then every row
//! would be skipped and the cause is a config mistake.

use std::collections::HashMap;
use std::path::Path;

use super::{DataError, ItemRef, Location, Skipped};

/// How a rows file is laid out, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Which columns (CSV) or fields (JSONL) hold an item's text and its key.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub text: &'a str,
    /// Without one, a row's key is `row-N`, N its 1-based data row (CSV) or line (JSONL).
    pub id: Option<&'a str>,
}

/// Lists a rows file's items in file order.
pub fn list(path: &Path, columns: Columns<'_>) -> Result<(Vec<ItemRef>, Vec<Skipped>), DataError> {
    match Format::of(path) {
        Some(Format::Csv) => list_csv(path, b',', columns),
        Some(Format::Tsv) => list_csv(path, b'\t', columns),
        Some(Format::Jsonl) => list_jsonl(path, columns),
        None => Err(DataError::UnreadableFile(path.to_path_buf(), "not a .csv, .tsv, .jsonl or .ndjson file".into())),
    }
}

/// Gathers rows, keeping the first of duplicate keys.
#[derive(Default)]
struct Collector {
    items: Vec<ItemRef>,
    skipped: Vec<Skipped>,
    first_row: HashMap<String, usize>,
}

impl Collector {
    fn push(&mut self, row: usize, id: String, text: Option<&str>, missing: &str) {
        let text = match text {
            None => return self.skip(id, missing.to_string()),
            Some(t) if t.trim().is_empty() => return self.skip(id, "the text is empty".into()),
            Some(t) => t,
        };
        if id.trim().is_empty() {
            return self.skip(format!("row-{row}"), "the key is empty".into());
        }
        if let Some(first) = self.first_row.get(&id) {
            let reason = format!("duplicate key (first used by row {first}; row {row} skipped)");
            return self.skip(id, reason);
        }
        self.first_row.insert(id.clone(), row);
        self.items.push(ItemRef { id, location: Location::Inline(text.to_string()) });
    }

    fn skip(&mut self, id: String, reason: String) {
        self.skipped.push(Skipped { id, reason });
    }
}

fn list_csv(path: &Path, delimiter: u8, columns: Columns<'_>) -> Result<(Vec<ItemRef>, Vec<Skipped>), DataError> {
    let unreadable = |e: &dyn std::fmt::Display| DataError::UnreadableFile(path.to_path_buf(), e.to_string());
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_path(path).map_err(|e| unreadable(&e))?;
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| unreadable(&e))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let find = |name: &str| -> Result<usize, DataError> {
        headers.iter().position(|h| h == name).ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: name.to_string(),
            present: headers.clone(),
        })
    };
    let text_at = find(columns.text)?;
    let id_at = columns.id.map(find).transpose()?;
    let missing = format!("the row has no `{}` column", columns.text);
    let mut rows = Collector::default();
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    loop {
        row += 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(unreadable(&e)),
            Err(e) => {
                // A malformed record (e.g. an unterminated quote) costs that row only.
                rows.skip(format!("row-{row}"), format!("cannot be parsed: {e}"));
                continue;
            }
        }
        let field = |at: usize| record.get(at).map(std::str::from_utf8);
        let id = match id_at {
            None => format!("row-{row}"),
            Some(at) => match field(at) {
                Some(Ok(id)) => id.trim().to_string(),
                Some(Err(_)) => {
                    rows.skip(format!("row-{row}"), "the key is not valid UTF-8".into());
                    continue;
                }
                None => {
                    rows.skip(format!("row-{row}"), "the row has no key column".into());
                    continue;
                }
            },
        };
        match field(text_at) {
            Some(Err(_)) => rows.skip(id, "the text is not valid UTF-8".into()),
            Some(Ok(text)) => rows.push(row, id, Some(text), &missing),
            None => rows.push(row, id, None, &missing),
        }
    }
    Ok((rows.items, rows.skipped))
}

fn list_jsonl(path: &Path, columns: Columns<'_>) -> Result<(Vec<ItemRef>, Vec<Skipped>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::UnreadableFile(path.to_path_buf(), e.to_string()))?;
    let missing = format!("the object has no string field `{}`", columns.text);
    let mut rows = Collector::default();
    let mut first_fields: Option<Vec<String>> = None;
    let mut has_text_field = false;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let row = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let object = match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(object)) => object,
            Ok(_) => {
                rows.skip(format!("row-{row}"), "the line is not a JSON object".into());
                continue;
            }
            Err(e) => {
                rows.skip(format!("row-{row}"), format!("not valid JSON: {e}"));
                continue;
            }
        };
        if first_fields.is_none() {
            first_fields = Some(object.keys().cloned().collect());
        }
        has_text_field |= object.contains_key(columns.text);
        let id = match columns.id {
            None => format!("row-{row}"),
            Some(key) => match object.get(key) {
                Some(serde_json::Value::String(s)) => s.trim().to_string(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => {
                    rows.skip(format!("row-{row}"), format!("the object has no string or number field `{key}`"));
                    continue;
                }
            },
        };
        let text = object.get(columns.text).and_then(serde_json::Value::as_str);
        rows.push(row, id, text, &missing);
    }
    if !has_text_field {
        if let Some(present) = first_fields {
            return Err(DataError::MissingColumn {
                path: path.to_path_buf(),
                column: columns.text.to_string(),
                present,
            });
        }
    }
    Ok((rows.items, rows.skipped))
}

/// The `path` column of an include (or truth) CSV: the entries, trimmed, in file order.
pub fn path_column(path: &Path) -> Result<Vec<String>, DataError> {
    let unreadable = |e: &dyn std::fmt::Display| DataError::UnreadableFile(path.to_path_buf(), e.to_string());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| unreadable(&e))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| unreadable(&e))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let Some(at) = headers.iter().position(|h| h == "path") else {
        return Err(DataError::MissingColumn { path: path.to_path_buf(), column: "path".into(), present: headers });
    };
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(&e))?;
        if let Some(entry) = record.get(at).map(str::trim).filter(|e| !e.is_empty()) {
            entries.push(entry.to_string());
        }
    }
    Ok(entries)
}
