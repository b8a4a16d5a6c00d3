//! What an operator's log pipeline and trace collector get from `calyx serve`: JSON log lines
//! (`--log-format json`) with an access-log line per request that names the client but never
//! its secret, no colour codes when standard error is not a terminal, and spans over OTLP/HTTP
//! (`--otlp-endpoint`) that a collector receives and decodes, a reused refresh token among
//! them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calyx_testkit::process::{spawn_announcing, Reaped};
use calyx_testkit::{eventually, Calyx, Endpoint};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_calyx");
/// `calyx serve` on a free loopback port with `args`, `RUST_LOG` = `filter` and `envs`, its
/// standard error (not a terminal) written to `log`: the process and its endpoint.
fn serve(
    env: &Calyx,
    args: &[&str],
    filter: &str,
    envs: &[(&str, &str)],
    log: &Path,
) -> (Reaped, Endpoint) {
    let mut cmd: Command = env.command();
    cmd.env("RUST_LOG", filter)
        .envs(envs.iter().copied())
        .stderr(std::fs::File::create(log).unwrap())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args);
    let (child, addr, _) = spawn_announcing(&mut cmd, "listening on ");
    (child, Endpoint::new(format!("http://{addr}")))
}

/// A client-credentials request with the secret in the form: the status.
async fn token_post(node: &Endpoint, id: &str, secret: &str) -> u16 {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    node.post_token_form(&form).await.status().as_u16()
}

