//! The config's `judgements_file`: every label also appended as a CSV row with the original
//! Light Bulb's columns, for users whose scripts read that file. The database stays the source
//! of truth; this file is an export kept current.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: [&str; 6] = ["path", "label", "labelled_by", "time_taken_ms", "stage", "created_at"];

/// One row of the file.
pub struct JudgementRow<'a> {
    pub path: &'a str,
    /// Empty for an undo: the item has no label any more.
    pub label: &'a str,
    pub labelled_by: &'a str,
    pub time_taken_ms: Option<i64>,
    pub stage: &'a str,
    pub created_at: i64,
}

pub struct JudgementsFile {
    path: PathBuf,
    file: File,
}

impl JudgementsFile {
    /// Opens (creating with a header if absent) for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let fresh = !path.exists() || std::fs::metadata(path)?.len() == 0;
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if fresh {
            file.write_all(&encode(true, &[])?)?;
        }
        Ok(JudgementsFile { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rows and flushes them to the OS (one write call: rows never interleave).
    pub fn append(&mut self, rows: &[JudgementRow]) -> std::io::Result<()> {
        self.file.write_all(&encode(false, rows)?)?;
        self.file.flush()
    }
}

/// Rows as CSV in the file's columns (with the header line first when `header`): the one
/// encoding shared by the judgements file and the CSV export.
pub fn encode(header: bool, rows: &[JudgementRow]) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if header {
        w.write_record(HEADER)?;
    }
    for r in rows {
        let ms = r.time_taken_ms.map(|v| v.to_string()).unwrap_or_default();
        w.write_record([r.path, r.label, r.labelled_by, &ms, r.stage, &r.created_at.to_string()])?;
    }
    w.into_inner().map_err(|e| e.into_error())
}
