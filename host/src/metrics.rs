//! Metrics in the Prometheus (OpenMetrics) text format: what runtimes and
//! stores in this process did. One set per process, as Prometheus clients
//! usually keep, so a host scrapes every runtime and store it runs at once.
//!
//! `encode` renders them; with the `metrics-http` feature, `serve` answers
//! scrapes on an address.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// An orchestration name, the label of per-orchestration counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Orchestration {
    /// The orchestration's name.
    pub(crate) name: String,
}

/// How a turn found its execution.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TurnKind {
    /// `cached` (a parked execution), `replayed` (from history) or
    /// `started` (a new execution).
    pub(crate) kind: &'static str,
}

/// Which queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Queue {
    /// `orchestrator` or `activity`.
    pub(crate) queue: &'static str,
}

/// How an activity attempt ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ActivityOutcome {
    /// `ok`, `error`, `cancelled` (its result was no longer wanted),
    /// `stopped` (the runtime stopped) or `abandoned` (its lock was lost).
    pub(crate) outcome: &'static str,
}

/// Every metric this process keeps.
pub(crate) struct Metrics {
    registry: Registry,
    /// Instances started, by orchestration.
    pub(crate) started: Family<Orchestration, Counter>,
    /// Instances completed, by orchestration.
    pub(crate) completed: Family<Orchestration, Counter>,
    /// Instances failed, by orchestration.
    pub(crate) failed: Family<Orchestration, Counter>,
    /// Instances cancelled, by orchestration.
    pub(crate) cancelled: Family<Orchestration, Counter>,
    /// Turns, by how they found their execution.
    pub(crate) turns: Family<TurnKind, Counter>,
    /// Time from a turn's start to its commit.
    pub(crate) turn_seconds: Histogram,
    /// Time of an activity call.
    pub(crate) activity_seconds: Histogram,
    /// Activity attempts, by how they ended.
    pub(crate) activity_attempts: Family<ActivityOutcome, Counter>,
    /// Messages or work items visible now, by queue (sampled).
    pub(crate) queue_depth: Family<Queue, Gauge>,
    /// Age of the oldest visible message, by queue, in ms (sampled).
    pub(crate) queue_oldest_ms: Family<Queue, Gauge>,
    /// Time of a store commit (one write batch).
    pub(crate) commit_seconds: Histogram,
    /// Writes in a store commit.
    pub(crate) commit_ops: Histogram,
    /// Sandboxes of the pool in use (sampled).
    pub(crate) pooled_sandboxes: Gauge,
}

impl Metrics {
    fn new() -> Self {
        // Latencies from 100 µs to about 100 s; commits to about 1.6 s.
        let latency = || Histogram::new(exponential_buckets(1e-4, 4.0, 11));
        let mut metrics = Self {
            registry: Registry::default(),
            started: Family::default(),
            completed: Family::default(),
            failed: Family::default(),
            cancelled: Family::default(),
            turns: Family::default(),
            turn_seconds: latency(),
            activity_seconds: latency(),
            activity_attempts: Family::default(),
            queue_depth: Family::default(),
            queue_oldest_ms: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 15)),
            commit_ops: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            pooled_sandboxes: Gauge::default(),
        };
        let mut registry = Registry::with_prefix("duroxide");
        let (r, m) = (&mut registry, &metrics);
        r.register(
            "orchestrations_started",
            "Instances started",
            m.started.clone(),
        );
        r.register(
            "orchestrations_completed",
            "Instances completed",
            m.completed.clone(),
        );
        r.register(
            "orchestrations_failed",
            "Instances failed",
            m.failed.clone(),
        );
        r.register(
            "orchestrations_cancelled",
            "Instances cancelled",
            m.cancelled.clone(),
        );
        r.register(
            "turns",
            "Orchestration turns, by how they found their execution",
            m.turns.clone(),
        );
        r.register(
            "turn_duration_seconds",
            "Time from a turn's start to its commit",
            m.turn_seconds.clone(),
        );
        r.register(
            "activity_duration_seconds",
            "Time of an activity call",
            m.activity_seconds.clone(),
        );
        r.register(
            "activity_attempts",
            "Activity attempts, by how they ended",
            m.activity_attempts.clone(),
        );
        r.register(
            "queue_depth",
            "Messages or work items visible now, by queue",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_oldest_age_milliseconds",
            "Age of the oldest visible message, by queue",
            m.queue_oldest_ms.clone(),
        );
        r.register(
            "store_commit_duration_seconds",
            "Time of one store commit (a batch of writes)",
            m.commit_seconds.clone(),
        );
        r.register(
            "store_commit_writes",
            "Writes in one store commit",
            m.commit_ops.clone(),
        );
        r.register(
            "pooled_sandboxes_in_use",
            "Sandboxes of the pool in use",
            m.pooled_sandboxes.clone(),
        );
        metrics.registry = registry;
        metrics
    }
}

/// This process's metrics.
pub(crate) fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Seconds of `elapsed`, as histograms take them.
pub(crate) fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

/// Every metric of this process in the Prometheus text format
/// (OpenMetrics).
pub fn encode() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &global().registry);
    text
}

/// The content type of [`encode`]'s text, for an HTTP response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(feature = "metrics-http")]
pub use serve::{MetricsServer, serve};

#[cfg(feature = "metrics-http")]
mod serve {
    //! A small HTTP endpoint answering Prometheus scrapes.

    use std::net::SocketAddr;
    use std::sync::Arc;

    /// A running metrics endpoint; dropping it stops it.
    pub struct MetricsServer {
        server: Arc<tiny_http::Server>,
        thread: Option<std::thread::JoinHandle<()>>,
        addr: SocketAddr,
    }

    impl MetricsServer {
        /// The address it listens on (useful after binding port 0).
        pub fn addr(&self) -> SocketAddr {
            self.addr
        }
    }

    impl Drop for MetricsServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Serves [`encode`](super::encode) at `GET /metrics` on `addr`, on a
    /// thread of its own; any other path is 404.
    pub fn serve(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not bound to an IP address"))?;
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("duroxide-metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        let header =
                            tiny_http::Header::from_bytes("Content-Type", super::CONTENT_TYPE);
                        let response = tiny_http::Response::from_string(super::encode());
                        match header {
                            Ok(header) => response.with_header(header),
                            Err(()) => response,
                        }
                    } else {
                        tiny_http::Response::from_string("not found").with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            })?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_text_with_their_labels() {
        let name = Orchestration {
            name: "metrics-unit-test".into(),
        };
        global().completed.get_or_create(&name).inc();
        global().commit_seconds.observe(0.002);
        let text = encode();
        assert!(
            text.contains("duroxide_orchestrations_completed_total{name=\"metrics-unit-test\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("duroxide_store_commit_duration_seconds_count"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
