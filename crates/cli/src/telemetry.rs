//! Where the `tracing` output of every command goes: log lines on standard error, filtered by
//! `RUST_LOG` and written as text or JSON (`serve --log-format`), and, for `serve
//! --otlp-endpoint`, spans sent over OTLP/HTTP (protobuf) with a batch exporter.
//!
//! One filter, `RUST_LOG`'s, serves both destinations, widened to the request span
//! (`calyx::http`) when traces are on so that they do not depend on the log level. Per-layer
//! filters (one for logs, one for traces) were rejected: the server's access-log check
//! (`tracing::enabled!`), which no event follows when it fails, would leave their per-thread
//! filter state behind for whichever event comes next. With one global filter a disabled
//! callsite costs one cached check, and with traces off no layer of them is installed. The
//! server only emits spans and events (`calyx_server::telemetry`); what becomes of them is
//! decided here, in the binary, which is why only the binary links the OpenTelemetry crates.
//! The exporter's own HTTP client logs outside any span, so nothing it does is traced back
//! to it.

use std::io::IsTerminal;

use anyhow::Context;
use calyx_server::config::LogFormat;
use calyx_server::telemetry::SPAN_TARGET;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The log filter when `RUST_LOG` is unset (or does not parse).
const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The OpenTelemetry service name (`service.name`).
const SERVICE_NAME: &str = "calyx";

/// How long a stopping `serve` waits for its last spans to be sent.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The installed subscriber's parts that need an orderly end.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans the batch exporter still holds, for [`SHUTDOWN_GRACE`] at most: an
    /// unreachable collector must not hold up a stopping node.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_GRACE) {
                eprintln!("warning: sending the last spans to the OTLP endpoint: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs as `format`, and spans to `otlp_traces` (the full
/// `/v1/traces` URL) when given. Call it before starting a Tokio runtime: the exporter's
/// blocking HTTP client must not be built inside one.
pub fn init(format: LogFormat, otlp_traces: Option<&str>) -> anyhow::Result<Telemetry> {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        // Colour only for a person at a terminal; `NO_COLOR` (no-color.org) turns it off there.
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .boxed(),
        // Fields at the top level, and the request span (when tracing is on) without the list
        // of its ancestors: one flat object per line for the log pipeline to index.
        LogFormat::Json => logs
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_span_list(false)
            .boxed(),
    };
    let (traces, provider) = match otlp_traces {
        Some(url) => {
            let provider = tracer_provider(url)?;
            filter = filter.add_directive(
                format!("{SPAN_TARGET}=info")
                    .parse()
                    .context("the request span's filter")?,
            );
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE_NAME));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(Telemetry { provider })
}

/// A batch exporter to `url` over HTTP/protobuf. The batch settings come from the standard
/// `OTEL_BSP_*` variables (schedule delay 5 s, queue 2048 spans by default); headers such as a
/// vendor's API key from `OTEL_EXPORTER_OTLP_HEADERS`.
fn tracer_provider(url: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .with_context(|| format!("setting up the OTLP exporter to {url}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
