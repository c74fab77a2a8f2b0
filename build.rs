//! 1. Embeds an rpath to libtorch so that binaries, tests and benches run without
//!    LD_LIBRARY_PATH.
//! 2. Stages the browser app (`frontend/dist`, built by `make frontend`) into OUT_DIR for
//!    rust-embed. Without a build there, a one-page notice is staged instead, so that a Rust
//!    build never depends on npm having run.
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }

    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("frontend");
    let dist = Path::new("frontend/dist");
    println!("cargo:rerun-if-changed=frontend/dist");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    if dist.join("index.html").is_file() {
        copy_dir(dist, &out)?;
    } else {
        std::fs::create_dir_all(&out)?;
        std::fs::write(
            out.join("index.html"),
            "<!doctype html><title>Lightbulb</title><p>The browser app is not built: run <code>make frontend</code> \
             and rebuild. The API is served under <a href=\"/api/v1/projects\">/api/v1</a>.</p>",
        )?;
    }
    Ok(())
}
