//! One store test-suite, run against every engine: each case is written once against
//! [`Engine`] and instantiated as `sqlite::<case>` (a temporary directory) and
//! `postgres::<case>` (a fresh database on a private cluster of `cerebrum-testkit`; skipped
//! loudly when PostgreSQL is not installed, an error under `CEREBRUM_REQUIRE_ENGINES=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use cerebrum_protocol::{Notification, NotificationKind, Priority};
use cerebrum_server::postgres::PostgresStore;
use cerebrum_server::sqlite::SqliteStore;
use cerebrum_server::store::{Retention, Store, StudyRecord};
use cerebrum_testkit::postgres::PostgresCluster;

const DAY: u64 = 86_400_000;
/// 2024-10-04 01:00 UTC: an arbitrary moment early in a UTC day.
const DAY0: u64 = 20_000 * DAY + 3_600_000;

/// A database that stores can be opened on, again and again (the same data each time).
trait Engine: Sync {
    /// Opens a new store instance on the database, running the migrations it lacks.
    fn open(&self) -> Arc<dyn Store>;
    /// [`Engine::open`] with a notification retention.
    fn open_with(&self, retention: Retention) -> Arc<dyn Store>;
    /// The schema version a new store instance sees.
    fn schema_version(&self) -> i64;
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Engine for Sqlite {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(self.dir.path()).unwrap())
    }
    fn open_with(&self, retention: Retention) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(self.dir.path())
                .unwrap()
                .with_retention(retention),
        )
    }
    fn schema_version(&self) -> i64 {
        SqliteStore::open(self.dir.path())
            .unwrap()
            .schema_version()
            .unwrap()
    }
}

struct Postgres {
    url: String,
    // Keeps the shared cluster running while the test holds it.
    _cluster: Arc<PostgresCluster>,
}

impl Engine for Postgres {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url).unwrap())
    }
    fn open_with(&self, retention: Retention) -> Arc<dyn Store> {
        Arc::new(
            PostgresStore::connect(&self.url)
                .unwrap()
                .with_retention(retention),
        )
    }
    fn schema_version(&self) -> i64 {
        PostgresStore::connect(&self.url)
            .unwrap()
            .schema_version()
            .unwrap()
    }
}

fn sqlite_engine() -> Sqlite {
    Sqlite {
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A fresh database on the shared private cluster; `None` when PostgreSQL is missing (the
/// testkit printed a `SKIPPED` line).
fn postgres_engine() -> Option<Postgres> {
    let cluster = PostgresCluster::shared().unwrap()?;
    let url = cluster.fresh_database().unwrap();
    Some(Postgres {
        url,
        _cluster: cluster,
    })
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    super::$case(&super::sqlite_engine());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    let Some(engine) = super::postgres_engine() else { return };
                    super::$case(&engine);
                }
            )*
        }
    };
}

suite!(
    sessions_add_exact_hours,
    odd_durations_count_as_nothing,
    today_is_the_utc_day,
    streaks_continue_and_break,
    record_session_answers_as_of_now,
    users_are_separate,
    notifications_for_a_user_and_for_everyone,
    pending_notifications_are_oldest_first,
    pending_notifications_come_a_page_at_a_time,
    retention_keeps_the_newest_per_user_and_nothing_too_old,
    acks_only_touch_ones_own_notifications,
    acking_twice_is_harmless,
    notifications_round_trip_every_field,
    a_duplicate_notification_id_fails_and_the_store_goes_on,
    reopening_keeps_everything,
    concurrent_writers_lose_nothing,
    unicode_and_large_strings_round_trip,
    migrations_are_idempotent,
    concurrent_opens_migrate_once,
    works_from_blocking_threads_of_a_runtime,
    ping_and_flush,
);

fn note(id: &str) -> Notification {
    Notification {
        id: id.into(),
        title: format!("title {id}"),
        message: format!("message {id}"),
        kind: NotificationKind::Info,
        priority: Priority::Low,
        action_url: None,
        action_text: None,
    }
}

