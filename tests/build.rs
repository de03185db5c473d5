//! Builds every guest component the tests use and exposes each path as an
//! environment variable for `env!`: `GUEST_<NAME>` for Rust guests,
//! `GUEST_PY_<NAME>` and `GUEST_JS_<NAME>` for the Python and JavaScript
//! ones (whose build tools it installs into the target directory).

use duroxide_guest_build::{Language, export_guests};

fn main() -> Result<(), duroxide_guest_build::BuildError> {
    let guests = [
        "hello-world",
        "order-processing",
        "scenarios",
        "evolving-v1",
        "evolving-v2",
        "forbidden-import",
        "model",
        "model-v2",
        "programs",
        "patterns",
        "misbehaving",
        "typed-payloads",
        "upgrade-v1",
        "upgrade-v2",
        "capabilities",
        "grant-orchestrations",
        "conformance",
        "conformance-changed",
        "contract-0-2-0",
    ];
    duroxide_guest_build::export(&guests)?;
    export_guests(
        Language::Python,
        &[
            "guests-py/conformance",
            "guests-py/conformance-changed",
            "guests-py/grants",
            "guests-py/http-activities",
        ],
    )?;
    export_guests(
        Language::JavaScript,
        &["guests-js/conformance", "guests-js/conformance-changed"],
    )
}
