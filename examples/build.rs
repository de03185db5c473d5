//! Builds the example guest components and exposes their paths as
//! `GUEST_HELLO_WORLD` and `GUEST_ORDER_PROCESSING`.

fn main() -> Result<(), duroxide_guest_build::BuildError> {
    duroxide_guest_build::export(&["hello-world", "order-processing"])
}