fn pending_ids(store: &dyn Store, user: &str) -> Vec<String> {
    store
        .pending_notifications(user, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect()
}

fn sessions_add_exact_hours(engine: &dyn Engine) {
    let store = engine.open();
    store.record_session("u", 1800.0, DAY0).unwrap();
    store.record_session("u", 900.0, DAY0 + 1000).unwrap();
    store.record_session("u", 1.0, DAY0 + 2000).unwrap();
    let record = store.study_record("u", DAY0 + 3000).unwrap();
    // Exactly the sum of duration / 3600, in the same order, as f64.
    assert_eq!(record.total_hours, 0.5 + 0.25 + 1.0 / 3600.0);
    assert_eq!(record.today_hours, 0.5 + 0.25 + 1.0 / 3600.0);
    assert_eq!(record.last_session_secs, 1.0);
    assert_eq!(record.streak, 1);
    assert_eq!(
        record.to_metrics("u", 2.0).progress,
        record.today_hours / 2.0 * 100.0
    );
}

fn odd_durations_count_as_nothing(engine: &dyn Engine) {
    let store = engine.open();
    for secs in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -60.0, 0.0] {
        store.record_session("u", secs, DAY0).unwrap();
    }
    let record = store.study_record("u", DAY0).unwrap();
    assert_eq!(record.total_hours, 0.0);
    assert_eq!(record.today_hours, 0.0);
    assert_eq!(record.last_session_secs, 0.0);
    // A zero-length session still counts as a day studied.
    assert_eq!(record.streak, 1);
}

fn today_is_the_utc_day(engine: &dyn Engine) {
    let store = engine.open();
    let midnight = 20_001 * DAY;
    store.record_session("u", 3600.0, midnight - 1).unwrap(); // yesterday, 23:59:59.999
    store.record_session("u", 1800.0, midnight).unwrap(); // today, 00:00
    let record = store.study_record("u", midnight + 12 * 3_600_000).unwrap();
    assert_eq!(record.total_hours, 1.5);
    assert_eq!(record.today_hours, 0.5);
    assert_eq!(record.streak, 2);
    // Seen from yesterday, only yesterday's hour is "today" and the future does not count.
    let yesterday = store.study_record("u", midnight - 1).unwrap();
    assert_eq!(yesterday.today_hours, 1.0);
    assert_eq!(yesterday.streak, 1);
    // The next day nothing is studied yet.
    let tomorrow = store.study_record("u", midnight + DAY).unwrap();
    assert_eq!(tomorrow.today_hours, 0.0);
    assert_eq!(tomorrow.total_hours, 1.5);
}

fn streaks_continue_and_break(engine: &dyn Engine) {
    let store = engine.open();
    store.record_session("u", 1800.0, DAY0).unwrap();
    store.record_session("u", 900.0, DAY0 + DAY).unwrap();
    store.record_session("u", 900.0, DAY0 + 2 * DAY).unwrap();
    store
        .record_session("u", 600.0, DAY0 + 2 * DAY + 60_000)
        .unwrap();
    let record = store.study_record("u", DAY0 + 2 * DAY).unwrap();
    assert_eq!(record.total_hours, 0.5 + 0.25 + 0.25 + 600.0 / 3600.0);
    assert_eq!(record.today_hours, 0.25 + 600.0 / 3600.0);
    assert_eq!(record.last_session_secs, 600.0);
    assert_eq!(record.streak, 3);
    // Yesterday still counts; two days later the streak is broken.
    assert_eq!(store.study_record("u", DAY0 + 3 * DAY).unwrap().streak, 3);
    assert_eq!(store.study_record("u", DAY0 + 4 * DAY).unwrap().streak, 0);
    // A gap: the streak restarts after it.
    store.record_session("u", 60.0, DAY0 + 5 * DAY).unwrap();
    store.record_session("u", 60.0, DAY0 + 6 * DAY).unwrap();
    assert_eq!(store.study_record("u", DAY0 + 6 * DAY).unwrap().streak, 2);
}

fn record_session_answers_as_of_now(engine: &dyn Engine) {
    let store = engine.open();
    let now = cerebrum_server::clock::unix_ms();
    let returned = store.record_session("u", 3600.0, now).unwrap();
    let read = store.study_record("u", now).unwrap();
    assert_eq!(returned, read);
    assert_eq!(returned.today_hours, 1.0);
    assert_eq!(returned.streak, 1);
    // A session that ended long ago is answered as of now: not today, no streak.
    let old = store.record_session("old", 3600.0, DAY0).unwrap();
    assert_eq!(
        old,
        StudyRecord {
            total_hours: 1.0,
            today_hours: 0.0,
            last_session_secs: 3600.0,
            streak: 0
        }
    );
}

