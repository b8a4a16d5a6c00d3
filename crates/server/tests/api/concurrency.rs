//! Exactly-once under concurrency: one code, one refresh token, 32 presentations at once.

use calyx_core::model::ClientType;
use futures_util::future::join_all;
use serde_json::Value;

use crate::authorization_code::{get_code, third_party};
use crate::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_simultaneous_refreshes_of_one_token_have_exactly_one_winner() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let code = get_code(&app, &tp, &[]).await;
    let (_, first) = app.exchange(&tp, &code).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let results = join_all((0..32).map(|_| app.refresh(&tp, &rt, None))).await;
    exactly_one_winner(&results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_simultaneous_exchanges_of_one_code_have_exactly_one_winner() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let code = get_code(&app, &tp, &[]).await;
    let results = join_all((0..32).map(|_| app.exchange(&tp, &code))).await;
    exactly_one_winner(&results);
}

/// One of the 32 answers is a success, and every other is `invalid_grant`.
fn exactly_one_winner(results: &[(u16, Value)]) {
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    let losses = results
        .iter()
        .filter(|(s, b)| *s == 400 && b["error"] == "invalid_grant")
        .count();
    assert_eq!(
        (wins, losses),
        (1, 31),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
}
