//! The PostgreSQL backend against a throwaway cluster (one for this module, a database per
//! test). Skipped loudly when PostgreSQL is not installed (`pg_cluster::for_tests`).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::keys::Key;
use super::kv::{KvError, ReadTxn, Rows, Table, WriteTxn, contract};
use super::pg::{PgBackend, PgOptions, PgRead, PgWrite};
use super::pg_cluster::{self, Cluster};
use super::pg_schema::SCHEMA_VERSION;

const GENESIS: &str = "genesis-0000";

fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER.get_or_init(pg_cluster::for_tests).as_ref()
}

/// A fresh database `name` and its URL.
fn database(name: &str) -> Option<(&'static Cluster, String)> {
    let c = cluster()?;
    let url = c.create_database(name).unwrap();
    Some((c, url))
}

/// A migrated backend on a fresh database `name`.
fn backend(name: &str) -> Option<(&'static Cluster, PgBackend)> {
    let (c, url) = database(name)?;
    let b = PgBackend::connect(PgOptions::new(url)).unwrap();
    b.migrate(GENESIS).unwrap();
    Some((c, b))
}

impl contract::Backend for PgBackend {
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn)) {
        let mut w = self.begin_write();
        f(&mut w);
        w.commit().unwrap();
    }

    fn read(&self) -> Box<dyn ReadTxn + '_> {
        Box::new(self.begin_read())
    }
}

#[test]
fn postgres_keeps_the_contract() {
    let Some((_, b)) = backend("contract") else {
        return;
    };
    contract::run(&b);
}

/// Both tokio flavours call the sync seam from inside their runtime, and drop the backend
/// there too.
async fn inside_a_runtime(db: &str) {
    let Some((_, b)) = backend(db) else { return };
    let mut w = b.begin_write();
    w.put(Table::Scratch, b"k", b"v").unwrap();
    w.commit().unwrap();
    let r = b.begin_read();
    assert_eq!(r.get(Table::Scratch, b"k").unwrap().unwrap(), b"v");
    drop(r);
    drop(b);
    tokio::task::yield_now().await;
}

#[tokio::test]
async fn works_inside_a_current_thread_runtime() {
    inside_a_runtime("rt_current").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_multi_thread_runtime() {
    inside_a_runtime("rt_multi").await;
}

#[test]
fn a_read_is_a_snapshot_and_a_rollback_leaves_nothing() {
    let Some((_, b)) = backend("snapshot") else {
        return;
    };
    let t = Table::Scratch;
    let mut w = b.begin_write();
    w.put(t, b"a", b"1").unwrap();
    w.commit().unwrap();
    let r = b.begin_read();
    assert_eq!(r.get(t, b"a").unwrap().unwrap(), b"1");
    let mut w = b.begin_write();
    w.put(t, b"a", b"2").unwrap();
    w.put(t, b"b", b"2").unwrap();
    w.commit().unwrap();
    assert_eq!(r.get(t, b"a").unwrap().unwrap(), b"1", "the snapshot holds");
    assert!(r.get(t, b"b").unwrap().is_none());
    drop(r);
    let mut w = b.begin_write();
    w.put(t, b"c", b"3").unwrap();
    w.rollback().unwrap();
    let mut w = b.begin_write();
    w.put(t, b"d", b"4").unwrap();
    drop(w);
    let r = b.begin_read();
    assert!(r.get(t, b"c").unwrap().is_none());
    assert!(r.get(t, b"d").unwrap().is_none(), "dropped = rolled back");
    assert_eq!(r.get(t, b"a").unwrap().unwrap(), b"2");
}

#[test]
fn writes_to_one_key_serialize_across_connections() {
    let Some((_, b)) = backend("serialize") else {
        return;
    };
    let t = Table::Scratch;
    let key = ("counter", "x").encode();
    // A holds the key for a while; B, started meanwhile, waits and then sees A's value.
    let (held_tx, held) = std::sync::mpsc::channel();
    let a = {
        let (b, key) = (b.clone(), key.clone());
        std::thread::spawn(move || {
            let mut w = b.begin_write();
            assert!(w.get(t, &key).unwrap().is_none());
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            w.put(t, &key, b"from A").unwrap();
            w.commit().unwrap();
        })
    };
    held.recv().unwrap();
    let started = Instant::now();
    let w = b.begin_write();
    assert_eq!(w.get(t, &key).unwrap().unwrap(), b"from A");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "B waited for A"
    );
    w.commit().unwrap();
    a.join().unwrap();

    // No lost update: 8 threads × 25 read-modify-write increments.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (b, key) = (b.clone(), key.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let mut w = b.begin_write();
                    let n: u64 = match w.get(t, &key).unwrap() {
                        Some(v) if v != b"from A" => String::from_utf8(v).unwrap().parse().unwrap(),
                        _ => 0,
                    };
                    w.put(t, &key, (n + 1).to_string().as_bytes()).unwrap();
                    w.commit().unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let r = b.begin_read();
    assert_eq!(r.get(t, &key).unwrap().unwrap(), b"200");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn event_hash(prev: &str, seq: u64) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_string().as_bytes());
    hex(&h.finalize())
}

