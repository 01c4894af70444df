//! What `synchronous=FULL` costs the SQLite store: committed notification inserts per second
//! with the store's settings (WAL, FULL), and the same insert on a connection with NORMAL.
//! Run it on the disk the data directory lives on (`TMPDIR` chooses it).
//!
//! `cargo bench -p cerebrum-server --bench sqlite -- --warm-up-time 1 --measurement-time 5`

#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! generates an undocumented function

use cerebrum_protocol::{Notification, NotificationKind, Priority};
use cerebrum_server::sqlite::{DB_FILE, SqliteStore};
use cerebrum_server::store::Store;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn note(i: u64) -> Notification {
    Notification {
        id: format!("n-{i}"),
        title: "Quiz".into(),
        message: "The quiz is due tomorrow".into(),
        kind: NotificationKind::Info,
        priority: Priority::Low,
        action_url: None,
        action_text: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlite_commit");
    group.throughput(Throughput::Elements(1));

    // The store as the server runs it: WAL + FULL, retention applied on every insert.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut i = 0u64;
    group.bench_function("store_save_notification_full", |b| {
        b.iter(|| {
            i += 1;
            store
                .save_notification(&note(i), Some(&format!("u{}", i % 1000)), 1)
                .unwrap();
        });
    });

    // The same committed insert on a plain connection, FULL against NORMAL.
    for level in ["FULL", "NORMAL"] {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", level).unwrap();
        let mut i = 0u64;
        group.bench_function(format!("insert_{}", level.to_lowercase()), |b| {
            b.iter(|| {
                i += 1;
                conn.execute(
                    "INSERT INTO notifications (id, user_id, payload, created_ms) VALUES (?1, ?2, ?3, 1)",
                    rusqlite::params![format!("n-{i}"), "u", "{}"],
                )
                .unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
