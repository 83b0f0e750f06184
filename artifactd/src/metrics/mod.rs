//! What `/metrics` reports, in the OpenMetrics text format Prometheus scrapes: requests by
//! route class and status with their latency, bytes uploaded and served, refused uploads by
//! reason, index publishes and their duration, proxy cache answers and upstream errors,
//! database pool use and storage errors.
//!
//! One set of metrics per process: each part of the server reports through the functions
//! here, and `/metrics` renders them with the pool's use read at that moment.

mod store;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub use store::Counted;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublishLabels {
    provider: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<RouteLabel>,
    uploaded: Counter,
    served: Counter,
    refused: Family<ReasonLabel, Counter>,
    publishes: Family<PublishLabels, Counter>,
    publish_seconds: Histograms<ProviderLabel>,
    cache: Family<ResultLabel, Counter>,
    upstream_errors: Family<KindLabel, Counter>,
    storage_errors: Family<OpLabel, Counter>,
    pool: Family<StateLabel, Gauge>,
}

/// Request latencies: 1 ms to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "artifactd_http_requests",
            "HTTP requests answered, by route class and status",
            requests.clone(),
        );
        let latency: Histograms<RouteLabel> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "artifactd_http_request_duration",
            "Time to the response head, by route class",
            Unit::Seconds,
            latency.clone(),
        );
        let uploaded = Counter::default();
        registry.register_with_unit(
            "artifactd_uploaded",
            "Request body bytes received",
            Unit::Bytes,
            uploaded.clone(),
        );
        let served = Counter::default();
        registry.register_with_unit(
            "artifactd_served",
            "Response body bytes sent",
            Unit::Bytes,
            served.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "artifactd_uploads_refused",
            "Uploads refused, by reason",
            refused.clone(),
        );
        let publishes = Family::<PublishLabels, Counter>::default();
        registry.register(
            "artifactd_index_publishes",
            "Index publishes, by provider and result",
            publishes.clone(),
        );
        let publish_seconds: Histograms<ProviderLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "artifactd_index_publish_duration",
            "Time an index publish took, by provider",
            Unit::Seconds,
            publish_seconds.clone(),
        );
        let cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "artifactd_proxy_cache",
            "Proxy answers by where they came from: hit, miss or stale",
            cache.clone(),
        );
        let upstream_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "artifactd_proxy_upstream_errors",
            "Upstream requests of proxies that failed: unreachable or a server error",
            upstream_errors.clone(),
        );
        let storage_errors = Family::<OpLabel, Counter>::default();
        registry.register(
            "artifactd_storage_errors",
            "Blob store operations that failed, by operation",
            storage_errors.clone(),
        );
        let pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "artifactd_db_pool_connections",
            "Database pool connections: in use, idle, and the pool's maximum",
            pool.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            uploaded,
            served,
            refused,
            publishes,
            publish_seconds,
            cache,
            upstream_errors,
            storage_errors,
            pool,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// One answered request of route class `route` (see `http::metrics`).
pub fn request(route: &'static str, status: u16, elapsed: Duration) {
    METRICS
        .requests
        .get_or_create(&RequestLabels { route, status })
        .inc();
    METRICS
        .latency
        .get_or_create(&RouteLabel { route })
        .observe(elapsed.as_secs_f64());
}

/// Request body bytes received.
pub fn uploaded(bytes: u64) {
    METRICS.uploaded.inc_by(bytes);
}

/// Response body bytes sent.
pub fn served(bytes: u64) {
    METRICS.served.inc_by(bytes);
}

/// An upload refused, with a short reason such as `invalid` or `too_large`.
pub fn refused(reason: &'static str) {
    METRICS.refused.get_or_create(&ReasonLabel { reason }).inc();
}

/// One index publish of `provider`.
pub fn published(provider: &str, ok: bool, elapsed: Duration) {
    let provider = provider.to_owned();
    METRICS
        .publishes
        .get_or_create(&PublishLabels {
            provider: provider.clone(),
            result: if ok { "ok" } else { "error" },
        })
        .inc();
    METRICS
        .publish_seconds
        .get_or_create(&ProviderLabel { provider })
        .observe(elapsed.as_secs_f64());
}

/// A proxy answer: `hit`, `miss` or `stale`.
pub fn cache(result: &'static str) {
    METRICS.cache.get_or_create(&ResultLabel { result }).inc();
}

/// A failed upstream request: `unreachable` or `server_error`.
pub fn upstream_error(kind: &'static str) {
    METRICS
        .upstream_errors
        .get_or_create(&KindLabel { kind })
        .inc();
}

/// A failed blob store operation.
pub fn storage_error(op: &'static str) {
    METRICS.storage_errors.get_or_create(&OpLabel { op }).inc();
}

/// How the database pool is used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The metrics as text, with the pool's use as of now.
pub fn render(pool: Option<PoolUse>) -> String {
    if let Some(p) = pool {
        let set = |state, v: u32| {
            METRICS
                .pool
                .get_or_create(&StateLabel { state })
                .set(i64::from(v));
        };
        set("in_use", p.open.saturating_sub(p.idle));
        set("idle", p.idle);
        set("max", p.max);
    }
    let mut text = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_counted_is_rendered() {
        request("repo", 200, Duration::from_millis(3));
        refused("too_large");
        published("apt", true, Duration::from_millis(20));
        let text = render(Some(PoolUse {
            open: 3,
            idle: 1,
            max: 10,
        }));
        assert!(
            text.contains("artifactd_http_requests_total{route=\"repo\",status=\"200\"}"),
            "{text}"
        );
        assert!(text.contains("artifactd_uploads_refused_total{reason=\"too_large\"} 1"));
        assert!(text.contains("artifactd_index_publishes_total{provider=\"apt\",result=\"ok\"}"));
        assert!(text.contains("artifactd_db_pool_connections{state=\"in_use\"} 2"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
