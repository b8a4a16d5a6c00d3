//! A resource server protected by calyx-guard: the "consumers" API of the integration docs.
//!
//! ```text
//! cargo run -p calyx-guard --example consumers_api -- \
//!   --issuer http://127.0.0.1:8080 --audience https://api.example.com/ --listen 127.0.0.1:3000
//! ```
//!
//! `GET /v1/consumers` needs `read:consumers`; `POST /v1/consumers` (JSON `{"name": ...}`)
//! needs `write:consumers`. Data lives in memory.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use calyx_guard::{Authenticated, Guard, GuardConfig, GuardLayer};
use serde_json::{json, Value};

type Consumers = Arc<Mutex<Vec<Value>>>;

fn arg(name: &str, default: Option<&str>) -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => default.map(str::to_owned).unwrap_or_else(|| {
            eprintln!("usage: consumers_api --issuer URL --audience AUD [--listen ADDR]");
            std::process::exit(2)
        }),
    }
}

async fn list(State(db): State<Consumers>, Authenticated(token): Authenticated) -> Json<Value> {
    let consumers = db.lock().expect("the store lock").clone();
    Json(json!({"consumers": consumers, "requested_by": token.subject()}))
}

async fn create(
    State(db): State<Consumers>,
    Authenticated(token): Authenticated,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut db = db.lock().expect("the store lock");
    let consumer = json!({"id": db.len() + 1, "name": body["name"], "created_by": token.subject()});
    db.push(consumer.clone());
    Json(consumer)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let guard = Guard::new(GuardConfig::new(
        arg("--issuer", None),
        arg("--audience", None),
    ));
    let listen = arg("--listen", Some("127.0.0.1:3000"));
    let consumers: Consumers = Arc::default();
    let app = Router::new()
        .route(
            "/v1/consumers",
            get(list).layer(GuardLayer::new(guard.clone()).require_scopes(&["read:consumers"])),
        )
        .route(
            "/v1/consumers",
            axum::routing::post(create)
                .layer(GuardLayer::new(guard).require_scopes(&["write:consumers"])),
        )
        .with_state(consumers);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("consumers API on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
