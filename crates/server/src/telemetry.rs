//! What the server tells about each request besides its metrics: an access-log event (target
//! [`ACCESS_TARGET`], INFO) and, when traces are on (`--otlp-endpoint`), a span (target
//! [`SPAN_TARGET`]) with OpenTelemetry's HTTP attributes. Both come from [`observe`], the
//! per-route layer that also records the route's metrics, so they name the route's path
//! pattern (`/v2/users/{user_id}`), never the raw path, its query string or its body.
//!
//! The token endpoint's cost when neither is wanted (`RUST_LOG=warn`, as the benchmarks run):
//! one check of a bool and one of the access callsite's cached interest (`tracing::enabled!`,
//! which `tracing`'s global max level answers without reaching the subscriber), and, in
//! client authentication, one look at an unset task-local ([`note_client`]). Nothing is
//! allocated or formatted. The client id reaches the access log through that task-local,
//! set only while the access log or a span is wanted; a response extension was the
//! alternative rejected, as every handler would pay for inserting it.
//!
//! The binary decides where events and spans go (text or JSON lines, OTLP): see `telemetry`
//! in the `calyx` crate.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::{Instrument, Level, Span};

use crate::metrics::RouteMetrics;
use crate::state::ClientEntry;

/// The target of the access log: one INFO event per answered request, with `method`,
/// `route`, `status`, `latency_ms` and, once authenticated, `client_id`.
pub const ACCESS_TARGET: &str = "calyx::access";

/// The target of the per-request span (named `METHOD /route` in OpenTelemetry).
pub const SPAN_TARGET: &str = "calyx::http";

tokio::task_local! {
    /// The client that authenticated during the request being observed.
    static CLIENT: OnceCell<Arc<ClientEntry>>;
}

/// Tells the request's access log and span which client authenticated (a reference count;
/// nothing when the request is not observed).
pub(crate) fn note_client(entry: &Arc<ClientEntry>) {
    let _ = CLIENT.try_with(|slot| slot.set(entry.clone()));
}

/// One route's observer, resolved when the router is built.
pub(crate) struct RouteObserver {
    metrics: RouteMetrics,
    route: &'static str,
    /// A span per request (`--otlp-endpoint` is set).
    traced: bool,
}

impl RouteObserver {
    /// The observer of `route`, recording on `metrics`; `traced` when spans are exported.
    pub(crate) fn new(route: &'static str, metrics: RouteMetrics, traced: bool) -> Arc<Self> {
        Arc::new(RouteObserver {
            metrics,
            route,
            traced,
        })
    }
}

/// Records a request's status and latency on its route's handles, and when wanted writes its
/// access-log event and wraps it in a span: the per-route layer.
pub(crate) async fn observe(
    State(route): State<Arc<RouteObserver>>,
    req: Request,
    next: Next,
) -> Response {
    observe_with(&route, req, |req| next.run(req)).await
}

/// [`observe`] around any handler: the router's layer and the token endpoint, which is served
/// ahead of the router (see `routes::App`), share it.
pub(crate) async fn observe_with<F, Fut>(route: &RouteObserver, req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if route.traced || tracing::enabled!(target: ACCESS_TARGET, Level::INFO) {
        // Boxed: the common case's future stays as small as it was.
        return Box::pin(observed(route, req, handle)).await;
    }
    let started = Instant::now();
    let response = handle(req).await;
    let status = response.status().as_u16();
    route
        .metrics
        .record(status, started.elapsed().as_secs_f64());
    response
}

/// [`observe_with`] with the access log or a span.
async fn observed<F, Fut>(route: &RouteObserver, req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let method = req.method().clone();
    let started = Instant::now();
    let span = if route.traced {
        tracing::info_span!(
            target: SPAN_TARGET,
            "request",
            otel.name = %format_args!("{method} {}", route.route),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %method,
            http.route = route.route,
            http.response.status_code = Empty,
            calyx.client_id = Empty,
        )
    } else {
        Span::none()
    };
    let handled = async {
        let response = handle(req).instrument(span.clone()).await;
        (response, CLIENT.with(|slot| slot.get().cloned()))
    };
    let (response, client) = CLIENT.scope(OnceCell::new(), handled).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    route.metrics.record(status, elapsed.as_secs_f64());
    let client_id = client.as_ref().map(|c| c.client.id.as_str());
    if !span.is_disabled() {
        span.record("http.response.status_code", status);
        if let Some(id) = client_id {
            span.record("calyx.client_id", id);
        }
        // OpenTelemetry's rule for server spans: only a 5xx is the server's error.
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
    }
    tracing::info!(
        target: ACCESS_TARGET,
        method = %method,
        route = route.route,
        status,
        latency_ms = elapsed.as_micros() as f64 / 1000.0,
        client_id
    );
    response
}
