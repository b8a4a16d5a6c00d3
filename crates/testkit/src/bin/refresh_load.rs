//! Load driver for refresh-token rotation, used by `bench/refresh-rotation`.
//!
//! Seeds `--chains` grant families directly in the database (each with a live refresh
//! token), then runs one task per chain that rotates its token as fast as the server answers
//! for `--seconds`, each request using the refresh token the previous response returned.
//! Prints rotations/s and latency percentiles.
//!
//! With `--preload N` it first seeds N more live families that no chain uses, straight
//! through the store (64 at a time, without an fsync per commit), so that the rotations run
//! against a database of that size.
//!
//! ```text
//! refresh_load --database-url URL --pepper P --base http://127.0.0.1:PORT[,http://...] \
//!   --client-id ID --client-secret S --audience AUD --user-id USR --chains 32 --seconds 20 \
//!   [--preload 1000000]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use calyx_server::manage::{Manager, Secrets};
use calyx_testkit::fixture::seed_refresh_token;
use calyx_testkit::SystemClock;
use futures_util::stream::{self, StreamExt};

fn arg(name: &str) -> String {
    optional_arg(name).unwrap_or_else(|| panic!("missing {name}"))
}

fn optional_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// Seeds `n` live families of `user` with `client_id` on `api`, 64 at a time, on a
/// connection that does not fsync each commit (a bulk load, not a durability test).
async fn preload(
    n: usize,
    secrets: &Secrets,
    client_id: &str,
    user: &calyx_core::model::User,
    api: &calyx_core::model::Api,
) -> anyhow::Result<()> {
    let mut opts = calyx_store::ConnectOptions::new(arg("--database-url"));
    opts.max_connections = 8;
    opts.sqlite_sync_full = false;
    let store = calyx_store::connect(&opts).await?;
    let m = Manager::with_store(store, secrets, Arc::new(SystemClock)).await?;
    let started = Instant::now();
    let mut done = 0usize;
    let mut seeds = stream::iter(0..n)
        .map(|_| seed_refresh_token(&m, client_id, user, api, api.scopes.clone(), 86_400))
        .buffer_unordered(64);
    while seeds.next().await.is_some() {
        done += 1;
        if done.is_multiple_of(100_000) {
            eprintln!(
                "preloaded {done} families in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "preloaded {n} families in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let chains: usize = arg("--chains").parse()?;
    let seconds: u64 = arg("--seconds").parse()?;
    let bases: Vec<String> = arg("--base").split(',').map(str::to_owned).collect();
    let client_id = arg("--client-id");
    let secret = arg("--client-secret");
    let secrets = Secrets {
        pepper: Some(arg("--pepper").into()),
        master_key: None,
    };
    let m = Manager::open(&arg("--database-url"), 2, &secrets).await?;
    let api = m
        .store
        .api_by_audience(&arg("--audience"))
        .await?
        .expect("the API exists");
    let user = m
        .store
        .user(&arg("--user-id"))
        .await?
        .expect("the user exists");
    if let Some(n) = optional_arg("--preload") {
        preload(n.parse()?, &secrets, &client_id, &user, &api).await?;
    }
    let mut tokens = Vec::new();
    for _ in 0..chains {
        let scope = api.scopes.clone();
        tokens.push(seed_refresh_token(&m, &client_id, &user, &api, scope, 86_400).await);
    }

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(chains)
        .build()?;
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/oauth/token")).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, mut rt)| {
            // Chain i goes to node i mod n.
            let url = urls[i % urls.len()].clone();
            let (http, id, secret) = (http.clone(), client_id.clone(), secret.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let resp = http
                        .post(&url)
                        .basic_auth(&id, Some(&secret))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                        ])
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status() == 200 => {
                            let v: serde_json::Value = r.json().await.expect("JSON");
                            rt = v["refresh_token"].as_str().expect("a successor").to_owned();
                            latencies.push(t.elapsed());
                        }
                        _ => {
                            errors += 1;
                            break; // the chain is broken
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
    println!(
        "BENCH rotations={} rps={:.0} p50_ms={:.3} p99_ms={:.3} errors={}",
        all.len(),
        all.len() as f64 / elapsed,
        ms(pct(0.50)),
        ms(pct(0.99)),
        errors
    );
    Ok(())
}
