//! What only PostgreSQL has: URL validation, connection errors, the pool, and two server nodes
//! sharing one database. Runs on a private cluster of `cerebrum-testkit` (skipped loudly when
//! PostgreSQL is not installed, an error under `CEREBRUM_REQUIRE_ENGINES=1`); the semantics
//! shared with SQLite are in `store_suite.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cerebrum_protocol::OverallStatus;
use cerebrum_server::postgres::{DEFAULT_POOL_SIZE, PostgresStore};
use cerebrum_server::store::{Store, StoreError};
use cerebrum_server::{Database, Server, ServerConfig, ServerError};
use cerebrum_testkit::postgres::PostgresCluster;
use common::*;
use serde_json::json;

const DAY0: u64 = 20_000 * 86_400_000;

fn database_error(result: Result<PostgresStore, StoreError>) -> String {
    match result {
        Err(StoreError::Database(message)) => message,
        other => panic!("expected a database error, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused_with_a_clear_message() {
    for (url, expected) in [
        ("", "starts with postgres://"),
        ("mysql://u@h/d", "starts with postgres://"),
        ("postgres://u@h:notaport/d", "invalid PostgreSQL URL"),
        ("postgres:///d", "names no host"),
        ("postgresql://h/d", "names no user"),
    ] {
        let message = database_error(PostgresStore::connect(url));
        assert!(message.contains(expected), "{url}: {message}");
    }
}

#[test]
fn an_unreachable_server_is_an_error_that_hides_the_password() {
    let port = cerebrum_testkit::free_port().unwrap();
    // Refused at once on the loopback (connection refused); how fast is not asserted here.
    let message = database_error(PostgresStore::connect(&format!(
        "postgres://ada:hunter2@127.0.0.1:{port}/cerebrum"
    )));
    assert!(
        message.contains(&format!(
            "cannot connect to PostgreSQL at ada@127.0.0.1:{port}/cerebrum"
        )),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn the_pool_is_bounded_and_replaces_broken_connections() {
    let Some(cluster) = PostgresCluster::shared().unwrap() else {
        return;
    };
    let url = cluster.fresh_database().unwrap();
    assert_eq!(
        PostgresStore::connect(&url).unwrap().pool_size(),
        DEFAULT_POOL_SIZE
    );
    assert_eq!(
        PostgresStore::connect_with_pool(&url, 0)
            .unwrap()
            .pool_size(),
        1
    );
    let store = Arc::new(PostgresStore::connect_with_pool(&url, 2).unwrap());
    // More threads than connections: they wait for one, they do not fail.
    std::thread::scope(|scope| {
        for t in 0..6u64 {
            let store = store.clone();
            scope.spawn(move || {
                for _ in 0..10 {
                    store.record_session("u", 450.0, DAY0 + t).unwrap();
                }
            });
        }
    });
    assert_eq!(store.study_record("u", DAY0).unwrap().total_hours, 7.5);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let backends = |admin: &mut postgres::Client| -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'cerebrum-server'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert!(backends(&mut admin) <= 2);
    // The server drops every connection (a restart, a failover): calls fail at most once
    // per pooled connection, then the pool reconnects.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    let mut failures = 0;
    while store.ping().is_err() {
        failures += 1;
        assert!(failures <= 2, "the pool does not recover");
    }
    assert_eq!(store.study_record("u", DAY0).unwrap().total_hours, 7.5);
}

fn node_config(url: &str) -> ServerConfig {
    let mut config = config(std::path::Path::new("/nonexistent/cerebrum-data"));
    config.database = Database::postgres(url);
    config.admin_token = Some("admin".into());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_nodes_share_metrics_and_notifications() {
    let Some(cluster) = PostgresCluster::shared().unwrap() else {
        return;
    };
    let url = cluster.fresh_database().unwrap();
    let a = Server::bind(node_config(&url)).await.unwrap();
    let b = Server::bind(node_config(&url)).await.unwrap();
    // A notification for an offline user, posted on node A, waits for them on node B.
    let (status, reply) = http(
        &a.http_url(),
        "POST",
        "/api/notifications",
        Some("admin"),
        Some(
            &json!({"id":"n-1","title":"Hi","message":"from A","type":"info","priority":"low","userId":"bob"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let (mut bob, _) = connect_ready(&b.ws_url()).await;
    send(
        &mut bob,
        r#"{"type":"subscribe","payload":{"channel":"user:bob"}}"#,
    )
    .await;
    let note = recv_type(&mut bob, "notification").await;
    assert_eq!(note["messageId"], "n-1");
    assert_eq!(note["payload"]["message"], "from A");
    // A study session recorded on node B is what node A reports.
    send_json(
        &mut bob,
        &json!({"type":"study_session_start","payload":{"userId":"bob","topic":"Algebra"}}),
    )
    .await;
    let studying = recv_type(&mut bob, "study_metrics_update").await;
    assert_eq!(studying["payload"]["currentTopic"], "Algebra");
    // A session of a measurable length.
    tokio::time::sleep(Duration::from_millis(20)).await;
    send_json(
        &mut bob,
        &json!({"type":"study_session_end","payload":{"userId":"bob","topic":"Algebra"}}),
    )
    .await;
    let on_b = recv_type(&mut bob, "study_metrics_update").await;
    let hours = on_b["payload"]["studyHours"].as_f64().unwrap();
    assert!(hours > 0.0, "{on_b}");
    let (mut bob_on_a, _) = connect_ready(&a.ws_url()).await;
    send(
        &mut bob_on_a,
        r#"{"type":"subscribe","payload":{"channel":"user:bob"}}"#,
    )
    .await;
    send_json(
        &mut bob_on_a,
        &json!({"type":"study_session_start","payload":{"userId":"bob","topic":"Algebra"}}),
    )
    .await;
    let on_a = recv_type(&mut bob_on_a, "study_metrics_update").await;
    assert_eq!(on_a["payload"]["studyHours"].as_f64().unwrap(), hours);
    assert_eq!(on_a["payload"]["streak"], 1, "{on_a} {on_b}");
    // Both report the database up, though neither has a local data directory.
    for node in [&a, &b] {
        let deadline = Instant::now() + PATIENCE;
        while node.context().status().status != OverallStatus::Operational {
            assert!(Instant::now() < deadline, "{:?}", node.context().status());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop((bob, bob_on_a));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_whose_database_is_unreachable_does_not_start() {
    let port = cerebrum_testkit::free_port().unwrap();
    let config = node_config(&format!("postgres://u@127.0.0.1:{port}/d"));
    match Server::bind(config).await {
        Err(ServerError::Store(StoreError::Database(message))) => {
            assert!(
                message.contains("cannot connect to PostgreSQL"),
                "{message}"
            );
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("started without a database"),
    }
}

#[test]
fn the_store_ignores_what_it_does_not_know() {
    let Some(cluster) = PostgresCluster::shared().unwrap() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.fresh_database().unwrap()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    assert!(format!("{store:?}").contains("pool_size: 4"));
    // A NUL byte cannot be stored in a PostgreSQL text: an error, not a panic.
    assert!(store.record_session("nul\0user", 60.0, DAY0).is_err());
    store.ping().unwrap();
}
