//! `duroxide build`: a Python or JavaScript guest directory into a
//! component, with the SDK and WIT contract of the duroxide sources and
//! the pinned build tools (installed on first use).

use std::path::PathBuf;

use anyhow::Context;
use duroxide_guest_build::{Language, build_from};

use super::new::default_sources;
use crate::exit::Code;

/// Builds the guest in `dir` into `output` (default `./DIRNAME.wasm`).
pub fn build(
    dir: &std::path::Path,
    output: Option<PathBuf>,
    sources: Option<PathBuf>,
    tools: Option<PathBuf>,
) -> anyhow::Result<Code> {
    let language = Language::of_dir(dir)?;
    let sources = sources.unwrap_or_else(default_sources);
    let tools = tools.unwrap_or_else(|| sources.join("target").join("tools"));
    let staging = tempfile::tempdir().context("creating a build directory")?;
    let built = build_from(&sources, &tools, language, dir, staging.path())?;
    let output = output.unwrap_or_else(|| PathBuf::from(format!("{}.wasm", built.package)));
    std::fs::copy(&built.path, &output).with_context(|| format!("writing {}", output.display()))?;
    let bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!("built {} ({bytes} bytes)", output.display());
    Ok(Code::Ok)
}
