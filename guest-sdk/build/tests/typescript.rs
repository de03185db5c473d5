//! The JavaScript SDK's TypeScript declarations (`guest-sdk/js/duroxide.d.ts`)
//! checked by the pinned TypeScript compiler: a file that uses the whole API
//! type-checks, and a call with an argument of the wrong type does not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use duroxide_guest_build::tools::componentize_js;

/// The SDK sources.
fn js_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../js")
}

/// The pinned compiler, installed once for the tests that run at the same
/// time, into the target directory's `tools` as a guest build does.
fn tsc() -> &'static Path {
    static TSC: OnceLock<PathBuf> = OnceLock::new();
    TSC.get_or_init(|| {
        let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tools = target_tmp.parent().unwrap_or(target_tmp).join("tools");
        componentize_js(&tools, &js_sdk().join("tools"))
            .unwrap_or_else(|e| panic!("cannot install the JavaScript tools: {e}"))
            .join("node_modules/.bin/tsc")
    })
}

/// `tsc --noEmit` over the declarations and `file` (under
/// `tests/typescript/`), staged side by side so `./duroxide.js` resolves to
/// the declarations.
fn check(file: &str) -> Output {
    let stage = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typescript");
    let copy = |from: &Path, name: &str| {
        std::fs::copy(from, stage.path().join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
    };
    copy(&js_sdk().join("duroxide.d.ts"), "duroxide.d.ts");
    copy(&fixtures.join(file), file);
    // ES modules, as guests are.
    std::fs::write(stage.path().join("package.json"), r#"{"type": "module"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    Command::new(tsc())
        .current_dir(stage.path())
        .args([
            "--noEmit", "--strict", "--module", "nodenext", "--target", "esnext",
        ])
        .args(["duroxide.d.ts", file])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tsc: {e}"))
}

/// What tsc printed.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_declarations_and_a_use_of_the_whole_api_type_check() {
    let output = check("usage.ts");
    assert!(output.status.success(), "{}", printed(&output));
}

#[test]
fn an_argument_of_the_wrong_type_is_refused() {
    let output = check("wrong_argument.ts");
    assert!(!output.status.success(), "accepted");
    let text = printed(&output);
    assert!(
        text.contains("wrong_argument.ts(5,") && text.contains("TS2345"),
        "{text}"
    );
}
