//! Prometheus metrics: every route's requests by status and its latency, the token
//! endpoint's requests by grant and outcome, refresh-token reuse, the scheduled purge, the
//! store's refresh-rotation batches, and the database pool (read at scrape time).
//!
//! Each route gets its handles when the router is built ([`Metrics::route`]), so recording a
//! request costs an atomic add and a histogram observation, not a label lookup: the token
//! endpoint stays as cheap as it was. Its latency histogram keeps its own name,
//! `calyx_token_request_duration_seconds`; every other route's is
//! `calyx_http_request_duration_seconds{route}`. docs/deploy.md lists every metric with its
//! labels and example alerts.

use std::sync::{Arc, OnceLock};

use calyx_core::model::PurgeReport;
use calyx_core::store::{PoolStatus, RotationObserver};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::encode`]'s output (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `calyx_token_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `grant_type`, or `unknown` when it could not be read.
    pub grant: &'static str,
    /// `issued`, or the OAuth error code.
    pub outcome: &'static str,
}

/// Labels of `calyx_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's path pattern, e.g. `/v2/users/{user_id}`.
    pub route: &'static str,
    /// The response status.
    pub status: u16,
}

/// Labels of `calyx_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's path pattern.
    pub route: &'static str,
}

/// Labels of `calyx_purged_rows_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PurgeLabels {
    /// What was removed: a field of [`PurgeReport`] (`codes`, `refresh_tokens`, …).
    pub kind: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The store's pool, read at each scrape.
type PoolSource = Arc<OnceLock<Box<dyn Fn() -> PoolStatus + Send + Sync>>>;

/// The server's metrics and their registry.
pub struct Metrics {
    /// Token requests by grant and outcome.
    pub token_requests: Family<TokenLabels, Counter>,
    /// Refresh tokens presented again after they were spent (each revokes its family).
    pub refresh_reuse_detected: Counter,
    /// Token-endpoint latency, seconds.
    token_latency: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily,
    purged_rows: Family<PurgeLabels, Counter>,
    purge_duration: Histogram,
    purge_failures: Counter,
    purge_last_success: Gauge,
    rotation_batch_size: Histogram,
    rotation_batch_duration: Histogram,
    pool: PoolSource,
    registry: Registry,
}

/// One route's metric handles, resolved once.
#[derive(Clone)]
pub struct RouteMetrics {
    route: &'static str,
    ok: Counter,
    requests: Family<HttpLabels, Counter>,
    latency: Histogram,
}

impl RouteMetrics {
    /// Records one answered request.
    pub fn record(&self, status: u16, seconds: f64) {
        if status == 200 {
            self.ok.inc();
        } else {
            self.requests
                .get_or_create(&HttpLabels {
                    route: self.route,
                    status,
                })
                .inc();
        }
        self.latency.observe(seconds);
    }
}

/// 50 µs .. ~1.6 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let token_requests = Family::<TokenLabels, Counter>::default();
        let refresh_reuse_detected = Counter::default();
        let token_latency = latency_histogram();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let purged_rows = Family::<PurgeLabels, Counter>::default();
        // 10 ms .. ~5.5 min, doubling: a purge deletes in bulk and may take long.
        let purge_duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let purge_failures = Counter::default();
        let purge_last_success = Gauge::default();
        // 1 .. 4096 rotations per commit, doubling.
        let rotation_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        let rotation_batch_duration = latency_histogram();
        let pool = PoolSource::default();
        let mut registry = Registry::with_prefix("calyx");
        registry.register(
            "token_requests",
            "Token endpoint requests by grant type and outcome (issued or the OAuth error)",
            token_requests.clone(),
        );
        registry.register(
            "token_request_duration_seconds",
            "Token endpoint latency",
            token_latency.clone(),
        );
        registry.register(
            "http_requests",
            "Requests by route and response status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Latency by route (the token endpoint's is token_request_duration_seconds)",
            http_latency.clone(),
        );
        registry.register(
            "refresh_reuse_detected",
            "Refresh tokens presented after they were spent; each revokes its grant family",
            refresh_reuse_detected.clone(),
        );
        registry.register(
            "purged_rows",
            "Rows removed by the scheduled purge, by kind",
            purged_rows.clone(),
        );
        registry.register(
            "purge_duration_seconds",
            "How long each scheduled purge took, failed ones included",
            purge_duration.clone(),
        );
        registry.register(
            "purge_failures",
            "Scheduled purges that failed (the error is logged)",
            purge_failures.clone(),
        );
        registry.register(
            "purge_last_success_timestamp_seconds",
            "Unix time of this node's last successful purge (0: none since start)",
            purge_last_success.clone(),
        );
        registry.register(
            "rotation_batch_size",
            "Refresh rotations committed together by the store's group-commit writer",
            rotation_batch_size.clone(),
        );
        registry.register(
            "rotation_batch_duration_seconds",
            "How long one group-committed batch of refresh rotations took",
            rotation_batch_duration.clone(),
        );
        registry.register_collector(Box::new(PoolCollector(pool.clone())));
        Metrics {
            token_requests,
            refresh_reuse_detected,
            token_latency,
            http_requests,
            http_latency,
            purged_rows,
            purge_duration,
            purge_failures,
            purge_last_success,
            rotation_batch_size,
            rotation_batch_duration,
            pool,
            registry,
        }
    }
}

/// Writes the pool's gauges at scrape time, once the store reports its pool.
struct PoolCollector(PoolSource);

