//! The process's Prometheus metrics, served as text at `GET /metrics` on both ports: requests by
//! server, route, method and status, with a latency histogram (time to the response head);
//! bytes into and out of each store; store errors; uploads in flight; registry flush latency;
//! and, at scrape time, images by status. One process-wide set, like a Prometheus default
//! registry, so any module can count without passing a handle around.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: &'static str,
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    server: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreOnly {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric glint keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    store_bytes: Family<StoreLabels, Counter>,
    store_errors: Family<StoreOnly, Counter>,
    uploads_in_flight: Gauge,
    flush_seconds: Histogram,
    images: Family<StatusLabel, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 52 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("glint");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by server, route, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by server and route",
            latency.clone(),
        );
        let store_bytes = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_bytes",
            "Image bytes written to (in) and read from (out) each store",
            store_bytes.clone(),
        );
        let store_errors = Family::<StoreOnly, Counter>::default();
        registry.register(
            "store_errors",
            "Failed store operations, by store",
            store_errors.clone(),
        );
        let uploads_in_flight = Gauge::default();
        registry.register(
            "uploads_in_flight",
            "Uploads streaming into a store now",
            uploads_in_flight.clone(),
        );
        let flush_seconds = latency_histogram();
        registry.register(
            "registry_flush_duration_seconds",
            "Time to make registry writes durable (one group commit)",
            flush_seconds.clone(),
        );
        let images = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "images",
            "Image records by status (counted when scraped, by the process holding the registry)",
            images.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            store_bytes,
            store_errors,
            uploads_in_flight,
            flush_seconds,
            images,
        }
    }

    /// Counts one answered request. Methods outside HTTP's standard set count as `OTHER`, so a
    /// client cannot grow the label set (or the memory behind it) at will.
    pub fn request(
        &self,
        server: &'static str,
        route: &'static str,
        method: &str,
        status: u16,
        took: Duration,
    ) {
        const METHODS: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
        ];
        let method = METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("OTHER");
        self.requests
            .get_or_create(&RequestLabels {
                server,
                route,
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { server, route })
            .observe(took.as_secs_f64());
    }

    /// Counts `bytes` written to (`upload`) or read from a store.
    pub fn store_bytes(&self, store: &'static str, upload: bool, bytes: u64) {
        let direction = if upload { "in" } else { "out" };
        self.store_bytes
            .get_or_create(&StoreLabels { store, direction })
            .inc_by(bytes);
    }

    /// Counts a failed store operation.
    pub fn store_error(&self, store: &'static str) {
        self.store_errors.get_or_create(&StoreOnly { store }).inc();
    }

    /// Marks an upload as streaming until the guard is dropped.
    pub fn upload_started(&self) -> UploadGuard {
        self.uploads_in_flight.inc();
        UploadGuard
    }

    /// Records one registry flush.
    pub fn flushed(&self, took: Duration) {
        self.flush_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition, with `images` set to these counts first (when known).
    pub fn render(&self, images: Option<&[(&'static str, u64)]>) -> String {
        if let Some(counts) = images {
            for (status, n) in counts {
                self.images
                    .get_or_create(&StatusLabel { status })
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps an upload counted in `uploads_in_flight` while alive.
pub struct UploadGuard;

impl Drop for UploadGuard {
    fn drop(&mut self) {
        metrics().uploads_in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_exposition() {
        let m = metrics();
        m.request("api", "test_route", "GET", 200, Duration::from_millis(3));
        m.request("api", "test_route", "BREW", 405, Duration::from_millis(1));
        m.store_bytes("file", true, 1234);
        {
            let _upload = m.upload_started();
            assert!(m.render(None).contains("glint_uploads_in_flight 1"));
        }
        let text = m.render(Some(&[("active", 7)]));
        assert!(text.contains(
            "glint_http_requests_total{server=\"api\",route=\"test_route\",method=\"GET\",status=\"200\"} 1"
        ), "{text}");
        assert!(text.contains("glint_store_bytes_total{store=\"file\",direction=\"in\"} 1234"));
        assert!(
            text.contains("method=\"OTHER\",status=\"405\"} 1"),
            "{text}"
        );
        assert!(text.contains("glint_images{status=\"active\"} 7"));
        assert!(text.contains("glint_http_request_duration_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
    }
}
