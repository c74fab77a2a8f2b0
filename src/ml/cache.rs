//! On-disk embedding cache: one directory per encoder id, append-only.
//!
//! `vectors.f16` holds raw little-endian f16 rows; `keys.jsonl` holds one `[item id,
//! fingerprint]` line per row. A row's vector is written before its key line, so after a
//! crash a key line always has its vector; a torn tail (a partial line, or vectors without
//! keys) is cut off when the cache is read. A later row for the same id supersedes an
//! earlier one (the item changed), so nothing is ever rewritten in place.
//!
//! Several processes may share one cache (two simulations of one data set, `lightbulb embed`
//! beside a server). Each read and each append holds an exclusive lock on the directory's
//! `lock` file: unlocked, one process's vectors could land between another's vectors and key
//! lines (every key after them would name the wrong vector), and a process opening the cache
//! mid-append would take the append for a crash's torn tail and cut it off. Before appending,
//! a handle reads what others appended since it last looked, and skips items they already
//! embedded.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use half::f16;
use serde::{Deserialize, Serialize};

use crate::ml::embeddings::Embeddings;
use crate::ml::encoder::EncoderSpec;

const FORMAT: u32 = 1;

const VECTORS: &str = "vectors.f16";
const KEYS: &str = "keys.jsonl";
const META: &str = "meta.json";
const LOCK: &str = "lock";

/// Bytes of `vectors.f16` read per step when loading (bounds the transient copy).
const READ_CHUNK: usize = 64 << 20;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    format: u32,
    encoder: EncoderSpec,
}

/// How much of the two files a handle has read: the byte length of their consistent prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Extent {
    vectors: u64,
    keys: u64,
}

pub struct EmbeddingCache {
    dir: PathBuf,
    spec: EncoderSpec,
    rows: HashMap<String, (usize, String)>,
    embeddings: Embeddings,
    /// The directory's `lock` file, shared so a guard can borrow it while `self` changes.
    lock: Arc<File>,
    extent: Extent,
}

/// The directory lock, released when dropped (and by the OS if the process dies).
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock<'a>(file: &'a File, dir: &Path) -> anyhow::Result<Locked<'a>> {
    file.lock().with_context(|| format!("locking the embedding cache {}", dir.display()))?;
    Ok(Locked(file))
}

