//! Server settings, layered: built-in defaults < a YAML file (`--settings FILE`) <
//! `LIGHTBULB__…` environment variables (`__` separates nesting: `LIGHTBULB__SCORE_BATCH=64`)
//! < command-line flags. Unknown keys and wrong types are errors that name the key and where
//! it came from. Secrets (signing keys, passwords inside URLs) never reach a log: `Debug` of
//! the settings redacts them.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use serde::Serialize;

use super::ServeOptions;

/// The settings from every layer; `flags` holds only the flags given on the command line
/// (`None` fields are skipped, so they do not hide lower layers).
pub fn layered(file: Option<&Path>, flags: &impl Serialize) -> anyhow::Result<ServeOptions> {
    let mut figment = Figment::from(Serialized::defaults(ServeOptions::default()));
    if let Some(path) = file {
        if !path.is_file() {
            anyhow::bail!("settings file {} does not exist", path.display());
        }
        figment = figment.merge(Yaml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed("LIGHTBULB__").split("__")).merge(Serialized::defaults(flags));
    figment.extract::<ServeOptions>().map_err(|e| {
        // figment names the key and the layer it came from; its errors never print values of
        // other keys.
        anyhow::anyhow!("invalid settings: {}", e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        workers: Option<usize>,
    }

    #[test]
    fn layers_override_in_order_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lightbulb.yml");
        std::fs::write(&file, "score_batch: 8\nworkers: 3\norg: acme\nredis_url: redis://:hunter2@127.0.0.1:6379/0\n")
            .unwrap();
        // Environment beats the file; a flag beats both.
        std::env::set_var("LIGHTBULB__SCORE_BATCH", "16");
        std::env::set_var("LIGHTBULB__S3__BUCKET", "models");
        std::env::set_var("LIGHTBULB__S3__SECRET_ACCESS_KEY", "s3cr3t-value");
        let s = layered(Some(&file), &Flags { workers: Some(5) }).unwrap();
        std::env::remove_var("LIGHTBULB__SCORE_BATCH");
        std::env::remove_var("LIGHTBULB__S3__BUCKET");
        std::env::remove_var("LIGHTBULB__S3__SECRET_ACCESS_KEY");
        let s3 = s.s3.clone().expect("a nested section from the environment");
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("models", "lightbulb/"), "defaults fill the rest");
        assert!(!format!("{s:?}").contains("s3cr3t"), "{s:?}");
        assert_eq!(s.score_batch, 16);
        assert_eq!(s.workers, 5);
        assert_eq!(s.org, "acme");
        assert_eq!(s.api_key_rate, ServeOptions::default().api_key_rate);
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");

        std::fs::write(&file, "score_bach: 8\n").unwrap();
        let err = layered(Some(&file), &Flags::default()).unwrap_err().to_string();
        assert!(err.contains("score_bach"), "{err}");
        std::fs::write(&file, "workers: many\n").unwrap();
        let err = layered(Some(&file), &Flags::default()).unwrap_err().to_string();
        assert!(err.contains("workers") && err.contains("lightbulb.yml"), "{err}");
        assert!(layered(Some(&dir.path().join("missing.yml")), &Flags::default()).is_err());
    }
}