fn users_are_separate(engine: &dyn Engine) {
    let store = engine.open();
    store.record_session("a", 3600.0, DAY0).unwrap();
    store.record_session("b", 1800.0, DAY0).unwrap();
    assert_eq!(store.study_record("a", DAY0).unwrap().total_hours, 1.0);
    assert_eq!(store.study_record("b", DAY0).unwrap().total_hours, 0.5);
    assert_eq!(
        store.study_record("nobody", DAY0).unwrap(),
        StudyRecord::default()
    );
}

fn notifications_for_a_user_and_for_everyone(engine: &dyn Engine) {
    let store = engine.open();
    store.save_notification(&note("a"), Some("u"), 1).unwrap();
    store.save_notification(&note("b"), None, 2).unwrap();
    store.save_notification(&note("c"), Some("v"), 3).unwrap();
    assert_eq!(pending_ids(store.as_ref(), "u"), ["a", "b"]);
    assert_eq!(pending_ids(store.as_ref(), "v"), ["b", "c"]);
    assert_eq!(pending_ids(store.as_ref(), "w"), ["b"]);
}

fn pending_notifications_are_oldest_first(engine: &dyn Engine) {
    let store = engine.open();
    // Order of saving, not of ids or timestamps.
    for (i, id) in ["z", "m", "a", "q"].iter().enumerate() {
        let user = (i % 2 == 0).then_some("u");
        store
            .save_notification(&note(id), user, 100 - i as u64)
            .unwrap();
    }
    assert_eq!(pending_ids(store.as_ref(), "u"), ["z", "m", "a", "q"]);
    assert!(store.ack_notification("u", "m", 200).unwrap());
    assert_eq!(pending_ids(store.as_ref(), "u"), ["z", "a", "q"]);
}

fn pending_notifications_come_a_page_at_a_time(engine: &dyn Engine) {
    let store = engine.open();
    for id in ["a", "b", "c"] {
        store.save_notification(&note(id), Some("u"), DAY0).unwrap();
    }
    let ids = |limit| -> Vec<String> {
        let page = store.pending_notifications("u", limit).unwrap();
        page.into_iter().map(|n| n.id).collect()
    };
    assert_eq!(ids(2), ["a", "b"]);
    assert!(store.ack_notification("u", "a", DAY0).unwrap());
    assert!(store.ack_notification("u", "b", DAY0).unwrap());
    assert_eq!(ids(2), ["c"]);
}

fn retention_keeps_the_newest_per_user_and_nothing_too_old(engine: &dyn Engine) {
    let store = engine.open_with(Retention::new(3, std::time::Duration::from_secs(86_400)));
    for i in 0..5 {
        store
            .save_notification(&note(&format!("u{i}")), Some("u"), DAY0 + i)
            .unwrap();
    }
    store
        .save_notification(&note("v0"), Some("v"), DAY0 + 10)
        .unwrap();
    store
        .save_notification(&note("all0"), None, DAY0 + 11)
        .unwrap();
    // The newest 3 of u's are kept; v's and everyone's are not u's count.
    assert_eq!(pending_ids(store.as_ref(), "u"), ["u2", "u3", "u4", "all0"]);
    assert!(store.ack_notification("u", "u3", DAY0 + 12).unwrap());
    assert!(!store.ack_notification("u", "u0", DAY0 + 12).unwrap());
    // A day later, whatever is older than a day goes, whoever it is for.
    store
        .save_notification(&note("late"), Some("w"), DAY0 + DAY + 5)
        .unwrap();
    assert_eq!(pending_ids(store.as_ref(), "u"), ["all0"]);
    assert_eq!(pending_ids(store.as_ref(), "v"), ["v0", "all0"]);
    assert!(!store.ack_notification("u", "u3", DAY0 + DAY + 5).unwrap());
    // The acks went with their notifications: an id used again is pending again.
    store
        .save_notification(&note("u3"), Some("u"), DAY0 + DAY + 6)
        .unwrap();
    assert_eq!(pending_ids(store.as_ref(), "u"), ["all0", "u3"]);
    // Everyone's notifications are kept to the newest 3 as well.
    for i in 1..5 {
        store
            .save_notification(&note(&format!("all{i}")), None, DAY0 + DAY + 6 + i)
            .unwrap();
    }
    assert_eq!(
        pending_ids(store.as_ref(), "w"),
        ["late", "all2", "all3", "all4"]
    );
}