/// One writer batch: lock the head, append 1–3 events (never past `total`), move the head,
/// commit. Answers how many it appended (0: the log is full).
fn append_batch(w: &mut PgWrite, want: u64, total: u64) -> Result<u64, KvError> {
    let (next, mut prev) = w.lock_chain_head()?;
    let n = want.min(total + 1 - next);
    for seq in next..next + n {
        let hash = event_hash(&prev, seq);
        let event = serde_json::json!({ "seq": seq, "prev": prev, "hash": hash });
        w.put(Table::Audit, &seq.encode(), event.to_string().as_bytes())?;
        prev = hash;
    }
    w.set_chain_head(next + n, &prev)?;
    Ok(n)
}

#[test]
fn the_chain_head_orders_concurrent_writers() {
    let Some((_, b)) = backend("chain") else {
        return;
    };
    const TOTAL: u64 = 2000;
    let retries = Arc::new(AtomicUsize::new(0));
    let start = Barrier::new(16);
    let started = Instant::now();
    std::thread::scope(|s| {
        for i in 0..16u64 {
            let (b, retries, start) = (b.clone(), retries.clone(), &start);
            s.spawn(move || {
                start.wait();
                let mut round = i;
                loop {
                    round += 1;
                    let mut w = b.begin_write();
                    match append_batch(&mut w, 1 + round % 3, TOTAL) {
                        Ok(0) => return,
                        Ok(_) => match w.commit() {
                            Ok(()) => {}
                            Err(KvError::Retry(_)) => {
                                retries.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("commit: {e}"),
                        },
                        Err(KvError::Retry(_)) => {
                            retries.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("append: {e}"),
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    eprintln!(
        "chain: {TOTAL} events by 16 writers in {elapsed:?} ({:.0} events/s, {} retries)",
        TOTAL as f64 / elapsed.as_secs_f64(),
        retries.load(Ordering::Relaxed)
    );
    let r = b.begin_read();
    let rows = r
        .range(
            Table::Audit,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            usize::MAX,
        )
        .unwrap();
    assert_eq!(rows.len() as u64, TOTAL);
    let mut prev = GENESIS.to_string();
    for (i, (k, v)) in rows.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(k, &seq.encode(), "seq {seq}: no gap, no duplicate");
        let event: serde_json::Value = serde_json::from_slice(v).unwrap();
        assert_eq!(event["seq"], seq);
        assert_eq!(
            event["prev"],
            prev.as_str(),
            "seq {seq} links to {}",
            seq - 1
        );
        assert_eq!(event["hash"], event_hash(&prev, seq).as_str());
        prev = event["hash"].as_str().unwrap().to_string();
    }
    let w = b.begin_write();
    assert_eq!(w.lock_chain_head().unwrap(), (TOTAL + 1, prev));
}

#[test]
fn concurrent_migrations_and_a_newer_schema() {
    let Some((c, url)) = database("migrate") else {
        return;
    };
    let start = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (url, start) = (url.clone(), &start);
            s.spawn(move || {
                let b = PgBackend::connect(PgOptions::new(url)).unwrap();
                start.wait();
                b.migrate(GENESIS).unwrap();
            });
        }
    });
    let tables = c
        .psql(
            "migrate",
            "select count(*) from pg_tables where schemaname = 'public'",
        )
        .unwrap();
    assert_eq!(tables, (Table::ALL.len() + 3).to_string());
    assert_eq!(
        c.psql(
            "migrate",
            "select value from latchkey_meta where key = 'schema_version'"
        )
        .unwrap(),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(
        c.psql("migrate", "select id, seq, hash from chain_head")
            .unwrap(),
        format!("1|1|{GENESIS}")
    );
    // Once more: nothing changes (the head is not reset).
    let b = PgBackend::connect(PgOptions::new(url.clone())).unwrap();
    b.migrate("another genesis").unwrap();
    assert_eq!(
        c.psql("migrate", "select hash from chain_head").unwrap(),
        GENESIS
    );
    c.psql(
        "migrate",
        "update latchkey_meta set value = '99' where key = 'schema_version'",
    )
    .unwrap();
    match b.migrate(GENESIS) {
        Err(KvError::Schema(msg)) => assert!(msg.contains("99"), "{msg}"),
        other => panic!("a newer schema is refused, got {other:?}"),
    }
}

#[test]
fn a_lost_connection_is_unavailable_and_the_pool_recovers() {
    let Some((c, b)) = backend("terminate") else {
        return;
    };
    let r = b.begin_read();
    assert!(r.get(Table::Scratch, b"k").unwrap().is_none());
    let killed = c
        .psql(
            "postgres",
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = 'terminate' and application_name = 'latchkey'",
        )
        .unwrap();
    assert_ne!(killed, "0");
    match r.get(Table::Scratch, b"k") {
        Err(KvError::Unavailable(_)) => {}
        other => panic!("a statement on a terminated connection: {other:?}"),
    }
    drop(r);
    // The pool hands out live connections again (the dead ones are dropped).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.begin_read().get(Table::Scratch, b"k") {
            Ok(got) => {
                assert!(got.is_none());
                break;
            }
            Err(KvError::Unavailable(_)) if Instant::now() < deadline => {}
            Err(e) => panic!("the pool did not recover: {e}"),
        }
    }
}

#[test]
fn buffered_writes_lock_at_commit_in_one_order_and_reads_see_them() {
    let Some((_, b)) = backend("buffered") else {
        return;
    };
    let t = Table::Scratch;
    let both = Barrier::new(2);
    // Blind writes in opposite orders do not deadlock: their locks are taken at commit, sorted.
    let outcomes: Vec<Result<(), KvError>> = std::thread::scope(|s| {
        let handles: Vec<_> = [(b"b1", b"b2"), (b"b2", b"b1")]
            .into_iter()
            .map(|(first, second)| {
                let (b, both) = (b.clone(), &both);
                s.spawn(move || {
                    let mut w = b.begin_write();
                    w.put(t, first, b"x")?;
                    both.wait();
                    w.put(t, second, b"y")?;
                    w.commit()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    // Inside one transaction, reads see its pending puts and deletes, ranges included.
    let mut w = b.begin_write();
    w.put(t, b"r1", b"1").unwrap();
    w.put(t, b"r2", b"2").unwrap();
    w.put(t, b"r3", b"3").unwrap();
    w.commit().unwrap();
    let mut w = b.begin_write();
    assert!(w.delete(t, b"r2").unwrap(), "r2 was there");
    assert!(
        !w.delete(t, b"r2").unwrap(),
        "and is gone in this transaction"
    );
    w.put(t, b"r4", b"4").unwrap();
    assert_eq!(w.get(t, b"r4").unwrap().as_deref(), Some(&b"4"[..]));
    assert_eq!(w.get(t, b"r2").unwrap(), None);
    let from = Bound::Included(&b"r"[..]);
    let to = Bound::Excluded(&b"s"[..]);
    let keys = |rows: Rows| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(w.range(t, from, to, false, 2).unwrap()),
        vec![b"r1".to_vec(), b"r3".to_vec()]
    );
    assert_eq!(
        keys(w.range(t, from, to, true, 2).unwrap()),
        vec![b"r4".to_vec(), b"r3".to_vec()]
    );
    // Another transaction sees nothing of it before the commit, everything after.
    assert!(b.begin_read().get(t, b"r2").unwrap().is_some());
    w.commit().unwrap();
    let r = b.begin_read();
    assert!(r.get(t, b"r2").unwrap().is_none());
    assert_eq!(r.get(t, b"r4").unwrap().as_deref(), Some(&b"4"[..]));
    assert_eq!(
        r.get(t, b"b1").unwrap().as_deref().map(<[u8]>::len),
        Some(1)
    );
}

#[test]
fn records_read_ahead_answer_later_gets_and_writes_still_win() {
    let Some((_, b)) = backend("prefetch") else {
        return;
    };
    let t = Table::Scratch;
    let mut w = b.begin_write();
    w.put(t, b"p1", b"one").unwrap();
    w.commit().unwrap();
    let mut w = b.begin_write();
    w.prefetch(vec![(t, b"p1".to_vec()), (t, b"p2".to_vec())])
        .unwrap();
    assert_eq!(w.get(t, b"p1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(w.get(t, b"p2").unwrap(), None);
    w.put(t, b"p2", b"two").unwrap();
    assert_eq!(w.get(t, b"p2").unwrap().as_deref(), Some(&b"two"[..]));
    assert!(w.delete(t, b"p1").unwrap());
    assert_eq!(w.get(t, b"p1").unwrap(), None);
    w.commit().unwrap();
    let r = b.begin_read();
    assert_eq!(r.get(t, b"p1").unwrap(), None);
    assert_eq!(r.get(t, b"p2").unwrap().as_deref(), Some(&b"two"[..]));
}

#[test]
fn a_deadlock_and_a_serialization_failure_are_retry() {
    let Some((_, b)) = backend("retry") else {
        return;
    };
    let t = Table::Scratch;
    let both = Barrier::new(2);
    let outcomes: Vec<Result<(), KvError>> = std::thread::scope(|s| {
        let handles: Vec<_> = [(b"k1", b"k2"), (b"k2", b"k1")]
            .into_iter()
            .map(|(first, second)| {
                let (b, both) = (b.clone(), &both);
                s.spawn(move || {
                    // Reads lock their key at once (puts only at commit, in one order).
                    let mut w = b.begin_write();
                    w.get(t, first)?;
                    w.put(t, first, b"x")?;
                    both.wait();
                    w.get(t, second)?;
                    w.put(t, second, b"y")?;
                    w.commit()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let retried = outcomes
        .iter()
        .filter(|o| matches!(o, Err(KvError::Retry(_))))
        .count();
    assert_eq!(
        retried, 1,
        "one side of the deadlock is told to retry: {outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);

    let mut w = b.begin_write();
    let forced = w.execute_raw(
        "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END $$",
    );
    assert!(matches!(forced, Err(KvError::Retry(_))), "{forced:?}");
    match w.commit() {
        Err(KvError::Backend(msg)) => assert!(msg.contains("rolled back"), "{msg}"),
        other => panic!("a failed transaction does not commit: {other:?}"),
    }
}

#[test]
fn the_password_never_shows() {
    let Some((c, _)) = database("secretive") else {
        return;
    };
    const PASSWORD: &str = "pw-Very-Secret-42";
    let url = format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{}/secretive",
        c.port()
    );
    // Trust authentication: the password is not checked, but it is in the URL.
    let b = PgBackend::connect(PgOptions::new(url)).unwrap();
    let shown = format!("{b:?} {:?}", b.options());
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("***"), "{shown}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut opts = PgOptions::new(format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/db"));
    opts.connect_timeout = Duration::from_secs(2);
    let e = PgBackend::connect(opts.clone()).unwrap_err();
    let shown = format!("{e:?} {e} {opts:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(matches!(e, KvError::Unavailable(_)), "{e:?}");

    for bad in [
        format!("postgres://app:{PASSWORD}@127.0.0.1:notaport/db"),
        format!("host=127.0.0.1 port=notaport user=app password={PASSWORD}"),
        format!("postgres://app:{PASSWORD}/x?y@127.0.0.1:notaport/db"),
        format!("postgres://127.0.0.1:notaport/db?user=app&password={PASSWORD}"),
    ] {
        let opts = PgOptions::new(bad);
        let e = PgBackend::connect(opts.clone()).unwrap_err();
        let shown = format!("{e:?} {e} {opts:?}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    assert_eq!(
        PgOptions::new("postgres://app:pw@db.internal:5432/latchkey?sslmode=require")
            .url
            .redacted(),
        "postgres://app:***@db.internal:5432/latchkey?sslmode=require"
    );
}

#[test]
fn a_notification_reaches_a_listener_even_after_its_connection_is_killed() {
    let Some((c, b)) = backend("listen") else {
        return;
    };
    let other = PgBackend::connect(b.options().clone()).unwrap();
    let mut rx = b.listen("wake");
    other.notify("wake", "batch-1").unwrap();
    let got = recv_within(&mut rx, Duration::from_secs(5));
    assert_eq!(got.as_deref(), Some("batch-1"));

    let killed = c
        .psql(
            "postgres",
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = 'listen' and application_name = 'latchkey-listen'",
        )
        .unwrap();
    assert_eq!(killed, "1");
    // Notifications sent while it reconnects are lost: notify until one arrives.
    let started = Instant::now();
    let mut got = None;
    for i in 0..100 {
        other.notify("wake", &format!("batch-{}", i + 2)).unwrap();
        got = recv_within(&mut rx, Duration::from_millis(100));
        if got.is_some() {
            break;
        }
    }
    let waited = started.elapsed();
    eprintln!("listen: reconnected and received after {waited:?}");
    assert!(got.is_some_and(|p| p.starts_with("batch-")));
    assert!(waited < Duration::from_secs(10));
}

fn recv_within(
    rx: &mut tokio::sync::broadcast::Receiver<String>,
    wait: Duration,
) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        match rx.try_recv() {
            Ok(p) => return Some(p),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn measure_point_reads_and_writes() {
    let Some((_, b)) = backend("measure") else {
        return;
    };
    let t = Table::Scratch;
    let mut w = b.begin_write();
    for i in 0..100u64 {
        w.put(t, &i.encode(), b"value").unwrap();
    }
    w.commit().unwrap();
    let n: u64 = 1000;
    let started = Instant::now();
    for i in 0..n {
        let r: PgRead = b.begin_read();
        assert!(r.get(t, &(i % 100).encode()).unwrap().is_some());
    }
    let fresh = started.elapsed() / n as u32;
    let r = b.begin_read();
    let started = Instant::now();
    for i in 0..n {
        assert!(r.get(t, &(i % 100).encode()).unwrap().is_some());
    }
    let inside = started.elapsed() / n as u32;
    drop(r);
    let started = Instant::now();
    for i in 0..n {
        let mut w = b.begin_write();
        w.put(t, &(i % 100).encode(), b"again").unwrap();
        w.commit().unwrap();
    }
    let write = started.elapsed() / n as u32;
    eprintln!(
        "measure (debug build, fsync off): get in a new read txn {fresh:?}, \
         get inside one read txn {inside:?}, put+commit {write:?}"
    );
}

#[test]
fn a_statement_timeout_is_unavailable_and_a_closed_backend_answers() {
    let Some((_, url)) = database("timeouts") else {
        return;
    };
    let mut opts = PgOptions::new(url);
    opts.statement_timeout = Duration::from_millis(300);
    let b = PgBackend::connect(opts).unwrap();
    b.migrate(GENESIS).unwrap();
    let mut w = b.begin_write();
    let started = Instant::now();
    let slow = w.execute_raw("SELECT pg_sleep(5)");
    assert!(matches!(slow, Err(KvError::Unavailable(_))), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut by statement_timeout"
    );
    drop(w);
    // A transaction that outlives its backend answers (Unavailable) instead of hanging.
    let r = b.begin_read();
    drop(b);
    match r.get(Table::Scratch, b"k") {
        Err(KvError::Unavailable(_)) => {}
        other => panic!("after the backend is gone: {other:?}"),
    }
}
