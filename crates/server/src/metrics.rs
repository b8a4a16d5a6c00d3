//! Prometheus metrics: tokens issued by grant and outcome, and token-endpoint latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
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

/// The server's metrics and their registry.
pub struct Metrics {
    /// Token requests by grant and outcome.
    pub token_requests: Family<TokenLabels, Counter>,
    /// Token-endpoint latency, seconds.
    pub token_latency: Histogram,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let token_requests = Family::<TokenLabels, Counter>::default();
        // 50 µs .. ~1.6 s, doubling.
        let token_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.00005, 2.0, 16),
        );
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
        Metrics {
            token_requests,
            token_latency,
            registry,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
