//! Webhook deliveries survive a restart: an event queued while the receiver is down, by a
//! server that is then killed, is delivered by the next server on the same database, with
//! the event's id.
//!
//! Runs on SQLite, and on PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server.

use std::time::Duration;

use calyx_core::model::Page;
use calyx_server::manage::NewWebhook;
use calyx_testkit::fixture::open_manager;
use calyx_testkit::receiver::{free_port, Receiver};
use calyx_testkit::{eventually, Calyx};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_across_a_restart_are_still_delivered() {
    let calyx = Calyx::on_test_database(BIN).await;
    let manager = open_manager(calyx.database_url()).await;
    let port = free_port();
    let (hook, secret) = manager
        .create_webhook(NewWebhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            events: vec!["org.*".into()],
        })
        .await
        .unwrap();

    // The first server tries, fails (nothing listens), and dies with the delivery pending.
    let mut first = calyx.serve(&[]);
    let org = manager.create_org("Queued while down").await.unwrap();
    let filter = calyx_core::audit::AuditFilter {
        org_id: Some(org.id),
        ..Default::default()
    };
    let events = manager.list_audit(&filter, None, 10).await.unwrap();
    let event = events.items[0].id.clone();
    eventually(
        Duration::from_secs(10),
        "a failed first attempt",
        || async {
            let d = manager
                .store
                .list_deliveries(
                    &hook.id,
                    Page {
                        after: None,
                        limit: 10,
                    },
                )
                .await
                .unwrap();
            d.first().is_some_and(|d| d.attempts >= 1)
        },
    )
    .await;
    first.kill();

    // The receiver comes up, then a new server on the same database delivers.
    let receiver = Receiver::start_on(port, 0).await;
    let _second = calyx.serve(&[]);
    let got = eventually(
        Duration::from_secs(15),
        "the delivery after the restart",
        || async { receiver.received().into_iter().next() },
    )
    .await;
    assert_eq!(got.event_id, event);
    assert!(got.signed_with(&secret));
    eventually(
        Duration::from_secs(5),
        "the delivery marked delivered",
        || async {
            let d = manager
                .store
                .list_deliveries(
                    &hook.id,
                    Page {
                        after: None,
                        limit: 10,
                    },
                )
                .await
                .unwrap();
            d.len() == 1 && d[0].state == calyx_core::model::DeliveryState::Delivered
        },
    )
    .await;
}
