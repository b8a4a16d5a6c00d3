//! Crash durability: under concurrent refresh rotations and code redemptions the server is
//! killed with SIGKILL, restarted on the same database, and every promise it made is checked.
//!
//! - Every refresh token a client *received* still works. A request cut mid-flight may have
//!   spent its token (the client never saw the successor); nothing else may be lost.
//! - Every code a client received and had not yet sent still redeems; a code whose redemption
//!   the client saw succeed never redeems again.
//! - No family has two live refresh tokens, and every live family has exactly one; every used
//!   code created exactly one family.
//!
//! Runs on SQLite, and on PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server
//! (`scripts/test` runs it both ways).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calyx_testkit::database::scalar;
use calyx_testkit::{Browser, Calyx, Endpoint, PASSWORD};
use serde_json::Value;

mod common;
use common::*;

/// Clients each rotating one refresh-token chain.
const CHAINS: usize = 16;
/// Codes issued before the crash, redeemed by a few clients while it happens.
const CODES: usize = 24;
const REDEEMERS: usize = 4;

/// Where a chain or code stood when the server died.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    /// The client had it and had not sent it (or its request never reached the server).
    Held,
    /// A request carrying it was cut: it may or may not have been spent.
    InFlight,
}

#[derive(Debug)]
enum CodeState {
    /// Issued, never sent.
    Unsent,
    /// Redeemed, and the client got the tokens (its refresh token is held).
    Redeemed(String),
    /// Sent when the server died.
    InFlight,
}

fn refresh_form(rt: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

fn code_form(code: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "authorization_code"), ("code", code)]
}

