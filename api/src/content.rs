//! Reading and writing galaxy content directories (the I/O around the engine's pure parser).

use std::fs;
use std::path::{Path, PathBuf};

use orrery_engine::galaxy::{ContentError, ContentFormat, Galaxy};

/// Failures of content I/O or validation.
#[derive(Debug, thiserror::Error)]
pub enum ContentLoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{dir}: {errors}", errors = .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid { dir: PathBuf, errors: Vec<ContentError> },
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), ContentLoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContentLoadError::Io { path, source }
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if ContentFormat::from_path(&path.to_string_lossy()).is_some() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, fs::read_to_string(&path).map_err(io(&path))?));
        }
    }
    Ok(())
}

/// Loads and validates a content directory, reporting every problem found.
pub fn load_dir(dir: &Path) -> Result<Galaxy, ContentLoadError> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    Galaxy::from_files_all(files).map_err(|errors| ContentLoadError::Invalid {
        dir: dir.to_path_buf(),
        errors,
    })
}

/// Writes a galaxy as a content directory.
pub fn write_dir(galaxy: &Galaxy, dir: &Path, format: ContentFormat) -> Result<usize, ContentLoadError> {
    let files = galaxy.to_files(format);
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| ContentLoadError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        fs::write(&path, text).map_err(|source| ContentLoadError::Io { path, source })?;
    }
    Ok(files.len())
}
