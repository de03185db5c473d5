//! File-system steps of a guest build, each failing with the path it was
//! about.

use std::path::{Path, PathBuf};

use crate::BuildError;

/// `path`, absolute and with links resolved; it must exist.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, BuildError> {
    path.canonicalize()
        .map_err(|e| BuildError::Failed(format!("cannot find {}: {e}", path.display())))
}

/// Create `dir` and its parents, if missing.
pub(crate) fn mkdir(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", dir.display())))
}

/// The text of the file at `path`.
pub(crate) fn read(path: &Path) -> Result<String, BuildError> {
    std::fs::read_to_string(path)
        .map_err(|e| BuildError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// Copy file `from` to `to`.
pub(crate) fn copy_file(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::copy(from, to).map(drop).map_err(|e| {
        BuildError::Failed(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Copy the files of `from` ending in `.{ext}` to `to`, those of its
/// subdirectories too, except build output (`__pycache__`, `node_modules`).
pub(crate) fn copy_sources(from: &Path, to: &Path, ext: &str) -> Result<(), BuildError> {
    mkdir(to)?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| BuildError::Failed(format!("cannot read {}: {e}", from.display())))?;
    for entry in entries.flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if path.is_dir() {
            if name != "__pycache__" && name != "node_modules" {
                copy_sources(&path, &to.join(&name), ext)?;
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            copy_file(&path, &to.join(&name))?;
        }
    }
    Ok(())
}

/// Remove directory `dir` and what it holds, if it exists.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), BuildError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BuildError::Failed(format!(
            "cannot remove {}: {e}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}