/// Classifies a transport error: did the request never reach the server?
fn never_sent(e: &reqwest::Error) -> bool {
    e.is_connect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_rotation_load_loses_nothing_a_client_received() {
    let calyx = Calyx::on_test_database(BIN).await;
    let db = calyx.database_url().to_owned();
    let f = Arc::new(provision(&calyx).await);
    let mut node = serve(&calyx);
    let base = node.base.clone();

    // Chains to rotate and codes to redeem, all obtained before the load starts. The browser
    // signs in once; each further authorization goes straight to consent.
    let browser = Browser::new();
    let authorize = node.authorize_url(&f, &[]);
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        let code = browser.code(&authorize, &f.username, PASSWORD).await;
        let (status, t) = node.exchange(&f, &code).await;
        assert_eq!(status, 200, "{t}");
        chains.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    let mut codes = Vec::new();
    for _ in 0..CODES {
        codes.push(browser.code(&authorize, &f.username, PASSWORD).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let park = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicUsize::new(0));
    let rotations = Arc::new(AtomicUsize::new(0));
    let redeemed = Arc::new(AtomicUsize::new(0));

    // Half the chain clients rotate without pause, so that the kill finds them mid-request;
    // the other half pause between requests and, once told to park, stop sending and hold
    // their latest token. Where each client stands at the kill is thereby set by the test,
    // not by how fast the machine happens to answer.
    let mut chain_tasks = Vec::new();
    for (i, rt) in chains.into_iter().enumerate() {
        let (f, base, stop, rotations) = (f.clone(), base.clone(), stop.clone(), rotations.clone());
        let (park, parked) = (park.clone(), parked.clone());
        let parks = i % 2 == 0;
        chain_tasks.push(tokio::spawn(async move {
            let node = Endpoint::new(base);
            let mut latest = rt;
            let mut n = 0usize;
            loop {
                if stop.load(Ordering::SeqCst) {
                    return (latest, Fate::Held, n);
                }
                if parks && park.load(Ordering::SeqCst) {
                    parked.fetch_add(1, Ordering::SeqCst);
                    return (latest, Fate::Held, n);
                }
                match node.try_token_as(&f, &refresh_form(&latest)).await {
                    Ok((200, t)) => {
                        latest = t["refresh_token"].as_str().unwrap().to_owned();
                        n += 1;
                        rotations.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => {
                        panic!("chain {i}: a held refresh token was refused before the crash: {status} {body}")
                    }
                    Err(e) if never_sent(&e) => return (latest, Fate::Held, n),
                    Err(_) => return (latest, Fate::InFlight, n),
                }
                if parks {
                    tokio::time::sleep(Duration::from_millis(((i * 7 + n * 13) % 20) as u64))
                        .await;
                }
            }
        }));
    }

    // Redeemers take codes from a shared queue, more slowly, so that the crash finds codes
    // redeemed, in flight and not yet sent. They leave the last quarter of the queue alone,
    // so that some codes are unsent however slowly the rotations got going.
    let queue = Arc::new(Mutex::new(codes.clone()));
    let states = Arc::new(Mutex::new(
        codes
            .iter()
            .map(|c| (c.clone(), CodeState::Unsent))
            .collect::<std::collections::HashMap<_, _>>(),
    ));
    let mut redeem_tasks = Vec::new();
    for _ in 0..REDEEMERS {
        let (f, base, stop, queue, states, redeemed) = (
            f.clone(),
            base.clone(),
            stop.clone(),
            queue.clone(),
            states.clone(),
            redeemed.clone(),
        );
        redeem_tasks.push(tokio::spawn(async move {
            let node = Endpoint::new(base);
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let code = {
                    let mut queue = queue.lock().unwrap();
                    if queue.len() <= CODES / 4 {
                        return;
                    }
                    queue.pop().unwrap()
                };
                let state = match node.try_token_as(&f, &code_form(&code)).await {
                    Ok((200, t)) => {
                        redeemed.fetch_add(1, Ordering::SeqCst);
                        CodeState::Redeemed(t["refresh_token"].as_str().unwrap().to_owned())
                    }
                    Ok((status, body)) => panic!("a fresh code was refused: {status} {body}"),
                    Err(e) if never_sent(&e) => CodeState::Unsent,
                    Err(_) => CodeState::InFlight,
                };
                states.lock().unwrap().insert(code, state);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }

    // Let the load run, then kill the server outright (SIGKILL: no shutdown, no flush).
    let started = Instant::now();
    while rotations.load(Ordering::SeqCst) < 100 || redeemed.load(Ordering::SeqCst) < CODES / 4 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    park.store(true, Ordering::SeqCst);
    while parked.load(Ordering::SeqCst) < CHAINS.div_ceil(2) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the pausing clients never parked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    node.kill();

    let mut held = Vec::new();
    let mut in_flight = Vec::new();
    let mut total_rotations = 0;
    for t in chain_tasks {
        let (rt, fate, n) = t.await.unwrap();
        total_rotations += n;
        match fate {
            Fate::Held => held.push(rt),
            Fate::InFlight => in_flight.push(rt),
        }
    }
    for t in redeem_tasks {
        t.await.unwrap();
    }
    let states = std::mem::take(&mut *states.lock().unwrap());
    let unsent: Vec<&String> = states
        .iter()
        .filter(|(_, s)| matches!(s, CodeState::Unsent))
        .map(|(c, _)| c)
        .collect();
    let redeemed_codes: Vec<(&String, &String)> = states
        .iter()
        .filter_map(|(c, s)| match s {
            CodeState::Redeemed(rt) => Some((c, rt)),
            _ => None,
        })
        .collect();
    let in_flight_codes: Vec<&String> = states
        .iter()
        .filter(|(_, s)| matches!(s, CodeState::InFlight))
        .map(|(c, _)| c)
        .collect();
    eprintln!(
        "at the crash: {total_rotations} rotations done; chains held {} / in flight {}; codes \
         redeemed {} / in flight {} / unsent {}",
        held.len(),
        in_flight.len(),
        redeemed_codes.len(),
        in_flight_codes.len(),
        unsent.len()
    );
    // The parked clients and the untouched codes are held by construction; that clients were
    // cut mid-request is only likely (the kill can land between a response and the next
    // request), so it is reported rather than required.
    assert!(
        held.len() >= CHAINS / 2,
        "a parked client did not hold its token"
    );
    assert!(!redeemed_codes.is_empty() && unsent.len() >= CODES / 4);

    // Restart on the same database.
    let node = serve(&calyx);

    // Every refresh token a client received and held still works, and its chain goes on.
    let held_tokens = held.iter().chain(redeemed_codes.iter().map(|(_, rt)| *rt));
    for rt in held_tokens {
        let (status, t) = node.token_as(&f, &refresh_form(rt)).await;
        assert_eq!(status, 200, "a refresh token the client held was lost: {t}");
        let next = t["refresh_token"].as_str().unwrap();
        let (status, t) = node.token_as(&f, &refresh_form(next)).await;
        assert_eq!(status, 200, "the chain did not go on: {t}");
    }
    // A token whose request was cut either was not spent (works) or was (invalid_grant).
    let mut in_flight_spent = 0;
    for rt in &in_flight {
        let (status, t) = node.token_as(&f, &refresh_form(rt)).await;
        match status {
            200 => {}
            400 if t["error"] == "invalid_grant" => in_flight_spent += 1,
            _ => panic!("unexpected answer for a cut request's token: {status} {t}"),
        }
    }

    // Every code the client held redeems; a code seen redeemed never redeems again; a code
    // in flight redeems at most once in all.
    for code in &unsent {
        let (status, t) = node.token_as(&f, &code_form(code)).await;
        assert_eq!(status, 200, "a code issued before the crash was lost: {t}");
    }
    for (code, _) in &redeemed_codes {
        let (status, t) = node.token_as(&f, &code_form(code)).await;
        assert_eq!(
            (status, t["error"].clone()),
            (400, Value::from("invalid_grant")),
            "a code redeemed before the crash was redeemed again: {t}"
        );
    }
    for code in &in_flight_codes {
        let (status, t) = node.token_as(&f, &code_form(code)).await;
        assert!(
            status == 200 || (status == 400 && t["error"] == "invalid_grant"),
            "{status} {t}"
        );
    }
    eprintln!(
        "after the restart: {} held tokens and {} unsent codes all worked; {in_flight_spent} of {} \
         cut refreshes had been spent",
        held.len() + redeemed_codes.len(),
        unsent.len(),
        in_flight.len()
    );

    // The database agrees: every family that is not revoked holds its current token (a
    // family's row is its one live token, so it cannot hold two), rotations wrote no row of
    // the legacy table, and there is one family per used code.
    let live_without_one = scalar(
        &db,
        "SELECT COUNT(*) FROM families WHERE revoked_at IS NULL \
         AND (token_generation < 1 OR token_hash IS NULL)",
    )
    .await;
    assert_eq!(
        live_without_one, 0,
        "a family that is not revoked lacks its live token"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM refresh_tokens").await,
        0,
        "a rotation wrote a row per token"
    );
    let used_codes = scalar(
        &db,
        "SELECT COUNT(*) FROM auth_codes WHERE used_at IS NOT NULL",
    )
    .await;
    let families = scalar(&db, "SELECT COUNT(*) FROM families").await;
    let orphans = scalar(
        &db,
        "SELECT COUNT(*) FROM auth_codes c WHERE c.used_at IS NOT NULL AND \
         NOT EXISTS (SELECT 1 FROM families f WHERE f.id = c.family_id)",
    )
    .await;
    assert_eq!((used_codes, orphans), (families, 0));
    assert_eq!(used_codes as usize, CHAINS + CODES);
    drop(node);
}