fn file_len(path: &Path) -> anyhow::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl EmbeddingCache {
    /// Opens (or creates) the cache for `spec` under `root/<encoder id>/`.
    pub fn open(root: &Path, spec: &EncoderSpec) -> anyhow::Result<Self> {
        let dir = root.join(Self::dir_name(spec));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_file = Arc::new(
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(LOCK))
                .with_context(|| format!("opening {}", dir.join(LOCK).display()))?,
        );
        let mut cache = Self {
            dir,
            spec: spec.clone(),
            rows: HashMap::new(),
            embeddings: Embeddings::new(spec.dim),
            lock: Arc::clone(&lock_file),
            extent: Extent::default(),
        };
        let _held = lock(&lock_file, &cache.dir)?;
        if !cache.meta_matches()? {
            // A cache written by another encoder version or format is useless: start over.
            for name in [VECTORS, KEYS] {
                let _ = std::fs::remove_file(cache.dir.join(name));
            }
            let meta = Meta { format: FORMAT, encoder: spec.clone() };
            write_atomic(&cache.dir.join(META), &serde_json::to_vec_pretty(&meta)?)?;
        }
        cache.read_new_rows()?;
        Ok(cache)
    }

    fn meta_matches(&self) -> anyhow::Result<bool> {
        let expected = Meta { format: FORMAT, encoder: self.spec.clone() };
        Ok(match std::fs::read(self.dir.join(META)) {
            Ok(bytes) => serde_json::from_slice::<Meta>(&bytes).ok() == Some(expected),
            Err(_) => false,
        })
    }

    fn on_disk(&self) -> anyhow::Result<Extent> {
        Ok(Extent { vectors: file_len(&self.dir.join(VECTORS))?, keys: file_len(&self.dir.join(KEYS))? })
    }

    /// Reads the rows appended since this handle last looked (all of them the first time),
    /// and cuts a torn tail (a crash mid-append) off both files. Call with the lock held.
    fn read_new_rows(&mut self) -> anyhow::Result<()> {
        let dim = self.spec.dim;
        let row_bytes = (dim * 2) as u64;
        let disk = self.on_disk()?;
        if disk.vectors < self.extent.vectors || disk.keys < self.extent.keys {
            // Cut back by another handle's crash recovery: read everything again.
            self.rows.clear();
            self.embeddings = Embeddings::new(dim);
            self.extent = Extent::default();
        }
        let key_path = self.dir.join(KEYS);
        // Each new key with the byte offset its line ends at.
        let mut keys: Vec<((String, String), u64)> = Vec::new();
        let mut torn = false;
        if disk.keys > self.extent.keys {
            let mut f = File::open(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
            f.seek(SeekFrom::Start(self.extent.keys))?;
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            let mut end = self.extent.keys;
            while reader.read_line(&mut line)? > 0 {
                // A line without its newline was torn by a crash: ignore it and what follows.
                if !line.ends_with('\n') {
                    torn = true;
                    break;
                }
                match serde_json::from_str::<(String, String)>(line.trim_end()) {
                    Ok(key) => {
                        end += line.len() as u64;
                        keys.push((key, end));
                    }
                    Err(_) => {
                        torn = true;
                        break;
                    }
                }
                line.clear();
            }
        }
        let new_vector_bytes = disk.vectors - self.extent.vectors;
        let whole_rows = (new_vector_bytes / row_bytes) as usize;
        let rows = keys.len().min(whole_rows);
        torn |= keys.len() != whole_rows || !new_vector_bytes.is_multiple_of(row_bytes);
        keys.truncate(rows);

        let first = self.embeddings.len();
        let vec_path = self.dir.join(VECTORS);
        if rows > 0 {
            let mut f = File::open(&vec_path).with_context(|| format!("reading {}", vec_path.display()))?;
            f.seek(SeekFrom::Start(self.extent.vectors))?;
            let mut left = rows * row_bytes as usize;
            let step = (READ_CHUNK / row_bytes as usize).max(1) * row_bytes as usize;
            let mut buf = vec![0u8; step.min(left)];
            while left > 0 {
                let n = step.min(left);
                f.read_exact(&mut buf[..n]).with_context(|| format!("reading {}", vec_path.display()))?;
                self.embeddings.extend_from_le_bytes(&buf[..n]);
                left -= n;
            }
        }
        let key_end = keys.last().map_or(self.extent.keys, |(_, end)| *end);
        for (k, ((id, fp), _)) in keys.into_iter().enumerate() {
            self.rows.insert(id, (first + k, fp));
        }
        self.extent = Extent { vectors: self.extent.vectors + rows as u64 * row_bytes, keys: key_end };
        if torn {
            self.cut_tail()?;
        }
        Ok(())
    }

    /// Cuts both files back to the consistent prefix this handle has read (after a torn write).
    fn cut_tail(&self) -> anyhow::Result<()> {
        for (name, len) in [(VECTORS, self.extent.vectors), (KEYS, self.extent.keys)] {
            let path = self.dir.join(name);
            if path.exists() {
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(len).with_context(|| format!("cutting the torn tail of {}", path.display()))?;
                f.sync_all()?;
            }
        }
        Ok(())
    }

    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    pub fn len(&self) -> usize {
        self.embeddings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.embeddings.is_empty()
    }

    /// The row holding `id`'s embedding, if cached with the same fingerprint.
    pub fn row(&self, id: &str, fingerprint: &str) -> Option<usize> {
        self.rows.get(id).filter(|(_, fp)| fp == fingerprint).map(|(row, _)| *row)
    }

    /// Appends embeddings and makes them durable (fsync) before returning their rows. Items
    /// another process cached meanwhile (same id and fingerprint) keep that row.
    pub fn append(&mut self, entries: &[(String, String, Vec<f32>)]) -> anyhow::Result<Vec<usize>> {
        let dim = self.spec.dim;
        for (id, _, v) in entries {
            if v.len() != dim {
                bail!("embedding of {id} has {} values, the encoder's width is {dim}", v.len());
            }
        }
        let lock_file = Arc::clone(&self.lock);
        let _held = lock(&lock_file, &self.dir)?;
        if self.on_disk()? != self.extent {
            if !self.meta_matches()? {
                bail!(
                    "the embedding cache {} was reset for another encoder version while this process used it",
                    self.dir.display()
                );
            }
            self.read_new_rows()?;
        }
        let fresh: Vec<&(String, String, Vec<f32>)> =
            entries.iter().filter(|(id, fp, _)| self.row(id, fp).is_none()).collect();
        let mut bytes = Vec::with_capacity(fresh.len() * dim * 2);
        let mut keys = String::new();
        for (id, fp, v) in &fresh {
            bytes.extend(v.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()));
            keys.push_str(&serde_json::to_string(&(id, fp))?);
            keys.push('\n');
        }
        if !fresh.is_empty() {
            let mut vf = OpenOptions::new().create(true).append(true).open(self.dir.join(VECTORS))?;
            vf.write_all(&bytes)?;
            vf.sync_data()?;
            let mut kf = OpenOptions::new().create(true).append(true).open(self.dir.join(KEYS))?;
            kf.write_all(keys.as_bytes())?;
            kf.sync_data()?;
            self.extent.vectors += bytes.len() as u64;
            self.extent.keys += keys.len() as u64;
        }
        for (id, fp, v) in fresh {
            self.rows.insert(id.clone(), (self.embeddings.len(), fp.clone()));
            self.embeddings.push(v);
        }
        entries
            .iter()
            .map(|(id, fp, _)| {
                self.row(id, fp).with_context(|| format!("{id} is missing from the cache it was appended to"))
            })
            .collect()
    }

    pub fn embeddings(&self) -> &Embeddings {
        &self.embeddings
    }

    pub fn into_embeddings(self) -> Embeddings {
        self.embeddings
    }
}