/// The access-log objects (target `calyx::access`) among JSON log lines.
fn access_lines(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["target"] == "calyx::access")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_parse_and_the_access_log_names_the_client_but_never_its_secret() {
    let env = Calyx::in_temp_dir(BIN);
    let (id, secret, _) = common::provision_machine_client(&env, "ES256");
    let log = env.dir().join("server.log");
    // The operator's filter: warnings, and the access log.
    let filter = "warn,calyx::access=info";
    let (mut server, node) = serve(&env, &["--log-format", "json"], filter, &[], &log);

    assert_eq!(token_post(&node, &id, &secret).await, 200);
    assert_eq!(token_post(&node, &id, "not-the-secret").await, 401);
    let with_basic = node
        .post_raw(
            "/oauth/token?trace=me",
            Some("application/x-www-form-urlencoded"),
            Some(&calyx_testkit::basic(&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(with_basic.status(), 200);
    assert_eq!(node.status_of("/v2/users/usr_nobody").await, 401);

    let lines: Vec<Value> = eventually(Duration::from_secs(5), "four access lines", || {
        let text = std::fs::read_to_string(&log).unwrap();
        let parsed: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        async move { (access_lines(&parsed).len() >= 4).then_some(parsed) }
    })
    .await;
    server.0.kill().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text}"
    );
    assert!(
        !text.contains(&secret),
        "the secret is never logged: {text}"
    );
    assert!(!text.contains("trace=me"), "nor a query string: {text}");

    let access = access_lines(&lines);
    let issued = access[0];
    assert_eq!(issued["level"], "INFO");
    assert_eq!(issued["method"], "POST");
    assert_eq!(issued["route"], "/oauth/token");
    assert_eq!(issued["status"], 200);
    assert_eq!(issued["client_id"], id.as_str());
    assert!(issued["latency_ms"].as_f64().unwrap() > 0.0, "{issued}");
    assert!(issued["timestamp"].is_string(), "{issued}");
    // A wrong secret proves nothing: no client is named.
    assert_eq!(access[1]["status"], 401);
    assert!(access[1].get("client_id").is_none(), "{}", access[1]);
    assert_eq!(access[2]["client_id"], id.as_str(), "Basic authentication");
    assert_eq!(access[2]["route"], "/oauth/token");
    // The route's pattern, not the path asked for.
    assert_eq!(access[3]["route"], "/v2/users/{user_id}");
    assert_eq!(access[3]["method"], "GET");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_have_no_colour_codes_when_standard_error_is_not_a_terminal() {
    let env = Calyx::in_temp_dir(BIN);
    let log = env.dir().join("server.log");
    let (mut server, node) = serve(&env, &[], "info", &[], &log);
    assert_eq!(node.status_of("/healthz").await, 200);
    eventually(Duration::from_secs(5), "the access line", || async {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("route=\"/healthz\"")
    })
    .await;
    server.0.kill().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "{text}");
    let line = text.lines().find(|l| l.contains("calyx::access")).unwrap();
    for field in ["method=GET", "status=200", "latency_ms="] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

/// An OTLP/HTTP trace receiver on a free loopback port: every request it decoded.
struct Collector {
    base: String,
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let sink = sink.clone();
                    async move {
                        assert_eq!(headers["content-type"], "application/x-protobuf");
                        let request = ExportTraceServiceRequest::decode(body).unwrap();
                        sink.lock().unwrap().push(request);
                        // An empty ExportTraceServiceResponse.
                        [("content-type", "application/x-protobuf")]
                    }
                },
            ),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector {
            base,
            received,
            task,
        }
    }

    /// Every span received, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for request in self.received.lock().unwrap().iter() {
            for rs in &request.resource_spans {
                let attrs = rs.resource.as_ref().map(|r| &r.attributes[..]);
                let service = attrs
                    .and_then(|a| attr(a, "service.name"))
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        out.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        out
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An attribute's value as text (strings as they are, integers in decimal).
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_otlp_endpoint_each_request_becomes_a_server_span_at_the_collector() {
    let env = Calyx::in_temp_dir(BIN);
    let (id, secret, _) = common::provision_machine_client(&env, "ES256");
    let collector = Collector::start().await;
    let log = env.dir().join("server.log");
    // Logs at warn (as the benchmarks run): traces have a filter of their own.
    let (mut server, node) = serve(
        &env,
        &["--otlp-endpoint", &collector.base],
        "warn",
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
        &log,
    );
    assert_eq!(token_post(&node, &id, &secret).await, 200);
    assert_eq!(node.status_of("/v2/users/usr_nobody").await, 401);

    let token_span = eventually(Duration::from_secs(10), "the token span", || {
        let found = collector
            .spans()
            .into_iter()
            .find(|(_, s)| s.name == "POST /oauth/token");
        async move { found }
    })
    .await;
    let (service, span) = token_span;
    assert_eq!(service, "calyx");
    assert_eq!(span.kind, SpanKind::Server as i32);
    let a = &span.attributes;
    assert_eq!(attr(a, "http.route").as_deref(), Some("/oauth/token"));
    assert_eq!(attr(a, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(a, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attr(a, "calyx.client_id").as_deref(), Some(id.as_str()));
    assert!(span.end_time_unix_nano > span.start_time_unix_nano);

    let users = eventually(Duration::from_secs(10), "the users span", || {
        let found = collector
            .spans()
            .into_iter()
            .find(|(_, s)| s.name == "GET /v2/users/{user_id}");
        async move { found }
    })
    .await;
    assert_eq!(
        attr(&users.1.attributes, "http.response.status_code").as_deref(),
        Some("401")
    );
    server.0.kill().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&secret), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_refresh_token_is_counted_and_its_warning_is_an_event_of_the_span() {
    let env = Calyx::in_temp_dir(BIN);
    let app = common::provision(&env).await;
    let collector = Collector::start().await;
    let log = env.dir().join("server.log");
    let (mut server, node) = serve(
        &env,
        &["--otlp-endpoint", &collector.base],
        "warn",
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
        &log,
    );
    let code = node.sign_in(&app).await;
    let (status, first) = node.exchange(&app, &code).await;
    assert_eq!(status, 200, "{first}");
    let rt1 = first["refresh_token"].as_str().unwrap();
    assert_eq!(node.refresh(&app, rt1, None).await.0, 200);
    let metric = "calyx_refresh_reuse_detected_total";
    assert_eq!(node.metric(metric).await, 0);

    assert_eq!(node.refresh(&app, rt1, None).await.0, 400, "reuse");
    assert_eq!(node.metric(metric).await, 1);
    let reuse = eventually(Duration::from_secs(10), "the reuse's span", || {
        let found = collector.spans().into_iter().find(|(_, s)| {
            attr(&s.attributes, "http.response.status_code").as_deref() == Some("400")
                && s.name == "POST /oauth/token"
        });
        async move { found }
    })
    .await;
    let events: Vec<&str> = reuse.1.events.iter().map(|e| e.name.as_str()).collect();
    assert!(
        events.contains(&"refresh token reused; family revoked"),
        "{events:?}"
    );
    server.0.kill().unwrap();
}

#[test]
fn an_otlp_endpoint_that_is_not_http_is_refused_at_start() {
    let env = Calyx::in_temp_dir(BIN);
    let out = env
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--otlp-endpoint", "grpc://collector:4317"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
}
