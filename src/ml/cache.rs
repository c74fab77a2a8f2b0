//! On-disk embedding cache: one directory per encoder id, append-only.
//!
//! `vectors.f16` holds raw little-endian f16 rows; `keys.jsonl` holds one `[item id,
//! fingerprint]` line per row. A row's vector is written before its key line, so after a
//! crash a key line always has its vector; a torn tail (a partial line, or vectors without
//! keys) is cut off when the cache is opened. A later row for the same id supersedes an
//! earlier one (the item changed), so nothing is ever rewritten in place.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use half::f16;
use serde::{Deserialize, Serialize};

use crate::ml::embeddings::Embeddings;
use crate::ml::encoder::EncoderSpec;

const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    format: u32,
    encoder: EncoderSpec,
}

pub struct EmbeddingCache {
    dir: PathBuf,
    spec: EncoderSpec,
    rows: HashMap<String, (usize, String)>,
    embeddings: Embeddings,
}

impl EmbeddingCache {
    /// Opens (or creates) the cache for `spec` under `root/<encoder id>/`.
    pub fn open(root: &Path, spec: &EncoderSpec) -> anyhow::Result<Self> {
        let dir = root.join(Self::dir_name(spec));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let meta_path = dir.join("meta.json");
        let meta = Meta { format: FORMAT, encoder: spec.clone() };
        let fresh = match std::fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice::<Meta>(&bytes).ok() != Some(meta),
            Err(_) => true,
        };
        if fresh {
            // A cache written by another encoder version or format is useless: start over.
            for name in ["vectors.f16", "keys.jsonl"] {
                let _ = std::fs::remove_file(dir.join(name));
            }
            let meta = Meta { format: FORMAT, encoder: spec.clone() };
            write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta)?)?;
        }
        let mut cache = Self { dir, spec: spec.clone(), rows: HashMap::new(), embeddings: Embeddings::new(spec.dim) };
        cache.load()?;
        Ok(cache)
    }

    fn load(&mut self) -> anyhow::Result<()> {
        let dim = self.spec.dim;
        let vec_path = self.dir.join("vectors.f16");
        let key_path = self.dir.join("keys.jsonl");
        let mut raw = Vec::new();
        if let Ok(mut f) = File::open(&vec_path) {
            f.read_to_end(&mut raw).with_context(|| format!("reading {}", vec_path.display()))?;
        }
        let complete_rows = raw.len() / (dim * 2);
        let mut keys = Vec::new();
        let mut torn = raw.len() % (dim * 2) != 0;
        if let Ok(f) = File::open(&key_path) {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            while reader.read_line(&mut line)? > 0 {
                // A line without its newline was torn by a crash: ignore it and what follows.
                if !line.ends_with('\n') {
                    torn = true;
                    break;
                }
                match serde_json::from_str::<(String, String)>(line.trim_end()) {
                    Ok(key) => keys.push(key),
                    Err(_) => {
                        torn = true;
                        break;
                    }
                }
                line.clear();
            }
        }
        let rows = keys.len().min(complete_rows);
        torn |= keys.len() != complete_rows;
        keys.truncate(rows);
        let data: Vec<f16> = raw[..rows * dim * 2].chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect();
        self.embeddings = Embeddings::from_f16(dim, data).unwrap_or_else(|| Embeddings::new(dim));
        if torn {
            self.rewrite_tail(rows, &keys)?;
        }
        self.rows = keys.into_iter().enumerate().map(|(row, (id, fp))| (id, (row, fp))).collect();
        Ok(())
    }

    /// Cuts both files back to `rows` consistent entries after a torn write.
    fn rewrite_tail(&self, rows: usize, keys: &[(String, String)]) -> anyhow::Result<()> {
        let vec_path = self.dir.join("vectors.f16");
        if vec_path.exists() {
            OpenOptions::new().write(true).open(&vec_path)?.set_len((rows * self.spec.dim * 2) as u64)?;
        }
        let mut text = String::new();
        for k in keys {
            text.push_str(&serde_json::to_string(k)?);
            text.push('\n');
        }
        write_atomic(&self.dir.join("keys.jsonl"), text.as_bytes())
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

    /// Appends embeddings and makes them durable (fsync) before returning their rows.
    pub fn append(&mut self, entries: &[(String, String, Vec<f32>)]) -> anyhow::Result<Vec<usize>> {
        let dim = self.spec.dim;
        let mut bytes = Vec::with_capacity(entries.len() * dim * 2);
        let mut keys = String::new();
        for (id, fp, v) in entries {
            if v.len() != dim {
                bail!("embedding of {id} has {} values, the encoder's width is {dim}", v.len());
            }
            bytes.extend(v.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()));
            keys.push_str(&serde_json::to_string(&(id, fp))?);
            keys.push('\n');
        }
        let mut vf = OpenOptions::new().create(true).append(true).open(self.dir.join("vectors.f16"))?;
        vf.write_all(&bytes)?;
        vf.sync_data()?;
        let mut kf = OpenOptions::new().create(true).append(true).open(self.dir.join("keys.jsonl"))?;
        kf.write_all(keys.as_bytes())?;
        kf.sync_data()?;
        let mut rows = Vec::with_capacity(entries.len());
        for (id, fp, v) in entries {
            rows.push(self.embeddings.len());
            self.rows.insert(id.clone(), (self.embeddings.len(), fp.clone()));
            self.embeddings.push(v);
        }
        Ok(rows)
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
pub const FILES: [&str; 3] = ["vectors.f16", "keys.jsonl", "meta.json"];

impl EmbeddingCache {
    /// The directory (under the cache root) that holds `spec`'s cache.
    pub fn dir_name(spec: &EncoderSpec) -> String {
        sanitize(&spec.id)
    }
}

fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// Writes a whole file via a temporary sibling and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
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

    #[test]
    fn another_encoder_version_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), &spec()).unwrap();
        c.append(&[("a".into(), "1".into(), vec![1.0, 2.0, 3.0])]).unwrap();
        let other = EncoderSpec { id: "test@1".into(), modality: Modality::Text, dim: 4 };
        assert!(EmbeddingCache::open(dir.path(), &other).unwrap().is_empty());
    }
}
