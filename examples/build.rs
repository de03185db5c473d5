//! Builds the example guest components and exposes their paths as
//! `GUEST_HELLO_WORLD` and `GUEST_ORDER_PROCESSING`.

fn main() {
    match duroxide_guest_build::build(&["hello-world", "order-processing"]) {
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
