//! Model artifacts and embedding caches behind one trait, so that the local directory
//! of the embedded mode and an S3 bucket are interchangeable. Keys are `/`-separated relative
//! paths chosen by the server, never by a client.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid blob key `{0}`")]
    BadKey(String),
    #[error("blob `{0}` not found")]
    NotFound(String),
    #[error("blob store I/O on `{key}`: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("remote blob store on `{key}`: {message}")]
    Remote { key: String, message: String },
}

pub trait BlobStore: Send + Sync {
    /// Stores `bytes` at `key`, replacing any previous value atomically: a reader sees the old
    /// or the new bytes, never a mix. Durable on return.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError>;
    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;

    /// Where the blob lives on this machine's disk, when it does. Callers that work on files
    /// in place (the append-only embedding cache) use it directly instead of keeping a local
    /// working copy and syncing it.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
}

/// A directory on the local disk.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let rel = Path::new(key);
        let clean = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !clean {
            return Err(BlobError::BadKey(key.to_string()));
        }
        Ok(self.root.join(rel))
    }
}

impl BlobStore for LocalDir {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let io = |source| BlobError::Io { key: key.to_string(), source };
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => BlobError::NotFound(key.to_string()),
            _ => BlobError::Io { key: key.to_string(), source },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./a"] {
            assert!(matches!(store.put(bad, b"x"), Err(BlobError::BadKey(_))), "{bad}");
        }
        store.put("models/v1/model.json", b"{}").unwrap();
        assert_eq!(store.get("models/v1/model.json").unwrap(), b"{}");
        assert!(matches!(store.get("models/v2/model.json"), Err(BlobError::NotFound(_))));
    }
}
