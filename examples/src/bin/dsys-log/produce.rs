//! `produce`: writes test records into partition directories through the log.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dsys_log::{
    AppendError, BatchBuilder, Log, LogConfig, NewRecord, ProducerStamp, StdDir, Timestamp,
    partition_for_key,
};

use super::{
    ProduceArgs, Res,
    format::{Table, millis, thousands},
};

pub(super) struct Partition {
    pub(super) name: String,
    pub(super) log: Log<StdDir>,
    pub(super) builder: BatchBuilder,
    pub(super) next_sequence: i32,
    pub(super) first_offset: Option<u64>,
    pub(super) last_offset: u64,
    pub(super) records: u64,
    pub(super) batches: u64,
    pub(super) bytes: u64,
}

pub(super) fn produce(args: &ProduceArgs) -> Res {
    let mut config = LogConfig::default();
    if let Some(bytes) = args.segment_bytes {
        config.segment_bytes = bytes;
    }
    if let Some(bytes) = args.index_interval_bytes {
        config.index_interval_bytes = bytes;
    }
    config.validate()?;
    let dirs: Vec<(String, PathBuf)> = match args.partitions {
        None => vec![(args.dir.display().to_string(), args.dir.clone())],
        Some(count) => (0..count)
            .map(|p| {
                let name = format!("{}-{p}", args.topic);
                (name.clone(), args.dir.join(name))
            })
            .collect(),
    };
    let mut partitions = Vec::new();
    for (name, dir) in dirs {
        let (log, recovery) = StdDir::open(&dir)
            .map_err(Box::<dyn Error>::from)
            .and_then(|storage| Ok(Log::open(storage, config.clone())?))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if recovery.truncated_bytes > 0 || recovery.deleted_segments > 0 {
            out!(
                "{name}: recovery cut {} damaged bytes and {} segments",
                recovery.truncated_bytes,
                recovery.deleted_segments
            );
        }
        partitions.push(Partition {
            name,
            log,
            builder: BatchBuilder::new(),
            next_sequence: 0,
            first_offset: None,
            last_offset: 0,
            records: 0,
            batches: 0,
            bytes: 0,
        });
    }
    let existing: u64 = partitions.iter().map(|p| p.log.next_offset()).sum();
    let producer = if args.no_idempotence {
        None
    } else {
        Some(args.producer_id.unwrap_or(existing as i64))
    };
    let start = args.timestamp.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    });
    out!(
        "producing {} records into {} partition(s): {} per batch, {}, {}-byte values, {}",
        thousands(args.records),
        partitions.len(),
        args.batch,
        if args.key_space == 0 {
            "null keys".to_owned()
        } else {
            format!("{} keys", thousands(args.key_space))
        },
        args.value_bytes,
        producer.map_or("no producer id".to_owned(), |id| format!(
            "producer id {id} epoch 0"
        )),
    );

    let count = partitions.len() as u32;
    let mut round_robin = 0u32;
    let mut value = Vec::with_capacity(args.value_bytes);
    let started = Instant::now();
    for i in 0..args.records {
        let key = (args.key_space > 0).then(|| format!("key-{}", i % args.key_space));
        let p = match &key {
            Some(key) => partition_for_key(key.as_bytes(), count),
            // Kafka's sticky partitioner for null keys: a whole batch to one partition.
            None => round_robin,
        } as usize;
        fill_value(&mut value, i, args.value_bytes);
        let timestamp = start.saturating_add(i as i64);
        let part = &mut partitions[p];
        part.builder.push(NewRecord::new(
            timestamp,
            key.as_deref().map(str::as_bytes),
            Some(&value),
        ));
        if part.builder.len() >= args.batch as usize {
            append(part, producer, timestamp)?;
            if key.is_none() {
                round_robin = (round_robin + 1) % count;
            }
        }
    }
    let end = start.saturating_add(args.records as i64);
    for part in &mut partitions {
        append(part, producer, end)?;
    }
    let appended = started.elapsed();

    let mut table = Table::new(
        &[
            "partition",
            "offsets",
            "records",
            "batches",
            "bytes",
            "segments",
            "next offset",
        ],
        &[2, 3, 4, 5, 6],
    );
    for part in &partitions {
        table.row([
            part.name.clone(),
            part.first_offset
                .map_or("-".to_owned(), |f| format!("{f}..{}", part.last_offset)),
            thousands(part.records),
            thousands(part.batches),
            thousands(part.bytes),
            part.log.segment_count().to_string(),
            part.log.next_offset().to_string(),
        ]);
    }
    let records: u64 = partitions.iter().map(|p| p.records).sum();
    let batches: u64 = partitions.iter().map(|p| p.batches).sum();
    let bytes: u64 = partitions.iter().map(|p| p.bytes).sum();
    let closing = Instant::now();
    for part in partitions {
        part.log.close()?;
    }
    let closed = closing.elapsed();
    table.print()?;
    let secs = appended.as_secs_f64().max(1e-9);
    out!(
        "appended {} records in {} batches, {} bytes, in {} ({} records/s, {:.1} MiB/s); \
         closed (fsync, indexes, checkpoint) in {}",
        thousands(records),
        thousands(batches),
        thousands(bytes),
        millis(appended),
        thousands((records as f64 / secs) as u64),
        bytes as f64 / secs / (1024.0 * 1024.0),
        millis(closed),
    );
    Ok(())
}

/// Value `i`: its number, then the alphabet over and over, `len` bytes.
pub(super) fn fill_value(value: &mut Vec<u8>, i: u64, len: usize) {
    value.clear();
    value.extend(format!("value-{i} ").bytes().take(len));
    let mut letter = 0u8;
    while value.len() < len {
        value.push(b'a' + letter);
        letter = (letter + 1) % 26;
    }
}

/// Appends the partition's pending batch, if any.
pub(super) fn append(part: &mut Partition, producer: Option<i64>, now: Timestamp) -> Res {
    let mut builder = std::mem::take(&mut part.builder);
    if builder.is_empty() {
        return Ok(());
    }
    let records = builder.len();
    if let Some(producer_id) = producer {
        builder = builder.producer(ProducerStamp {
            producer_id,
            producer_epoch: 0,
            base_sequence: part.next_sequence,
        });
        part.next_sequence = part.next_sequence.wrapping_add(records as i32) & i32::MAX;
    }
    let batch = builder.finish().ok_or("a batch with records")?;
    let size = batch.len() as u64;
    let appended = part.log.append(batch, now).map_err(|e| {
        let hint = if matches!(e, AppendError::Producer(_)) {
            " (this producer id wrote here before: pick another --producer-id)"
        } else {
            ""
        };
        format!("{}: {e}{hint}", part.name)
    })?;
    part.first_offset.get_or_insert(appended.base_offset);
    part.last_offset = appended.last_offset;
    part.records += records as u64;
    part.batches += 1;
    part.bytes += size;
    Ok(())
}