impl std::fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolCollector")
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(read) = self.0.get() else {
            return Ok(());
        };
        let stats = read();
        for (name, help, value) in [
            (
                "db_pool_connections",
                "Open database connections, busy or idle",
                stats.size,
            ),
            (
                "db_pool_idle_connections",
                "Open database connections waiting for work",
                stats.idle,
            ),
            (
                "db_pool_max_connections",
                "The most database connections the pool opens",
                stats.max,
            ),
        ] {
            let gauge = ConstGauge::new(i64::from(value));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// The handles of `route`; `token` routes record their latency as the token endpoint's.
    pub fn route(&self, route: &'static str, token: bool) -> RouteMetrics {
        let labels = HttpLabels { route, status: 200 };
        RouteMetrics {
            route,
            ok: self.http_requests.get_or_create(&labels).clone(),
            requests: self.http_requests.clone(),
            latency: if token {
                self.token_latency.clone()
            } else {
                self.http_latency
                    .get_or_create(&RouteLabels { route })
                    .clone()
            },
        }
    }

    /// Records one group-committed batch of refresh rotations: how many, and how long the
    /// commit took. Two histogram observations; no lock, no allocation.
    pub fn rotation_batch(&self, size: usize, seconds: f64) {
        self.rotation_batch_size.observe(size as f64);
        self.rotation_batch_duration.observe(seconds);
    }

    /// [`Metrics::rotation_batch`] as a callback the store can hold (it cannot see this
    /// crate): it shares the histograms, not the state, so it keeps nothing else alive.
    pub fn rotation_observer(&self) -> RotationObserver {
        let (size, duration) = (
            self.rotation_batch_size.clone(),
            self.rotation_batch_duration.clone(),
        );
        Arc::new(move |n, seconds| {
            size.observe(n as f64);
            duration.observe(seconds);
        })
    }

    /// Reads the database pool with `read` at every scrape, from now on (the first call
    /// wins). Until then the pool's gauges are absent rather than zero.
    pub fn observe_pool(&self, read: impl Fn() -> PoolStatus + Send + Sync + 'static) {
        let _ = self.pool.set(Box::new(read));
    }

    /// Records a finished scheduled purge: rows by kind, its duration and when it ended.
    pub fn purge_succeeded(&self, report: &PurgeReport, seconds: f64, now: i64) {
        // Every field of the report, named as in the audit event: a kind added to the report
        // is counted without a change here.
        if let Ok(serde_json::Value::Object(kinds)) = serde_json::to_value(report) {
            for (kind, rows) in kinds {
                if let Some(rows) = rows.as_u64() {
                    self.purged_rows
                        .get_or_create(&PurgeLabels { kind })
                        .inc_by(rows);
                }
            }
        }
        self.purge_duration.observe(seconds);
        self.purge_last_success.set(now);
    }

    /// Records a scheduled purge that failed after `seconds`.
    pub fn purge_failed(&self, seconds: f64) {
        self.purge_failures.inc();
        self.purge_duration.observe(seconds);
    }

    /// The OpenMetrics text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `name` (`name` itself, or with labels or a suffix).
    fn samples(m: &Metrics, name: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_purge_counts_rows_by_kind_and_its_duration() {
        let m = Metrics::default();
        let report = PurgeReport {
            codes: 3,
            refresh_tokens: 40,
            ..PurgeReport::default()
        };
        m.purge_succeeded(&report, 0.2, 1_700_000_000);
        m.purge_failed(1.5);
        let rows = samples(&m, "calyx_purged_rows_total");
        assert!(
            rows.contains(&r#"calyx_purged_rows_total{kind="codes"} 3"#.to_owned()),
            "{rows:?}"
        );
        assert!(
            rows.contains(&r#"calyx_purged_rows_total{kind="refresh_tokens"} 40"#.to_owned()),
            "{rows:?}"
        );
        assert_eq!(
            samples(&m, "calyx_purge_failures_total"),
            ["calyx_purge_failures_total 1"]
        );
        assert!(samples(&m, "calyx_purge_duration_seconds_count")
            .contains(&"calyx_purge_duration_seconds_count 2".to_owned()));
        assert_eq!(
            samples(&m, "calyx_purge_last_success_timestamp_seconds"),
            ["calyx_purge_last_success_timestamp_seconds 1700000000"]
        );
    }

    #[test]
    fn rotation_batches_are_recorded_directly_and_through_the_observer() {
        let m = Metrics::default();
        m.rotation_batch(12, 0.003);
        (m.rotation_observer())(1, 0.001);
        assert_eq!(
            samples(&m, "calyx_rotation_batch_size_count"),
            ["calyx_rotation_batch_size_count 2"]
        );
        assert_eq!(
            samples(&m, "calyx_rotation_batch_size_sum"),
            ["calyx_rotation_batch_size_sum 13.0"]
        );
        assert_eq!(
            samples(&m, "calyx_rotation_batch_duration_seconds_count"),
            ["calyx_rotation_batch_duration_seconds_count 2"]
        );
    }

    #[test]
    fn the_pool_gauges_appear_once_the_pool_is_observed() {
        let m = Metrics::default();
        assert!(samples(&m, "calyx_db_pool").is_empty());
        m.observe_pool(|| PoolStatus {
            size: 5,
            idle: 2,
            max: 8,
        });
        assert_eq!(
            samples(&m, "calyx_db_pool"),
            [
                "calyx_db_pool_connections 5",
                "calyx_db_pool_idle_connections 2",
                "calyx_db_pool_max_connections 8"
            ]
        );
    }

    #[test]
    fn refresh_reuse_is_a_counter() {
        let m = Metrics::default();
        m.refresh_reuse_detected.inc();
        assert!(m
            .encode()
            .contains("# TYPE calyx_refresh_reuse_detected counter"));
        assert_eq!(
            samples(&m, "calyx_refresh_reuse_detected_total"),
            ["calyx_refresh_reuse_detected_total 1"]
        );
    }
}
