//! Prometheus metrics: every route's requests by status and its latency, and the token
//! endpoint's requests by grant and outcome.
//!
//! Each route gets its handles when the router is built ([`Metrics::route`]), so recording a
//! request costs an atomic add and a histogram observation, not a label lookup: the token
//! endpoint stays as cheap as it was. Its latency histogram keeps its own name,
//! `calyx_token_request_duration_seconds`; every other route's is
//! `calyx_http_request_duration_seconds{route}`.

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

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics and their registry.
pub struct Metrics {
    /// Token requests by grant and outcome.
    pub token_requests: Family<TokenLabels, Counter>,
    /// Token-endpoint latency, seconds.
    token_latency: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily,
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
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let token_requests = Family::<TokenLabels, Counter>::default();
        let token_latency = latency_histogram();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
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
        Metrics {
            token_requests,
            token_latency,
            http_requests,
            http_latency,
            registry,
        }
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

    /// The OpenMetrics text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
