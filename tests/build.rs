//! Builds every guest component the tests use and exposes each path as an
//! environment variable `GUEST_<NAME>` for `env!`.

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
    ];
    duroxide_guest_build::export(&guests)
}
