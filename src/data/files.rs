//! Items that are files in a directory tree: images, `.txt` texts, `.json` items.
//!
//! Listing reads directory entries only (no file contents, no `stat` per file), so a folder of
//! 100,000 images lists in well under a second. Hidden files and folders are skipped, and
//! symbolic links are never followed out of the dataset directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

use super::{ItemRef, Location, Skipped};
use crate::config::task::DataType;

/// Extensions (lower case) of the image formats the image encoder decodes.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp"];

/// Largest item file read: a bigger one is reported as a bad item rather than filling memory.
pub const MAX_ITEM_BYTES: u64 = 64 << 20;

/// The data type a file's extension (case-insensitive) belongs to, if any.
pub fn kind_of(path: &Path) -> Option<DataType> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "txt" => Some(DataType::Text),
        "json" => Some(DataType::Json),
        e if IMAGE_EXTENSIONS.contains(&e) => Some(DataType::Images),
        _ => None,
    }
}

/// Lists the items of `data_type` under `root`, sorted by id (the `/`-separated path relative
/// to `root`). Entries that look like items but cannot be used are returned as skipped.
pub fn list(root: &Path, data_type: DataType) -> (Vec<ItemRef>, Vec<Skipped>) {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let canonical_root = std::fs::canonicalize(root).ok();
    for entry in walk(root) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let id = e.path().map(|p| relative_id(root, p)).unwrap_or_else(|| "?".into());
                skipped.push(Skipped { id, reason: format!("cannot be listed: {e}") });
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() || kind_of(entry.path()) != Some(data_type) {
            continue;
        }
        let id = relative_id(root, entry.path());
        if file_type.is_symlink() && !link_stays_inside(entry.path(), canonical_root.as_deref()) {
            skipped.push(Skipped {
                id,
                reason: "symbolic link to something that is not a file inside the dataset directory".into(),
            });
            continue;
        }
        if entry.path().strip_prefix(root).ok().and_then(Path::to_str).is_none() {
            skipped.push(Skipped { id, reason: "the file name is not valid UTF-8".into() });
            continue;
        }
        let path = entry.into_path();
        let location = Location::File(path);
        items.push(ItemRef { id, location });
    }
    items.sort_by(|a, b| a.id.cmp(&b.id));
    skipped.sort_by(|a, b| a.id.cmp(&b.id));
    (items, skipped)
}

/// What a directory holds, for config validation: whether any item of `data_type` exists
/// (the walk stops at the first), else an example of another kind of item found.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub found: bool,
    pub other: Option<(DataType, String)>,
}

pub fn probe(root: &Path, data_type: DataType) -> Probe {
    let mut probe = Probe::default();
    for entry in walk(root).flatten() {
        if entry.file_type().is_dir() {
            continue;
        }
        match kind_of(entry.path()) {
            Some(kind) if kind == data_type => {
                probe.found = true;
                return probe;
            }
            Some(kind) if probe.other.is_none() => {
                probe.other = Some((kind, relative_id(root, entry.path())));
            }
            _ => {}
        }
    }
    probe
}

fn walk(root: &Path) -> impl Iterator<Item = walkdir::Result<DirEntry>> {
    WalkDir::new(root).follow_links(false).min_depth(1).into_iter().filter_entry(|e| e.depth() == 0 || !is_hidden(e))
}

fn is_hidden(entry: &DirEntry) -> bool {
    entry.file_name().to_str().is_some_and(|n| n.starts_with('.'))
}

/// The item id of a path under `root`: relative, `/`-separated (lossy for non-UTF-8 names,
/// which are skipped anyway).
fn relative_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

/// A link is kept only when it resolves to a regular file under the (canonical) root, so the
/// dataset cannot reach outside its directory.
fn link_stays_inside(link: &Path, canonical_root: Option<&Path>) -> bool {
    let (Some(root), Ok(target)) = (canonical_root, std::fs::canonicalize(link)) else {
        return false;
    };
    target.starts_with(root) && target.is_file()
}

/// Reads a whole item file, refusing one over [`MAX_ITEM_BYTES`] or an empty one.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot stat: {e}"))?.len();
    if len > MAX_ITEM_BYTES {
        return Err(format!("the file is {len} bytes, over the {} MiB limit", MAX_ITEM_BYTES >> 20));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` guards against a file that grows between the size check and the read.
    file.take(MAX_ITEM_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_ITEM_BYTES {
        return Err(format!("the file is over the {} MiB limit", MAX_ITEM_BYTES >> 20));
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    Ok(bytes)
}

/// Text of a `.txt` item.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read_capped(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("not valid UTF-8 (first bad byte at offset {})", e.utf8_error().valid_up_to()))?;
    if text.trim().is_empty() {
        return Err("the file holds only whitespace".into());
    }
    Ok(text)
}

/// A `.json` item, parsed.
pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = read_capped(path)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))
}

/// The text an encoder sees for a JSON item: the values of `fields` (dotted paths into nested
/// objects) or, without fields, every string value in key order, joined with newlines.
pub fn json_text(value: &serde_json::Value, fields: Option<&[String]>) -> String {
    let mut parts = Vec::new();
    match fields {
        Some(fields) => {
            for field in fields {
                let found = field.split('.').try_fold(value, |v, key| v.get(key));
                match found {
                    Some(serde_json::Value::String(s)) => parts.push(s.clone()),
                    Some(serde_json::Value::Number(n)) => parts.push(n.to_string()),
                    Some(serde_json::Value::Bool(b)) => parts.push(b.to_string()),
                    Some(other) => collect_strings(other, &mut parts),
                    None => {}
                }
            }
        }
        None => collect_strings(value, &mut parts),
    }
    parts.retain(|p| !p.trim().is_empty());
    parts.join("\n")
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Lexically normalised absolute form of a path (`.` and `..` folded without touching the
/// disk), so paths written relative to different files can be compared.
pub fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
