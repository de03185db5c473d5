//! What the host examples share: the guest components they run and logging.

/// The hello-world guest component (HelloWorld, SayHello).
pub const HELLO_WORLD_WASM: &str = env!("GUEST_HELLO_WORLD");

/// The order-processing guest component (ProcessOrder and its activities).
pub const ORDER_PROCESSING_WASM: &str = env!("GUEST_ORDER_PROCESSING");

/// ProcessOrder's input, as the order-processing guest declares it.
#[derive(Debug, serde::Serialize)]
pub struct Order {
    /// The order's number.
    pub order_id: u64,
}

/// The data of the ShippingReady event.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Shipping {
    /// Who ships it.
    pub carrier: String,
}

/// ProcessOrder's output.
#[derive(Debug, serde::Deserialize)]
pub struct Completed {
    /// "completed".
    pub status: String,
    /// How it shipped.
    pub shipping: Shipping,
}

/// The database the client and runtime examples share, unless
/// `DUROXIDE_DB` names another.
pub const DEMO_DB: &str = "sqlite:./duroxide_demo.db";

/// The store URL an example uses: `DUROXIDE_DB` if set (an SQLite path or
/// URL, or `postgres://…` with the `postgres` feature), else `default`.
pub fn store_url(default: &str) -> String {
    std::env::var("DUROXIDE_DB").unwrap_or_else(|_| default.to_owned())
}

/// Log to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

/// A suffix that keeps instance ids unique across runs on the same database.
pub fn run_suffix() -> String {
    format!("{:x}", duroxide::clock::system_now_ms())
}
