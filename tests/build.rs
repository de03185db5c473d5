//! Builds every guest component the tests use and exposes each path as an
//! environment variable `GUEST_<NAME>` for `env!`.

fn main() {
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
    ];
    match duroxide_guest_build::build(&guests) {
        Ok(built) => {
            for guest in built {
                println!(
                    "cargo:rustc-env=GUEST_{}={}",
                    guest.const_name(),
                    guest.path.display()
                );
            }
        }
        Err(e) => {
            println!("cargo:warning=building guest components failed: {e}");
            std::process::exit(1);
        }
    }
}
