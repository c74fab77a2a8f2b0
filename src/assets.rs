//! Where pretrained artifacts live and what they must hash to.
//!
//! Nothing is downloaded at run time: `scripts/setup.sh` fetches pinned packages from the
//! registries and unpacks them under `$LIGHTBULB_HOME` (linked from the repo as `.deps`).
//! The loader refuses a file whose sha256 differs from the one recorded here.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// Relative path under `<assets>/models` and the sha256 it must have.
pub const MANIFEST: &[(&str, &str)] = &[
    ("mobilenet_v2/model.safetensors", "f06dd918aa42cfca892ca58934c292c67f663de25ea0a6c7b62b6ae87f8ac22d"),
    ("minilm_l6/model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("minilm_l6/tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
];

/// The assets root: `$LIGHTBULB_ASSETS`, else `.deps` in the working directory, else
/// `$LIGHTBULB_HOME` / `~/.cache/lightbulb`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIGHTBULB_ASSETS") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from(".deps");
    if local.join("models").is_dir() {
        return local;
    }
    if let Some(dir) = std::env::var_os("LIGHTBULB_HOME") {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lightbulb")).unwrap_or(local)
}

/// Path of a model file, after checking it exists and matches its recorded sha256.
pub fn verified_model_file(assets: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = assets.join("models").join(rel);
    let Some((_, expected)) = MANIFEST.iter().find(|(name, _)| *name == rel) else {
        bail!("{rel} is not a known artifact");
    };
    let actual =
        sha256_file(&path).with_context(|| format!("reading {} (run scripts/setup.sh to fetch it)", path.display()))?;
    if actual != *expected {
        bail!(
            "{} has sha256 {actual}, expected {expected}: the file is corrupt or not the pinned artifact",
            path.display()
        );
    }
    Ok(path)
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// First 8 hex digits of an artifact's recorded sha256: the version suffix of encoder ids.
pub fn short_hash(rel: &str) -> &'static str {
    MANIFEST.iter().find(|(name, _)| *name == rel).map(|(_, h)| &h[..8]).unwrap_or("unknown")
}
