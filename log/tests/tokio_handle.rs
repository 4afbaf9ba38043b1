//! The async handle (`dsys_log::tokio`): appends and flushes never block the
//! runtime (a ticking task keeps running on a `current_thread` runtime while
//! the owner is busy), reads see what was appended, durable acknowledgements
//! share fsyncs (group commit) and survive a crash (`MemDir::crash`, then a
//! reopen recovers exactly the fsynced prefix; Kafka's recovery point rule).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dsys_log::tokio::{AppendError, DriverConfig, spawn};
use dsys_log::{BatchBuf, BatchBuilder, FlushPolicy, Log, LogConfig, MemDir, NewRecord, StdDir};

fn batch(value: &[u8]) -> BatchBuf {
    let mut builder = BatchBuilder::new();
    builder.push(NewRecord::new(0, None, Some(value)));
    builder.finish().expect("one record")
}

fn value_at(batches: &[dsys_log::RecordBatch], offset: u64) -> Option<Vec<u8>> {
    batches
        .iter()
        .flat_map(|b| b.records())
        .map(|r| r.expect("a valid record"))
        .find(|r| r.offset == offset)
        .and_then(|r| r.value.map(|v| v.to_vec()))
}

#[tokio::test(flavor = "current_thread")]
async fn appenders_do_not_block_a_current_thread_runtime() {
    let path = std::env::temp_dir().join(format!("dsys-log-tokio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let (log, _) =
        Log::open(StdDir::open(&path).expect("dir"), LogConfig::default()).expect("open");
    let handle = spawn(log, DriverConfig::default()).expect("valid");

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(5));
            loop {
                interval.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // A slow disk: the owner is busy for 500 ms. The runtime's only thread
    // keeps serving the ticker meanwhile.
    let slow = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .with(|_| std::thread::sleep(Duration::from_millis(500)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = ticks.load(Ordering::Relaxed);
    // 64 appenders, 8 durable appends of 64 KiB each (32 MiB in all, with
    // one large group fsync after the slow call).
    let value = vec![7u8; 64 << 10];
    let mut appenders = Vec::new();
    for _ in 0..64 {
        let handle = handle.clone();
        let value = value.clone();
        appenders.push(tokio::spawn(async move {
            for _ in 0..8 {
                handle
                    .append_durable(batch(&value))
                    .await
                    .expect("appended and durable");
            }
        }));
    }
    slow.await.expect("no panic").expect("ran");
    let during = ticks.load(Ordering::Relaxed) - before;
    assert!(
        during >= 10,
        "the ticker ran {during} times while the owner was busy for 500 ms"
    );
    for appender in appenders {
        appender.await.expect("no panic");
    }
    ticker.abort();
    let counters = handle.counters();
    assert_eq!(counters.appends, 512);
    assert!(
        counters.group_flushes < 512,
        "durable appends share fsyncs: {counters:?}"
    );
    assert_eq!(handle.flush().await.expect("flushed"), 512);
    handle.close().await.expect("closed cleanly");
    assert!(matches!(
        handle.append(batch(b"late")).await,
        Err(AppendError::Closed)
    ));
    let (log, report) =
        Log::open(StdDir::open(&path).expect("dir"), LogConfig::default()).expect("reopen");
    assert!(report.clean_shutdown);
    assert_eq!(log.next_offset(), 512);
    drop(log);
    std::fs::remove_dir_all(&path).expect("cleanup");
}

#[tokio::test(flavor = "current_thread")]
async fn reads_see_appended_data_while_appends_go_on() {
    let (log, _) = Log::open(MemDir::new(), LogConfig::default()).expect("open");
    let handle = spawn(log, DriverConfig::default()).expect("valid");
    let writer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            for i in 0..200u32 {
                let appended = handle
                    .append(batch(&i.to_be_bytes()))
                    .await
                    .expect("appended");
                assert_eq!(appended.base_offset, u64::from(i));
            }
        })
    };
    // Read concurrently: whatever is below the high-watermark is complete.
    let mut seen = 0u64;
    while seen < 200 {
        let high_watermark = handle.high_watermark();
        if high_watermark > seen {
            let batches = handle.read(seen, 1 << 20).await.expect("in range");
            for offset in seen..high_watermark.min(seen + batches.len() as u64) {
                let expected = u32::try_from(offset).expect("small").to_be_bytes();
                assert_eq!(value_at(&batches, offset), Some(expected.to_vec()));
            }
            seen += batches.len() as u64;
        } else {
            tokio::task::yield_now().await;
        }
    }
    writer.await.expect("no panic");
    assert!(matches!(
        handle.read(201, 1).await,
        Err(dsys_log::ReadError::OffsetOutOfRange { .. })
    ));
    let next = handle.with(|log| log.next_offset()).await.expect("running");
    assert_eq!(next, 200);
    handle.close().await.expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_acks_survive_a_crash() {
    let dir = MemDir::new();
    let (log, _) = Log::open(dir.clone(), LogConfig::default()).expect("open");
    let handle = spawn(log, DriverConfig::default()).expect("valid");
    let mut appenders = Vec::new();
    for task in 0..16u32 {
        let handle = handle.clone();
        appenders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20u32 {
                let value = (task * 1000 + i).to_be_bytes();
                let appended = handle.append_durable(batch(&value)).await.expect("durable");
                assert!(appended.durable_offset > appended.last_offset);
                acked.push((appended.base_offset, value));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for appender in appenders {
        acked.extend(appender.await.expect("no panic"));
    }
    // Appended after the last fsync: may be lost.
    handle
        .append(batch(b"not durable"))
        .await
        .expect("appended");
    assert!(
        dir.sync_count() < 320,
        "group commit: {} fsyncs for 320 durable appends",
        dir.sync_count()
    );
    // Power loss while the owner still holds the log, then a new process opens it.
    dir.crash();
    let (log, report) = Log::open(dir.clone(), LogConfig::default()).expect("recover");
    assert!(!report.clean_shutdown);
    assert_eq!(
        log.next_offset(),
        320,
        "exactly the fsynced prefix survives"
    );
    let batches = log.read(0, 1 << 20).expect("in range");
    for (offset, value) in acked {
        assert_eq!(value_at(&batches, offset), Some(value.to_vec()));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_owner_runs_the_flush_timer() {
    let mut config = LogConfig::default();
    config.flush = FlushPolicy::every_millis(20);
    let dir = MemDir::new();
    let (log, _) = Log::open(dir.clone(), config).expect("open");
    let handle = spawn(log, DriverConfig::default()).expect("valid");
    let appended = handle
        .append(batch(b"soon durable"))
        .await
        .expect("appended");
    assert_eq!(appended.durable_offset, 0, "flush.ms has not passed yet");
    // Nobody calls flush: the owner sleeps until `poll_timeout` and runs
    // `handle_timeout`, which fsyncs (flush.ms).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let durable = handle
            .with(|log| log.durable_offset())
            .await
            .expect("running");
        if durable == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no timed flush in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(handle.counters().timeouts >= 1);
    handle.close().await.expect("closed");
    let (_, report) = Log::open(dir, LogConfig::default()).expect("reopen");
    assert!(report.clean_shutdown);
}
