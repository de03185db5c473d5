//! The import rules between layers, checked on the source: a layer that
//! names one it may not depend on fails the test, naming the file. See the
//! "Layers" section of the architecture notes: sandbox depends on history
//! and limits only; client and providers know nothing of execution.

use std::path::{Path, PathBuf};

/// A layer's folder (or file) under `src/` and the modules it may not name.
const RULES: &[(&str, &[&str])] = &[
    ("sandbox", &["runtime", "client", "providers"]),
    ("client", &["sandbox", "runtime"]),
    ("providers", &["sandbox", "runtime", "client"]),
    ("history.rs", &["sandbox", "runtime", "client", "providers"]),
    ("limits.rs", &["sandbox", "runtime", "client", "providers"]),
    ("clock.rs", &["sandbox", "runtime", "client", "providers"]),
    (
        "tenant.rs",
        &[
            "sandbox",
            "runtime",
            "client",
            "providers",
            "history",
            "limits",
        ],
    ),
];

/// Files that may read the wall clock directly: the clock itself, and the
/// measurement helpers of the benchmarks. Everything else takes time from
/// its store's clock, which tests can drive.
const WALL_CLOCK_READERS: &[&str] = &["clock.rs", "runtime/turn_cost.rs"];

/// Every `.rs` file at or under `path`.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The forbidden modules `source` names: as a `crate::module` path, or
/// inside a grouped `use crate::{...}`.
fn named_modules(source: &str, forbidden: &[&str]) -> Vec<String> {
    let mut named = Vec::new();
    for module in forbidden {
        if source.contains(&format!("crate::{module}")) {
            named.push(format!("crate::{module}"));
        }
    }
    for (start, _) in source.match_indices("crate::{") {
        let group = &source[start..];
        let group = &group[..group.find(';').unwrap_or(group.len())];
        for module in forbidden {
            let listed = group
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == *module);
            if listed {
                named.push(format!("crate::{{{module}}}"));
            }
        }
    }
    named
}

#[test]
fn no_layer_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (layer, forbidden) in RULES {
        let files = rust_files(&src.join(layer));
        assert!(!files.is_empty(), "no source found for layer {layer}");
        for file in files {
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for module in named_modules(&source, forbidden) {
                broken.push(format!("{} names {module}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_plain_and_grouped_paths() {
    let forbidden = ["runtime", "client"];
    assert_eq!(
        named_modules("use crate::runtime::replay::Replay;", &forbidden),
        ["crate::runtime"]
    );
    assert_eq!(
        named_modules(
            "use crate::{history::Event, client::ClientError};",
            &forbidden
        ),
        ["crate::{client}"]
    );
    assert!(named_modules("use crate::history::Event; // runtime", &forbidden).is_empty());
}

#[test]
fn only_the_clock_reads_the_wall_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut readers: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|file| {
            let source = std::fs::read_to_string(file).unwrap_or_default();
            source.contains("system_now_ms") || source.contains("SystemTime::now")
        })
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).ok()?.display().to_string();
            (relative != "layer_rules.rs").then_some(relative)
        })
        .collect();
    readers.sort();
    assert_eq!(readers, WALL_CLOCK_READERS);
}