fn acks_only_touch_ones_own_notifications(engine: &dyn Engine) {
    let store = engine.open();
    store
        .save_notification(&note("mine"), Some("u"), 1)
        .unwrap();
    store
        .save_notification(&note("theirs"), Some("v"), 2)
        .unwrap();
    store.save_notification(&note("all"), None, 3).unwrap();
    assert!(!store.ack_notification("u", "theirs", 4).unwrap());
    assert!(!store.ack_notification("u", "unknown", 4).unwrap());
    assert!(store.ack_notification("u", "mine", 4).unwrap());
    assert!(store.ack_notification("u", "all", 4).unwrap());
    assert!(pending_ids(store.as_ref(), "u").is_empty());
    // u's acks do not touch v.
    assert_eq!(pending_ids(store.as_ref(), "v"), ["theirs", "all"]);
}

fn acking_twice_is_harmless(engine: &dyn Engine) {
    let store = engine.open();
    store.save_notification(&note("a"), Some("u"), 1).unwrap();
    assert!(store.ack_notification("u", "a", 2).unwrap());
    assert!(store.ack_notification("u", "a", 3).unwrap());
    assert!(pending_ids(store.as_ref(), "u").is_empty());
}

fn notifications_round_trip_every_field(engine: &dyn Engine) {
    let store = engine.open();
    let full = Notification {
        id: "n-1".into(),
        title: "Exam tomorrow".into(),
        message: "Room 4, bring a pencil".into(),
        kind: NotificationKind::Warning,
        priority: Priority::High,
        action_url: Some("https://example.test/exams/4?x=1&y=2".into()),
        action_text: Some("Open".into()),
    };
    store.save_notification(&full, Some("u"), 1).unwrap();
    assert_eq!(store.pending_notifications("u", 10).unwrap(), [full]);
}

fn a_duplicate_notification_id_fails_and_the_store_goes_on(engine: &dyn Engine) {
    let store = engine.open();
    store.save_notification(&note("a"), Some("u"), 1).unwrap();
    assert!(store.save_notification(&note("a"), Some("v"), 2).is_err());
    // The failed call did not break the store (a pooled connection is replaced).
    store.ping().unwrap();
    store.save_notification(&note("b"), Some("u"), 3).unwrap();
    assert_eq!(pending_ids(store.as_ref(), "u"), ["a", "b"]);
    assert!(pending_ids(store.as_ref(), "v").is_empty());
}

fn reopening_keeps_everything(engine: &dyn Engine) {
    let store = engine.open();
    store.record_session("u", 1800.0, DAY0).unwrap();
    store.record_session("u", 1800.0, DAY0 + DAY).unwrap();
    store.save_notification(&note("a"), Some("u"), 1).unwrap();
    store.save_notification(&note("b"), None, 2).unwrap();
    assert!(store.ack_notification("u", "a", 3).unwrap());
    store.flush().unwrap();
    drop(store);
    let store = engine.open();
    let record = store.study_record("u", DAY0 + DAY).unwrap();
    assert_eq!(record.total_hours, 1.0);
    assert_eq!(record.today_hours, 0.5);
    assert_eq!(record.streak, 2);
    assert_eq!(pending_ids(store.as_ref(), "u"), ["b"]);
    assert_eq!(engine.schema_version(), 2);
}