/// Encoder ids contain `@`; keep directory names portable.
/// The files of one encoder's cache, relative to [`EmbeddingCache::dir_name`]: what a remote
/// copy of the cache consists of, in the order a copy must be written. Vectors before keys
/// (a key always has its vector; extra vectors are cut off on open) and meta.json last (a
/// directory without it is discarded and rebuilt). Read a copy in the reverse order.
pub const FILES: [&str; 3] = [VECTORS, KEYS, META];

impl EmbeddingCache {
    /// The directory (under the cache root) that holds `spec`'s cache.
    pub fn dir_name(spec: &EncoderSpec) -> String {
        sanitize(&spec.id)
    }
}

fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// Writes a whole file via a temporary sibling and a rename, so readers never see half of it,
/// and syncs it first, so an acknowledged write survives a crash. The sibling is hidden and
/// keeps the whole file name (`.picks.csv.tmp`): replacing only the extension could overwrite a
/// file of the caller's that happens to be named like it (`picks.tmp`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::encoder::Modality;

    fn spec() -> EncoderSpec {
        EncoderSpec { id: "test@1".into(), modality: Modality::Text, dim: 3 }
    }

    #[test]
    fn appended_rows_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        c.append(&[("a".into(), "1".into(), vec![1.0, 2.0, 3.0]), ("b".into(), "1".into(), vec![4.0, 5.0, 6.0])])
            .unwrap();
        // Simulate a crash mid-append: half a vector and half a key line.
        let sub = dir.path().join("test_1");
        OpenOptions::new().append(true).open(sub.join("vectors.f16")).unwrap().write_all(&[1, 2, 3]).unwrap();
        OpenOptions::new().append(true).open(sub.join("keys.jsonl")).unwrap().write_all(b"[\"c\",").unwrap();
        let c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.row("b", "1"), Some(1));
        assert_eq!(c.row("b", "2"), None, "a changed fingerprint is a miss");
        assert_eq!(c.embeddings().row(1), vec![4.0, 5.0, 6.0]);
        let mut c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        c.append(&[("c".into(), "1".into(), vec![0.5, 0.5, 0.5])]).unwrap();
        assert_eq!(EmbeddingCache::open(dir.path(), &spec()).unwrap().row("c", "1"), Some(2));
    }

    /// Four handles on one directory (as four processes, or four projects' trainers sharing
    /// the server's cache) append at once, each its own items and the same shared ones.
    #[test]
    fn handles_appending_at_once_keep_every_key_on_its_own_vector() {
        let dir = tempfile::tempdir().unwrap();
        let vector = |id: &str| -> Vec<f32> {
            let h = id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 2048;
            vec![h as f32, id.len() as f32, 1.0]
        };
        std::thread::scope(|scope| {
            for t in 0..4 {
                let root = dir.path();
                scope.spawn(move || {
                    for i in 0..25 {
                        // Every round opens a new handle, as a new process would.
                        let mut c = EmbeddingCache::open(root, &spec()).unwrap();
                        let ids = [format!("own-{t}-{i}"), format!("shared-{i}")];
                        let entries: Vec<_> = ids.iter().map(|id| (id.clone(), "1".to_string(), vector(id))).collect();
                        let rows = c.append(&entries).unwrap();
                        for (id, row) in ids.iter().zip(rows) {
                            assert_eq!(c.embeddings().row(row), vector(id), "{id} in the appending handle");
                        }
                        if i % 2 == 0 {
                            let rows =
                                c.append(&[(format!("own-{t}-{i}-b"), "1".into(), vector(&format!("own-{t}-{i}-b")))]);
                            assert_eq!(c.embeddings().row(rows.unwrap()[0]), vector(&format!("own-{t}-{i}-b")));
                        }
                    }
                });
            }
        });
        let c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        let mut ids: Vec<String> = (0..25).map(|i| format!("shared-{i}")).collect();
        for t in 0..4 {
            ids.extend((0..25).map(|i| format!("own-{t}-{i}")));
            ids.extend((0..25).step_by(2).map(|i| format!("own-{t}-{i}-b")));
        }
        for id in &ids {
            let row = c.row(id, "1").unwrap_or_else(|| panic!("{id} is missing"));
            assert_eq!(c.embeddings().row(row), vector(id), "{id} after reopening");
        }
        assert_eq!(c.len(), ids.len(), "an item another handle had cached is not written again");
    }

    #[test]
    fn a_handle_sees_what_another_appended_and_a_later_crash_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        let mut b = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        a.append(&[("x".into(), "1".into(), vec![1.0, 1.0, 1.0])]).unwrap();
        // b had not seen x: it reads it before appending and reuses its row.
        let rows = b.append(&[("x".into(), "1".into(), vec![9.0, 9.0, 9.0]), ("y".into(), "1".into(), vec![2.0; 3])]);
        assert_eq!(rows.unwrap(), vec![0, 1]);
        assert_eq!(b.embeddings().row(0), vec![1.0, 1.0, 1.0]);
        // A crash in a third process after its vector, before its key line.
        let sub = dir.path().join("test_1");
        OpenOptions::new().append(true).open(sub.join("vectors.f16")).unwrap().write_all(&[0; 6]).unwrap();
        let rows = a.append(&[("z".into(), "1".into(), vec![3.0; 3])]).unwrap();
        assert_eq!(rows, vec![2]);
        let c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.embeddings().row(c.row("y", "1").unwrap()), vec![2.0; 3]);
        assert_eq!(c.embeddings().row(c.row("z", "1").unwrap()), vec![3.0; 3]);
    }

    #[test]
    fn another_encoder_version_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        c.append(&[("a".into(), "1".into(), vec![1.0, 2.0, 3.0])]).unwrap();
        let other = EncoderSpec { id: "test@1".into(), modality: Modality::Text, dim: 4 };
        assert!(EmbeddingCache::open(dir.path(), &other).unwrap().is_empty());
    }
}