fn concurrent_writers_lose_nothing(engine: &dyn Engine) {
    const THREADS: usize = 8;
    const SESSIONS: usize = 25;
    // Two store instances, as two server nodes would have, shared by several threads each.
    let stores = [engine.open(), engine.open()];
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = stores[t % 2].clone();
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for s in 0..SESSIONS {
                    // 450 s = 0.125 h: exact in binary, so the total is exact whatever the order.
                    store.record_session("shared", 450.0, DAY0).unwrap();
                    store
                        .record_session(&format!("user-{t}"), 450.0, DAY0 + s as u64)
                        .unwrap();
                    if s % 5 == 0 {
                        store
                            .save_notification(&note(&format!("n-{t}-{s}")), Some("shared"), 1)
                            .unwrap();
                    }
                }
            });
        }
    });
    let store = engine.open();
    let shared = store.study_record("shared", DAY0).unwrap();
    assert_eq!(shared.total_hours, (THREADS * SESSIONS) as f64 * 0.125);
    assert_eq!(shared.today_hours, shared.total_hours);
    for t in 0..THREADS {
        let own = store.study_record(&format!("user-{t}"), DAY0).unwrap();
        assert_eq!(own.total_hours, SESSIONS as f64 * 0.125);
    }
    assert_eq!(
        store
            .pending_notifications("shared", usize::MAX)
            .unwrap()
            .len(),
        THREADS * SESSIONS / 5
    );
}

fn unicode_and_large_strings_round_trip(engine: &dyn Engine) {
    let store = engine.open();
    let users = [
        "Ünïcødé 🚀 学习者",
        "quote'\"; DROP TABLE study_totals; --",
        "back\\slash%_like",
        "עברית",
    ];
    for user in users {
        store.record_session(user, 3600.0, DAY0).unwrap();
    }
    for user in users {
        assert_eq!(
            store.study_record(user, DAY0).unwrap().total_hours,
            1.0,
            "{user}"
        );
    }
    assert_eq!(
        store.study_record("%", DAY0).unwrap(),
        StudyRecord::default()
    );
    let long_user = "u".repeat(10_000);
    store.record_session(&long_user, 60.0, DAY0).unwrap();
    assert_eq!(
        store
            .study_record(&long_user, DAY0)
            .unwrap()
            .last_session_secs,
        60.0
    );
    let big = Notification {
        id: "🚀-big".into(),
        title: "Ťïtłé — 📚".into(),
        message: "ünïcødé ✓ 字 ".repeat(5_000),
        kind: NotificationKind::Success,
        priority: Priority::Medium,
        action_url: None,
        action_text: Some("Öffnen".into()),
    };
    store.save_notification(&big, Some(users[0]), 1).unwrap();
    assert_eq!(store.pending_notifications(users[0], 10).unwrap(), [big]);
    assert!(store.ack_notification(users[0], "🚀-big", 2).unwrap());
    assert!(
        store
            .pending_notifications(users[0], 10)
            .unwrap()
            .is_empty()
    );
}

fn migrations_are_idempotent(engine: &dyn Engine) {
    let first = engine.open();
    first.record_session("u", 3600.0, DAY0).unwrap();
    let second = engine.open();
    assert_eq!(second.study_record("u", DAY0).unwrap().total_hours, 1.0);
    assert_eq!(engine.schema_version(), 2);
    assert_eq!(engine.schema_version(), 2);
}

fn concurrent_opens_migrate_once(engine: &dyn Engine) {
    const NODES: usize = 4;
    // Several nodes start at once on a database that has never been migrated.
    let barrier = Barrier::new(NODES);
    let stores: Vec<Arc<dyn Store>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..NODES)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    engine.open()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, store) in stores.iter().enumerate() {
        store.record_session("u", 900.0, DAY0 + i as u64).unwrap();
    }
    assert_eq!(
        stores[0].study_record("u", DAY0).unwrap().total_hours,
        NODES as f64 * 0.25
    );
    assert_eq!(engine.schema_version(), 2);
}

fn works_from_blocking_threads_of_a_runtime(engine: &dyn Engine) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = std::thread::scope(|scope| scope.spawn(|| engine.open()).join().unwrap());
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let store = store.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                store.record_session("u", 450.0, DAY0 + i)
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let reader = store.clone();
        let record = tokio::task::spawn_blocking(move || reader.study_record("u", DAY0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.total_hours, 1.0);
        // The last handle goes away on a runtime worker, as the server's may: no panic.
        drop(store);
    });
    // And from a plain thread.
    let store = engine.open();
    std::thread::spawn(move || store.ping().unwrap())
        .join()
        .unwrap();
}

fn ping_and_flush(engine: &dyn Engine) {
    let store = engine.open();
    store.ping().unwrap();
    store.flush().unwrap();
    store.record_session("u", 60.0, DAY0).unwrap();
    store.flush().unwrap();
}
