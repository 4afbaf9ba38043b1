//! Kafka format compatibility, checked from outside the crate.
//!
//! The segment files dsys-log writes are decoded by an independent decoder of Kafka
//! record batch v2 written in this file from Kafka's published format description
//! (<https://kafka.apache.org/documentation/#recordbatch> and `#record`), with its own
//! CRC-32C (Castagnoli) and zig-zag varints; nothing here uses dsys-log's batch
//! decoding or the `crc32c` / `unsigned-varint` crates to check what was written.
//! Every batch field and every record is compared with what was appended, and the
//! `.index` / `.timeindex` entries are checked to point at the right batches (and to
//! be exactly the entries Kafka's `LogSegment.append` would have written).
//!
//! The other direction: a batch assembled byte by byte from the specification, and a
//! batch encoded by a third-party client (Sarama), decode with
//! [`dsys_log::RecordBatch::decode`] with the right fields, and dsys-log's own
//! builder produces the hand-assembled bytes exactly.
//!
//! `DSYS_WRITE_FUZZ_SEEDS=1 cargo test -p dsys-log --test format write_fuzz_seeds`
//! regenerates the seed inputs under `log/fuzz/seeds/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use dsys_log::{
    BatchBuf, BatchBuilder, Log, LogConfig, MemDir, NewRecord, ProducerStamp, RecordBatch, StdDir,
};

/// An independent reading of Kafka's record batch v2 specification.
mod spec {
    /// Reflected CRC-32C (Castagnoli) polynomial, as used by record batch v2.
    pub(crate) const CASTAGNOLI_REFLECTED: u32 = 0x82F6_3B78;

    const fn make_table() -> [u32; 256] {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ CASTAGNOLI_REFLECTED
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    }

    static TABLE: [u32; 256] = make_table();

    /// CRC-32C, table driven (init and final xor `0xFFFF_FFFF`, reflected).
    pub(crate) fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
        }
        !crc
    }

    /// CRC-32C one bit at a time: the definition the table is checked against.
    pub(crate) fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ CASTAGNOLI_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Zig-zag varlong (`sint64` in protobuf terms, Kafka's `ByteUtils.writeVarlong`).
    pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        while u >= 0x80 {
            out.push((u as u8 & 0x7F) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }

    /// Zig-zag varint (Kafka's `ByteUtils.writeVarint`).
    pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
        let mut u = ((v << 1) ^ (v >> 31)) as u32;
        while u >= 0x80 {
            out.push((u as u8 & 0x7F) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }

    /// A bounds-checked big-endian reader.
    pub(crate) struct Reader<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    impl<'a> Reader<'a> {
        pub(crate) fn new(buf: &'a [u8]) -> Self {
            Reader { buf, pos: 0 }
        }

        pub(crate) fn remaining(&self) -> usize {
            self.buf.len() - self.pos
        }

        pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if n > self.remaining() {
                return Err(format!(
                    "need {n} bytes at {}, have {}",
                    self.pos,
                    self.remaining()
                ));
            }
            let out = &self.buf[self.pos..self.pos + n];
            self.pos += n;
            Ok(out)
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
            let mut out = [0u8; N];
            out.copy_from_slice(self.take(N)?);
            Ok(out)
        }

        pub(crate) fn i8(&mut self) -> Result<i8, String> {
            Ok(self.array::<1>()?[0] as i8)
        }

        pub(crate) fn i16(&mut self) -> Result<i16, String> {
            Ok(i16::from_be_bytes(self.array()?))
        }

        pub(crate) fn i32(&mut self) -> Result<i32, String> {
            Ok(i32::from_be_bytes(self.array()?))
        }

        pub(crate) fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_be_bytes(self.array()?))
        }

        pub(crate) fn i64(&mut self) -> Result<i64, String> {
            Ok(i64::from_be_bytes(self.array()?))
        }

        /// Unsigned LEB128 of at most `max_bytes` bytes, each carrying 7 bits, low first.
        fn unsigned_varint(&mut self, max_bytes: usize, bits: u32) -> Result<u64, String> {
            let mut value = 0u64;
            for i in 0..max_bytes {
                let b = self.array::<1>()?[0];
                let shift = 7 * i as u32;
                let chunk = (b & 0x7F) as u64;
                if shift + 7 > bits && chunk >> (bits - shift) != 0 {
                    return Err(format!("varint overflows {bits} bits"));
                }
                value |= chunk << shift;
                if b & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(format!("varint longer than {max_bytes} bytes"))
        }

        /// Zig-zag varint: at most 5 bytes, an `int32`.
        pub(crate) fn varint(&mut self) -> Result<i32, String> {
            let u = self.unsigned_varint(5, 32)? as u32;
            Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
        }

        /// Zig-zag varlong: at most 10 bytes, an `int64`.
        pub(crate) fn varlong(&mut self) -> Result<i64, String> {
            let u = self.unsigned_varint(10, 64)?;
            Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
        }

        /// `varint length` then that many bytes; length -1 is null.
        fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, String> {
            match self.varint()? {
                -1 => Ok(None),
                n if n < 0 => Err(format!("negative length {n}")),
                n => Ok(Some(self.take(n as usize)?.to_vec())),
            }
        }
    }

    /// `baseOffset int64` and `batchLength int32`: the framing before `batchLength` counts.
    pub(crate) const LOG_OVERHEAD: usize = 12;
    /// The CRC covers the bytes from `attributes` to the end of the batch.
    pub(crate) const CRC_COVERAGE_START: usize = 21;
    /// Bytes from `partitionLeaderEpoch` through `recordsCount`.
    const MIN_BATCH_LENGTH: i32 = 49;

    /// A record batch as the specification lays it out.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Batch {
        pub(crate) base_offset: i64,
        pub(crate) batch_length: i32,
        pub(crate) partition_leader_epoch: i32,
        pub(crate) magic: i8,
        pub(crate) crc: u32,
        pub(crate) attributes: i16,
        pub(crate) last_offset_delta: i32,
        pub(crate) base_timestamp: i64,
        pub(crate) max_timestamp: i64,
        pub(crate) producer_id: i64,
        pub(crate) producer_epoch: i16,
        pub(crate) base_sequence: i32,
        pub(crate) records_count: i32,
        pub(crate) records: Vec<Record>,
    }

    impl Batch {
        /// Bytes of the batch on disk: `batchLength` plus the log overhead.
        pub(crate) fn size(&self) -> usize {
            LOG_OVERHEAD + self.batch_length as usize
        }

        pub(crate) fn last_offset(&self) -> i64 {
            self.base_offset + self.last_offset_delta as i64
        }

        /// The delete horizon the log cleaner stamped (KIP-534): with attribute bit 6
        /// set, `baseTimestamp` holds it, and record timestamps are still
        /// `baseTimestamp + timestampDelta`.
        pub(crate) fn delete_horizon(&self) -> Option<i64> {
            (self.attributes & DELETE_HORIZON_FLAG != 0).then_some(self.base_timestamp)
        }
    }

    /// Attribute bit 6: `baseTimestamp` is the delete horizon (KIP-534).
    pub(crate) const DELETE_HORIZON_FLAG: i16 = 0x40;
    /// `baseTimestamp` of a batch without records (`RecordBatch.NO_TIMESTAMP`).
    pub(crate) const NO_TIMESTAMP: i64 = -1;

    /// One record of a batch.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Record {
        /// The `length` varint: bytes of the record after it.
        pub(crate) length: i32,
        pub(crate) attributes: i8,
        pub(crate) timestamp_delta: i64,
        pub(crate) offset_delta: i32,
        pub(crate) key: Option<Vec<u8>>,
        pub(crate) value: Option<Vec<u8>>,
        pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    }

    /// Decodes the batch at the start of `buf`, checking magic 2, the CRC-32C, the
    /// record framing and that the records fill `batchLength` exactly.
    pub(crate) fn decode_batch(buf: &[u8]) -> Result<Batch, String> {
        let mut r = Reader::new(buf);
        let base_offset = r.i64()?;
        let batch_length = r.i32()?;
        if batch_length < MIN_BATCH_LENGTH {
            return Err(format!("batchLength {batch_length} is below the header"));
        }
        // Everything after batchLength belongs to this batch.
        let mut r = Reader::new(r.take(batch_length as usize)?);
        let partition_leader_epoch = r.i32()?;
        let magic = r.i8()?;
        if magic != 2 {
            return Err(format!("magic {magic}"));
        }
        let crc = r.u32()?;
        let covered = &buf[CRC_COVERAGE_START..LOG_OVERHEAD + batch_length as usize];
        let computed = crc32c(covered);
        if computed != crc {
            return Err(format!("crc {crc:#010x}, computed {computed:#010x}"));
        }
        let attributes = r.i16()?;
        let last_offset_delta = r.i32()?;
        let base_timestamp = r.i64()?;
        let max_timestamp = r.i64()?;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let base_sequence = r.i32()?;
        let records_count = r.i32()?;
        if attributes & 0x07 != 0 {
            return Err(format!("compressed records (attributes {attributes:#06x})"));
        }
        if records_count < 0 {
            return Err(format!("recordsCount {records_count}"));
        }
        let mut records = Vec::new();
        for i in 0..records_count {
            let length = r.varint()?;
            if length < 0 {
                return Err(format!("record {i}: length {length}"));
            }
            let mut rec = Reader::new(r.take(length as usize)?);
            let attributes = rec.i8()?;
            let timestamp_delta = rec.varlong()?;
            let offset_delta = rec.varint()?;
            let key = rec.nullable_bytes()?;
            let value = rec.nullable_bytes()?;
            let header_count = rec.varint()?;
            if header_count < 0 {
                return Err(format!("record {i}: {header_count} headers"));
            }
            let mut headers = Vec::new();
            for _ in 0..header_count {
                let key = rec.nullable_bytes()?.ok_or("null header key")?;
                let key = String::from_utf8(key).map_err(|e| format!("header key: {e}"))?;
                headers.push((key, rec.nullable_bytes()?));
            }
            if rec.remaining() != 0 {
                return Err(format!(
                    "record {i}: {} bytes past its fields",
                    rec.remaining()
                ));
            }
            records.push(Record {
                length,
                attributes,
                timestamp_delta,
                offset_delta,
                key,
                value,
                headers,
            });
        }
        if r.remaining() != 0 {
            return Err(format!("{} bytes after the last record", r.remaining()));
        }
        Ok(Batch {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            records_count,
            records,
        })
    }

    /// Decodes a whole `.log` file: batches back to back, nothing after the last one.
    /// Returns each batch with its byte position.
    pub(crate) fn decode_segment(file: &[u8]) -> Result<Vec<(usize, Batch)>, String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < file.len() {
            let batch = decode_batch(&file[pos..]).map_err(|e| format!("batch at {pos}: {e}"))?;
            let size = batch.size();
            out.push((pos, batch));
            pos += size;
        }
        Ok(out)
    }

    /// `.index`: 8-byte entries `relativeOffset int32, position int32`.
    pub(crate) fn offset_index(bytes: &[u8]) -> Vec<(i32, i32)> {
        assert_eq!(bytes.len() % 8, 0, ".index length {}", bytes.len());
        bytes
            .chunks_exact(8)
            .map(|e| {
                let mut r = Reader::new(e);
                (r.i32().expect("4 bytes"), r.i32().expect("4 bytes"))
            })
            .collect()
    }

    /// `.timeindex`: 12-byte entries `timestamp int64, relativeOffset int32`.
    pub(crate) fn time_index(bytes: &[u8]) -> Vec<(i64, i32)> {
        assert_eq!(bytes.len() % 12, 0, ".timeindex length {}", bytes.len());
        bytes
            .chunks_exact(12)
            .map(|e| {
                let mut r = Reader::new(e);
                (r.i64().expect("8 bytes"), r.i32().expect("4 bytes"))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// The decoder's own building blocks against published values.
// ---------------------------------------------------------------------------------

#[test]
fn crc32c_matches_published_check_values() {
    // The CRC catalogue's check value for CRC-32C (CRC-32/ISCSI).
    assert_eq!(spec::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(spec::crc32c_bitwise(b"123456789"), 0xE306_9283);
    assert_eq!(spec::crc32c(b""), 0);
    // RFC 3720 (iSCSI), appendix B.4.
    assert_eq!(spec::crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(spec::crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let ascending: Vec<u8> = (0..32).collect();
    assert_eq!(spec::crc32c(&ascending), 0x46DD_794E);
    let descending: Vec<u8> = (0..32).rev().collect();
    assert_eq!(spec::crc32c(&descending), 0x113F_DB5C);
    // Table and bit-by-bit agree on arbitrary data.
    let mut rng = Rng(7);
    for len in [1, 3, 17, 255, 1000] {
        let data = rng.bytes(len);
        assert_eq!(
            spec::crc32c(&data),
            spec::crc32c_bitwise(&data),
            "len {len}"
        );
    }
}

#[test]
fn zigzag_varints_match_the_specification() {
    let cases: &[(i64, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (-2, &[0x03]),
        (63, &[0x7E]),
        (-64, &[0x7F]),
        (64, &[0x80, 0x01]),
        (300, &[0xD8, 0x04]),
        (i32::MAX as i64, &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
        (i32::MIN as i64, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ];
    for &(v, bytes) in cases {
        let mut out = Vec::new();
        spec::put_varlong(&mut out, v);
        assert_eq!(out, bytes, "varlong {v}");
        if let Ok(v32) = i32::try_from(v) {
            let mut out = Vec::new();
            spec::put_varint(&mut out, v32);
            assert_eq!(out, bytes, "varint {v}");
            assert_eq!(spec::Reader::new(bytes).varint(), Ok(v32));
        }
        assert_eq!(spec::Reader::new(bytes).varlong(), Ok(v));
    }
    let mut out = Vec::new();
    spec::put_varlong(&mut out, i64::MIN);
    assert_eq!(
        out,
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
    );
    assert_eq!(spec::Reader::new(&out).varlong(), Ok(i64::MIN));
    // Too long or overflowing encodings are refused.
    assert!(
        spec::Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00])
            .varint()
            .is_err()
    );
    assert!(
        spec::Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F])
            .varint()
            .is_err()
    );
    assert!(spec::Reader::new(&[0xFF; 10]).varlong().is_err());
    let mut rng = Rng(11);
    for _ in 0..2000 {
        let v = rng.next() as i64 >> (rng.below(64) as u32);
        let mut out = Vec::new();
        spec::put_varlong(&mut out, v);
        let mut r = spec::Reader::new(&out);
        assert_eq!(r.varlong(), Ok(v));
        assert_eq!(r.remaining(), 0);
    }
}

// ---------------------------------------------------------------------------------
// What the tests append.
// ---------------------------------------------------------------------------------

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// `min` to `min + spread - 1` random bytes.
    fn some_bytes(&mut self, min: usize, spread: u64) -> Vec<u8> {
        let len = min + self.below(spread) as usize;
        self.bytes(len)
    }
}

/// Batches to append, each with an optional (producer id, epoch).
type Workload = Vec<(Vec<Rec>, Option<(i64, i16)>)>;
/// A directory's files by name.
type Files = BTreeMap<String, Vec<u8>>;
/// `.index` entries: (relativeOffset, position).
type OffsetEntries = Vec<(i32, i32)>;
/// `.timeindex` entries: (timestamp, relativeOffset).
type TimeEntries = Vec<(i64, i32)>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A batch as appended, with the offset the log gave it.
#[derive(Debug, Clone)]
struct Sent {
    base_offset: u64,
    records: Vec<Rec>,
    producer: Option<ProducerStamp>,
}

fn build(records: &[Rec], producer: Option<ProducerStamp>) -> BatchBuf {
    let mut b = BatchBuilder::new();
    if let Some(p) = producer {
        b = b.producer(p);
    }
    for r in records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.push(NewRecord {
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
        });
    }
    b.finish().expect("at least one record")
}

const T0: i64 = 1_700_000_000_000;

fn random_record(rng: &mut Rng, n: u64, ts: i64) -> Rec {
    let key = match rng.below(8) {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(rng.some_bytes(130, 2000)),
        _ => Some(format!("key-{n}").into_bytes()),
    };
    let value = match rng.below(16) {
        0 => None,
        1 => Some(Vec::new()),
        2..=4 => Some(rng.some_bytes(100, 600)),
        5 => Some(rng.some_bytes(2000, 3000)),
        _ => Some(format!("value of record {n}").into_bytes()),
    };
    let header_keys = ["", "trace-id", "ключ", "h"];
    let headers = (0..rng.below(4))
        .map(|i| {
            let key = header_keys[(i as usize + n as usize) % header_keys.len()].to_string();
            let value = match rng.below(3) {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(rng.some_bytes(1, 40)),
            };
            (key, value)
        })
        .collect();
    Rec {
        timestamp: ts,
        key,
        value,
        headers,
    }
}

/// Batches to append: fixed edge cases first, then `random` random ones. Timestamps go
/// up and down within and across batches. Producer ids cycle through none, 1000
/// (epoch 0, sequences from 0) and 2000 (epoch 5, sequences wrapping past `i32::MAX`).
fn workload(seed: u64, random: usize) -> Workload {
    let mut rng = Rng(seed);
    let mut out: Workload = Vec::new();
    let rec = |ts: i64, key: Option<&[u8]>, value: Option<&[u8]>| Rec {
        timestamp: ts,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: Vec::new(),
    };
    // Null, empty and present keys and values; headers with null and empty values.
    out.push((
        vec![
            rec(T0, None, None),
            rec(T0 + 1, Some(b""), Some(b"")),
            rec(T0 - 1, Some(b"k"), None),
            rec(T0, None, Some(b"v")),
            Rec {
                timestamp: T0 + 2,
                key: None,
                value: Some(b"with headers".to_vec()),
                headers: vec![
                    ("null".into(), None),
                    ("empty".into(), Some(Vec::new())),
                    (String::new(), Some(b"empty key".to_vec())),
                    ("ключ".into(), Some(vec![0, 255, 128])),
                ],
            },
        ],
        None,
    ));
    // A single record larger than a segment, with multi-byte varint lengths.
    out.push((
        vec![rec(T0 + 10, Some(&[7u8; 300]), Some(&vec![0xAB; 20_000]))],
        Some((1000, 0)),
    ));
    // Timestamp deltas beyond 32 bits in both directions.
    out.push((
        vec![
            rec(T0 + 20, Some(b"a"), Some(b"1")),
            rec(3, Some(b"b"), Some(b"2")),
            rec(T0 * 2, None, None),
        ],
        None,
    ));
    // Many records in one batch.
    let many: Vec<Rec> = (0..300)
        .map(|i| {
            rec(
                T0 + 30 + (i % 7) - 3,
                Some(format!("m{i}").as_bytes()),
                Some(&[i as u8; 5]),
            )
        })
        .collect();
    out.push((many, Some((2000, 5))));
    for b in 0..random {
        let n = match rng.below(10) {
            0 => 40 + rng.below(60),
            1..=3 => 1,
            _ => 2 + rng.below(8),
        };
        let base_ts = T0 + 1000 + b as i64 * 50 + rng.below(400) as i64 - 200;
        let records = (0..n)
            .map(|i| {
                let ts = base_ts + rng.below(200) as i64 - 100;
                random_record(&mut rng, b as u64 * 1000 + i, ts)
            })
            .collect();
        let producer = match rng.below(3) {
            0 => None,
            1 => Some((1000, 0)),
            _ => Some((2000, 5)),
        };
        out.push((records, producer));
    }
    out
}

/// Appends `batches` to `log`, stamping producer batches with consecutive sequences,
/// and returns what was sent with the offsets the log assigned.
fn append_all<S: dsys_log::Storage>(
    log: &mut Log<S>,
    batches: Workload,
    sequences: &mut BTreeMap<i64, i32>,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (records, producer) in batches {
        let producer = producer.map(|(producer_id, producer_epoch)| {
            let next = sequences.entry(producer_id).or_insert(match producer_id {
                2000 => i32::MAX - 350,
                _ => 0,
            });
            let base_sequence = *next;
            let n = records.len() as i32;
            // Sequences wrap from i32::MAX to 0, as in Kafka.
            *next = if base_sequence > i32::MAX - n {
                n - (i32::MAX - base_sequence) - 1
            } else {
                base_sequence + n
            };
            ProducerStamp {
                producer_id,
                producer_epoch,
                base_sequence,
            }
        });
        let expected_base = log.next_offset();
        let appended = log.append(build(&records, producer), 0).expect("append");
        assert!(!appended.duplicate);
        assert_eq!(appended.base_offset, expected_base);
        assert_eq!(
            appended.last_offset,
            expected_base + records.len() as u64 - 1
        );
        sent.push(Sent {
            base_offset: appended.base_offset,
            records,
            producer,
        });
    }
    sent
}

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 16 * 1024;
    c.index_interval_bytes = 700;
    c.segment_ms = None;
    c.leader_epoch = 7;
    c
}

// ---------------------------------------------------------------------------------
// Checking a directory of segments.
// ---------------------------------------------------------------------------------

fn parse_name(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().expect("digits"))
}

/// One decoded segment.
struct Segment {
    base: u64,
    batches: Vec<(usize, spec::Batch)>,
    offsets: Option<Vec<(i32, i32)>>,
    times: Option<Vec<(i64, i32)>>,
}

/// Decodes every segment in `files` with the independent decoder.
fn decode_dir(files: &Files) -> Vec<Segment> {
    let mut segments = Vec::new();
    for (name, bytes) in files {
        let Some(base) = parse_name(name, ".log") else {
            continue;
        };
        assert_eq!(name, &format!("{base:020}.log"));
        let batches = spec::decode_segment(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let offsets = files
            .get(&format!("{base:020}.index"))
            .map(|b| spec::offset_index(b));
        let times = files
            .get(&format!("{base:020}.timeindex"))
            .map(|b| spec::time_index(b));
        segments.push(Segment {
            base,
            batches,
            offsets,
            times,
        });
    }
    segments.sort_by_key(|s| s.base);
    segments
}

/// Every field of `got` against the batch that was appended.
fn check_batch(got: &spec::Batch, sent: &Sent, leader_epoch: i32) {
    let what = format!("batch at offset {}", sent.base_offset);
    let n = sent.records.len();
    assert_eq!(
        got.base_offset, sent.base_offset as i64,
        "{what}: baseOffset"
    );
    assert_eq!(
        got.partition_leader_epoch, leader_epoch,
        "{what}: partitionLeaderEpoch"
    );
    assert_eq!(got.magic, 2, "{what}: magic");
    assert_eq!(got.attributes, 0, "{what}: attributes");
    assert_eq!(
        got.last_offset_delta,
        n as i32 - 1,
        "{what}: lastOffsetDelta"
    );
    assert_eq!(got.records_count, n as i32, "{what}: recordsCount");
    let base_ts = sent.records[0].timestamp;
    let max_ts = sent
        .records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .expect("records");
    assert_eq!(got.base_timestamp, base_ts, "{what}: baseTimestamp");
    assert_eq!(got.max_timestamp, max_ts, "{what}: maxTimestamp");
    let (pid, epoch, seq) = sent.producer.map_or((-1, -1, -1), |p| {
        (p.producer_id, p.producer_epoch, p.base_sequence)
    });
    assert_eq!(got.producer_id, pid, "{what}: producerId");
    assert_eq!(got.producer_epoch, epoch, "{what}: producerEpoch");
    assert_eq!(got.base_sequence, seq, "{what}: baseSequence");
    assert_eq!(got.records.len(), n, "{what}: records");
    let mut body = 49;
    for (i, (r, want)) in got.records.iter().zip(&sent.records).enumerate() {
        let what = format!("{what}, record {i}");
        assert_eq!(r.attributes, 0, "{what}: attributes");
        assert_eq!(r.offset_delta, i as i32, "{what}: offsetDelta");
        assert_eq!(
            r.timestamp_delta,
            want.timestamp.wrapping_sub(base_ts),
            "{what}: timestampDelta"
        );
        assert_eq!(
            base_ts.wrapping_add(r.timestamp_delta),
            want.timestamp,
            "{what}: timestamp"
        );
        assert_eq!(r.key, want.key, "{what}: key");
        assert_eq!(r.value, want.value, "{what}: value");
        assert_eq!(r.headers, want.headers, "{what}: headers");
        let mut length_varint = Vec::new();
        spec::put_varint(&mut length_varint, r.length);
        body += length_varint.len() + r.length as usize;
    }
    assert_eq!(got.batch_length as usize, body, "{what}: batchLength");
}

/// Kafka's `LogSegment.append` index rule, restated: before accounting for a batch, if
/// more than `index.interval.bytes` were appended since the last entry, add an offset
/// entry (last offset of this batch, its position) and a time entry (largest timestamp
/// so far, last offset of the first batch that reached it) when the timestamp grew.
/// A sealed segment gets a final time entry for its largest timestamp.
fn kafka_index_entries(seg: &Segment, interval: u64, sealed: bool) -> (OffsetEntries, TimeEntries) {
    let mut offsets = Vec::new();
    let mut times: Vec<(i64, i32)> = Vec::new();
    let mut since = 0u64;
    let mut max: Option<(i64, i32)> = None;
    let rel = |o: i64| (o - seg.base as i64) as i32;
    // Kafka's `TimeIndex.maybeAppend`: only a larger timestamp makes an entry.
    fn push_time(times: &mut Vec<(i64, i32)>, e: (i64, i32)) {
        if times.last().is_none_or(|l| e.0 > l.0) {
            times.push(e);
        }
    }
    for (pos, b) in &seg.batches {
        if max.is_none_or(|(t, _)| b.max_timestamp > t) {
            max = Some((b.max_timestamp, rel(b.last_offset())));
        }
        if since > interval {
            offsets.push((rel(b.last_offset()), *pos as i32));
            push_time(&mut times, max.expect("set above"));
            since = 0;
        }
        since += b.size() as u64;
    }
    if sealed {
        if let Some(m) = max {
            push_time(&mut times, m);
        }
    }
    (offsets, times)
}

/// Checks a segment's index entries point at the right batches.
fn check_indexes(seg: &Segment, sealed: bool) {
    let name = format!("segment {}", seg.base);
    let offsets = seg
        .offsets
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no .index"));
    let times = seg
        .times
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no .timeindex"));
    let at: BTreeMap<usize, &spec::Batch> = seg.batches.iter().map(|(p, b)| (*p, b)).collect();
    let by_last: BTreeMap<i64, &spec::Batch> = seg
        .batches
        .iter()
        .map(|(_, b)| (b.last_offset(), b))
        .collect();
    for (i, &(rel, pos)) in offsets.iter().enumerate() {
        assert!(
            rel >= 0 && pos >= 0,
            "{name}: .index entry {i} ({rel}, {pos}) negative"
        );
        if i > 0 {
            let (prev_rel, prev_pos) = offsets[i - 1];
            assert!(
                rel > prev_rel && pos > prev_pos,
                "{name}: .index entry {i} not increasing"
            );
        }
        let batch = at.get(&(pos as usize)).unwrap_or_else(|| {
            panic!("{name}: .index entry {i} position {pos} is not a batch start")
        });
        assert_eq!(
            batch.last_offset(),
            seg.base as i64 + rel as i64,
            "{name}: .index entry {i}"
        );
    }
    // Largest record timestamp up to each offset of the segment.
    let mut running = BTreeMap::new();
    let mut max = i64::MIN;
    for (_, b) in &seg.batches {
        for r in &b.records {
            max = max.max(b.base_timestamp.wrapping_add(r.timestamp_delta));
        }
        if b.records.is_empty() {
            // A batch the cleaner emptied keeps its maxTimestamp.
            max = max.max(b.max_timestamp);
        }
        running.insert(b.last_offset(), max);
    }
    for (i, &(ts, rel)) in times.iter().enumerate() {
        if i > 0 {
            let (prev_ts, prev_rel) = times[i - 1];
            assert!(
                ts > prev_ts && rel > prev_rel,
                "{name}: .timeindex entry {i} not increasing"
            );
        }
        let offset = seg.base as i64 + rel as i64;
        let batch = by_last.get(&offset).unwrap_or_else(|| {
            panic!("{name}: .timeindex entry {i} offset {offset} is not a batch end")
        });
        assert_eq!(
            batch.max_timestamp, ts,
            "{name}: .timeindex entry {i}: that batch's maxTimestamp"
        );
        assert_eq!(
            running[&offset], ts,
            "{name}: .timeindex entry {i}: max timestamp up to {offset}"
        );
    }
    if sealed {
        let last = times
            .last()
            .unwrap_or_else(|| panic!("{name}: sealed without time entries"));
        assert_eq!(
            Some(&last.0),
            running.values().last(),
            "{name}: last time entry is not the segment's max"
        );
    }
}

/// Decodes `files` and checks them against `sent`: every batch in order, every field,
/// and the index files (of sealed segments, and of the active one when `closed`).
/// Index entries are compared with Kafka's rule exactly for segments written in one
/// session (none of `reopened_at` falls inside them).
fn check_dir(files: &Files, sent: &[Sent], config: &LogConfig, closed: bool, reopened_at: &[u64]) {
    let segments = decode_dir(files);
    assert!(segments.len() >= 4, "only {} segments", segments.len());
    let decoded: Vec<&spec::Batch> = segments
        .iter()
        .flat_map(|s| s.batches.iter().map(|(_, b)| b))
        .collect();
    assert_eq!(decoded.len(), sent.len(), "batches in the files");
    let mut next = 0i64;
    for (got, want) in decoded.iter().zip(sent) {
        assert_eq!(got.base_offset, next, "offsets are contiguous");
        check_batch(got, want, config.leader_epoch);
        next = got.last_offset() + 1;
    }
    let mut index_entries = 0;
    for (i, seg) in segments.iter().enumerate() {
        let sealed = i + 1 < segments.len();
        let first = seg.batches.first().map(|(_, b)| b.base_offset);
        assert_eq!(
            first,
            Some(seg.base as i64),
            "segment {} is named by its first offset",
            seg.base
        );
        if !sealed && !closed {
            continue;
        }
        // Sealed segments, and the active one after close, end their time index with
        // the segment's largest timestamp (Kafka's `onBecomeInactiveSegment` / `close`).
        check_indexes(seg, true);
        let end = seg.batches.last().expect("non-empty").1.last_offset() as u64 + 1;
        if !reopened_at.iter().any(|&r| seg.base < r && r < end) {
            let (offsets, times) = kafka_index_entries(seg, config.index_interval_bytes, true);
            assert_eq!(
                seg.offsets.as_ref(),
                Some(&offsets),
                "segment {}: .index entries",
                seg.base
            );
            assert_eq!(
                seg.times.as_ref(),
                Some(&times),
                "segment {}: .timeindex entries",
                seg.base
            );
        }
        index_entries += seg.offsets.as_ref().map_or(0, Vec::len);
    }
    assert!(
        index_entries >= 20,
        "only {index_entries} offset index entries"
    );
}

fn mem_files(dir: &MemDir) -> Files {
    dir.file_names()
        .into_iter()
        .map(|n| (n.clone(), dir.read_file(&n).expect("listed")))
        .collect()
}

fn std_files(path: &std::path::Path) -> Files {
    std::fs::read_dir(path)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().into_string().expect("utf-8 name");
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// Writes the workload through `open` and checks the files before and after close;
/// then reopens and closes without appending, which must leave them as valid. With
/// `append_after_reopen`, appends more after the reopen and checks everything again.
fn round_trip<S: dsys_log::Storage>(
    open: impl Fn() -> S,
    files: impl Fn() -> Files,
    append_after_reopen: bool,
) {
    let config = config();
    let mut sequences = BTreeMap::new();
    let (mut log, report) = Log::open(open(), config.clone()).expect("open");
    assert_eq!(report.next_offset, 0);
    let mut sent = append_all(&mut log, workload(1, 100), &mut sequences);
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    check_dir(&files(), &sent, &config, false, &[]);
    log.close().expect("close");
    let closed = files();
    check_dir(&closed, &sent, &config, true, &[]);

    let (log, report) = Log::open(open(), config.clone()).expect("reopen");
    let end = sent
        .last()
        .map_or(0, |s| s.base_offset + s.records.len() as u64);
    assert_eq!(report.next_offset, end);
    assert_eq!(log.next_offset(), end);
    log.close().expect("close");
    check_dir(&files(), &sent, &config, true, &[]);
    for (name, bytes) in &closed {
        if name.ends_with(".log") || name.ends_with("index") {
            assert_eq!(
                files().get(name),
                Some(bytes),
                "{name} changed by reopen and close"
            );
        }
    }
    if append_after_reopen {
        let (mut log, _) = Log::open(open(), config.clone()).expect("reopen");
        sent.extend(append_all(&mut log, workload(2, 40), &mut sequences));
        log.close().expect("close");
        check_dir(&files(), &sent, &config, true, &[end]);
    }
}

#[test]
fn mem_dir_segments_decode_with_the_independent_decoder() {
    let dir = MemDir::new();
    round_trip(|| dir.clone(), || mem_files(&dir), false);
}

#[test]
fn std_dir_segments_decode_with_the_independent_decoder() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("format-std-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    round_trip(
        || StdDir::open(&path).expect("dir"),
        || std_files(&path),
        false,
    );
    std::fs::remove_dir_all(&path).expect("clean up");
}

/// After a clean reopen the active segment's largest timestamp is taken from its last
/// `.timeindex` entry, so `close` must append that entry (as Kafka's
/// `LogSegment.close` does); otherwise records appended after the reopen with older
/// timestamps would write time entries that understate the maximum.
#[test]
fn appending_after_a_clean_reopen_keeps_the_indexes_right() {
    let dir = MemDir::new();
    round_trip(|| dir.clone(), || mem_files(&dir), true);
}

/// The smallest case of the above, seen through `offset_for_timestamp`.
#[test]
fn offset_for_timestamp_after_a_clean_reopen() {
    let dir = MemDir::new();
    let mut config = config();
    config.index_interval_bytes = 1;
    let one = |ts: i64| {
        build(
            &[Rec {
                timestamp: ts,
                key: None,
                value: Some(b"v".to_vec()),
                headers: vec![],
            }],
            None,
        )
    };
    let (mut log, _) = Log::open(dir.clone(), config.clone()).expect("open");
    log.append(one(1000), 0).expect("append");
    log.close().expect("close");
    let (mut log, _) = Log::open(dir.clone(), config.clone()).expect("reopen");
    log.append(one(500), 0).expect("append");
    log.roll().expect("roll");
    let times = spec::time_index(
        &dir.read_file("00000000000000000000.timeindex")
            .expect("sealed"),
    );
    assert_eq!(
        times.last(),
        Some(&(1000, 0)),
        "the sealed segment's last time entry: {times:?}"
    );
    assert_eq!(log.offset_for_timestamp(800).expect("lookup"), Some(0));
}

#[test]
fn the_independent_decoder_rejects_damage() {
    let buf = build(&workload(3, 0)[0].0, None);
    let bytes = buf.as_slice().to_vec();
    assert!(spec::decode_batch(&bytes).is_ok());
    for at in spec::CRC_COVERAGE_START..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert!(spec::decode_batch(&damaged).is_err(), "flip at {at}");
    }
    for cut in 0..bytes.len() {
        assert!(spec::decode_batch(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

// ---------------------------------------------------------------------------------
// The other direction: bytes from the specification decode with dsys-log.
// ---------------------------------------------------------------------------------

const GOLDEN_BASE_TS: i64 = 1_700_000_000_123;

/// Three records laid out byte by byte from the record format in Kafka's
/// documentation: `length varint, attributes int8, timestampDelta varlong, offsetDelta
/// varint, keyLength varint, key, valueLength varint, value, headersCount varint,
/// headers (headerKeyLength varint, headerKey, headerValueLength varint, value)`.
fn golden_records() -> Vec<u8> {
    let mut out = vec![
        // Record 0: 13 bytes after the length.
        0x1A, // length 13 (zig-zag 26)
        0x00, // attributes
        0x00, // timestampDelta 0
        0x00, // offsetDelta 0
        0x04, b'k', b'0', // keyLength 2, "k0"
        0x0A, b'h', b'e', b'l', b'l', b'o', // valueLength 5, "hello"
        0x00, // no headers
        // Record 1: 21 bytes after the length.
        0x2A, // length 21 (zig-zag 42)
        0x00, // attributes
        0x2D, // timestampDelta -23 (zig-zag 45)
        0x02, // offsetDelta 1
        0x01, // keyLength -1: null key
        0x01, // valueLength -1: null value (a tombstone)
        0x04, // 2 headers
        0x0A, b't', b'r', b'a', b'c', b'e', // headerKeyLength 5, "trace"
        0x04, 0xDE, 0xAD, // headerValueLength 2
        0x08, b'g', b'o', b'n', b'e', // headerKeyLength 4, "gone"
        0x01, // headerValueLength -1: null header value
        // Record 2: 208 bytes after the length.
        0xA0, 0x03, // length 208 (zig-zag 416 = 0x20 | 0x80, 0x03)
        0x00, // attributes
        0xD8, 0x04, // timestampDelta 300 (zig-zag 600)
        0x04, // offsetDelta 2
        0x00, // keyLength 0: empty key
        0x90, 0x03, // valueLength 200 (zig-zag 400)
    ];
    out.extend_from_slice(&[b'a'; 200]);
    out.push(0x00); // no headers
    out
}

/// The whole golden batch, header fields written one by one.
fn golden_batch(base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let records = golden_records();
    let mut covered = Vec::new(); // attributes .. end: what the CRC covers
    covered.extend_from_slice(&0i16.to_be_bytes()); // attributes: CreateTime, uncompressed
    covered.extend_from_slice(&2i32.to_be_bytes()); // lastOffsetDelta
    covered.extend_from_slice(&GOLDEN_BASE_TS.to_be_bytes()); // baseTimestamp
    covered.extend_from_slice(&(GOLDEN_BASE_TS + 300).to_be_bytes()); // maxTimestamp
    covered.extend_from_slice(&77i64.to_be_bytes()); // producerId
    covered.extend_from_slice(&2i16.to_be_bytes()); // producerEpoch
    covered.extend_from_slice(&10i32.to_be_bytes()); // baseSequence
    covered.extend_from_slice(&3i32.to_be_bytes()); // recordsCount
    covered.extend_from_slice(&records);
    let batch_length = 4 + 1 + 4 + covered.len(); // partitionLeaderEpoch, magic, crc, rest
    let mut out = Vec::new();
    out.extend_from_slice(&base_offset.to_be_bytes());
    out.extend_from_slice(&(batch_length as i32).to_be_bytes());
    out.extend_from_slice(&leader_epoch.to_be_bytes());
    out.push(2); // magic
    out.extend_from_slice(&spec::crc32c(&covered).to_be_bytes());
    out.extend_from_slice(&covered);
    out
}

fn golden_sent() -> Vec<Rec> {
    vec![
        Rec {
            timestamp: GOLDEN_BASE_TS,
            key: Some(b"k0".to_vec()),
            value: Some(b"hello".to_vec()),
            headers: vec![],
        },
        Rec {
            timestamp: GOLDEN_BASE_TS - 23,
            key: None,
            value: None,
            headers: vec![
                ("trace".into(), Some(vec![0xDE, 0xAD])),
                ("gone".into(), None),
            ],
        },
        Rec {
            timestamp: GOLDEN_BASE_TS + 300,
            key: Some(Vec::new()),
            value: Some(vec![b'a'; 200]),
            headers: vec![],
        },
    ]
}

const GOLDEN_PRODUCER: ProducerStamp = ProducerStamp {
    producer_id: 77,
    producer_epoch: 2,
    base_sequence: 10,
};

#[test]
fn hand_assembled_batch_decodes_with_dsys_log() {
    let bytes = golden_batch(42, 9);
    assert_eq!(bytes.len(), 61 + 14 + 22 + 210);
    // The hand-written varints agree with the encoder in this file.
    let mut v = Vec::new();
    for n in [13, 21, 208, 600 / 2] {
        spec::put_varint(&mut v, n);
    }
    assert_eq!(v, [0x1A, 0x2A, 0xA0, 0x03, 0xD8, 0x04]);
    // The independent decoder reads back what the bytes say.
    let want = Sent {
        base_offset: 42,
        records: golden_sent(),
        producer: Some(GOLDEN_PRODUCER),
    };
    check_batch(&spec::decode_batch(&bytes).expect("spec decode"), &want, 9);

    let batch =
        RecordBatch::decode(Bytes::from(bytes.clone())).expect("dsys-log accepts the batch");
    let h = batch.header();
    assert_eq!(batch.len(), bytes.len());
    assert_eq!(h.base_offset, 42);
    assert_eq!(h.batch_length as usize, bytes.len() - 12);
    assert_eq!(h.partition_leader_epoch, 9);
    assert_eq!(h.crc, spec::crc32c(&bytes[21..]));
    assert_eq!(h.attributes, 0);
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(batch.last_offset(), 44);
    assert_eq!(h.base_timestamp, GOLDEN_BASE_TS);
    assert_eq!(h.max_timestamp, GOLDEN_BASE_TS + 300);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (77, 2, 10)
    );
    assert_eq!(h.records_count, 3);
    let records: Vec<_> = batch.records().collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), 3);
    for (i, (r, want)) in records.iter().zip(golden_sent()).enumerate() {
        assert_eq!(r.offset, 42 + i as u64);
        assert_eq!(r.timestamp, want.timestamp, "record {i}");
        assert_eq!(r.key.as_deref(), want.key.as_deref(), "record {i}");
        assert_eq!(r.value.as_deref(), want.value.as_deref(), "record {i}");
        let headers: Vec<(String, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8(h.key.to_vec()).expect("utf-8"),
                    h.value.as_ref().map(|v| v.to_vec()),
                )
            })
            .collect();
        assert_eq!(headers, want.headers, "record {i}");
    }
    batch.validate_records().expect("consistent");
    // A produce request carrying these bytes is accepted as they are.
    let buf =
        BatchBuf::from_bytes(BytesMut::from(&bytes[..])).expect("accepted as a produce batch");
    assert_eq!(buf.as_slice(), &bytes[..]);
}

#[test]
fn builder_writes_the_hand_assembled_bytes() {
    // Our encoder produces exactly the specification's bytes (the builder leaves
    // baseOffset 0 and partitionLeaderEpoch -1 for the log to assign).
    let built = build(&golden_sent(), Some(GOLDEN_PRODUCER));
    assert_eq!(built.as_slice(), &golden_batch(0, -1)[..]);
    // Appending the hand-assembled batch stores it unchanged but for the fields the
    // log assigns outside the CRC.
    let dir = MemDir::new();
    let mut config = config();
    config.leader_epoch = 4;
    let (mut log, _) = Log::open(dir.clone(), config).expect("open");
    let first = BatchBuf::from_bytes(BytesMut::from(&golden_batch(1234, 1)[..])).expect("valid");
    log.append(first, 0).expect("append");
    log.close().expect("close");
    assert_eq!(
        dir.read_file("00000000000000000000.log").expect("segment"),
        golden_batch(0, 4)
    );
}

/// A batch encoded by another client: the "uncompressed record" vector of Sarama, the
/// Go Kafka client (IBM/sarama, `record_test.go`), CRC computed by its encoder.
const SARAMA_UNCOMPRESSED: [u8; 82] = [
    0, 0, 0, 0, 0, 0, 0, 0, // baseOffset
    0, 0, 0, 70, // batchLength
    0, 0, 0, 0, // partitionLeaderEpoch
    2, // magic
    84, 121, 97, 253, // crc
    0, 0, // attributes
    0, 0, 0, 0, // lastOffsetDelta
    0, 0, 1, 88, 141, 205, 89, 56, // baseTimestamp 1479847795000
    0, 0, 0, 0, 0, 0, 0, 0, // maxTimestamp
    0, 0, 0, 0, 0, 0, 0, 0, // producerId
    0, 0, // producerEpoch
    0, 0, 0, 0, // baseSequence
    0, 0, 0, 1, // recordsCount
    40, 0, 10, 0, // length 20, attributes, timestampDelta 5, offsetDelta 0
    8, 1, 2, 3, 4, // key
    6, 5, 6, 7, // value
    2, 6, 8, 9, 10, 4, 11, 12, // one header
];

#[test]
fn third_party_client_batch_decodes_with_both_decoders() {
    let b = spec::decode_batch(&SARAMA_UNCOMPRESSED).expect("spec decode");
    assert_eq!(b.crc, 0x5479_61FD);
    assert_eq!(b.base_timestamp, 1_479_847_795_000);
    assert_eq!(b.records[0].timestamp_delta, 5);
    assert_eq!(
        b.records[0].headers,
        vec![("\u{8}\u{9}\u{a}".to_string(), Some(vec![11, 12]))]
    );
    let batch =
        RecordBatch::decode(Bytes::from_static(&SARAMA_UNCOMPRESSED)).expect("dsys-log decode");
    assert_eq!(batch.header().crc, 0x5479_61FD);
    assert_eq!(batch.header().producer_id, 0);
    let records: Vec<_> = batch.records().collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].offset, 0);
    assert_eq!(records[0].timestamp, 1_479_847_795_005);
    assert_eq!(records[0].key.as_deref(), Some(&[1, 2, 3, 4][..]));
    assert_eq!(records[0].value.as_deref(), Some(&[5, 6, 7][..]));
    assert_eq!(&records[0].headers[0].key[..], &[8, 9, 10]);
    assert_eq!(records[0].headers[0].value.as_deref(), Some(&[11, 12][..]));
    batch.validate_records().expect("consistent");
}

// ---------------------------------------------------------------------------------
// Fuzz seeds (log/fuzz/seeds), written only on request.
// ---------------------------------------------------------------------------------

/// One section of a `log_recovery` fuzz input: `u32 BE length` then the bytes;
/// `u32::MAX` means the file is absent.
fn section(out: &mut Vec<u8>, file: Option<&Vec<u8>>) {
    match file {
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        Some(bytes) => {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// The `log_recovery` input layout (see `log/fuzz/fuzz_targets/log_recovery.rs`):
/// flags, the second segment's base offset, then sections: log, index, timeindex of
/// segment 0, the same of segment 1, `recovery.checkpoint`, and a producer snapshot
/// (`u64 BE` name offset, then a section).
fn recovery_input(
    files: &Files,
    second: Option<u64>,
    checkpoint: bool,
    snapshot: Option<u64>,
) -> Vec<u8> {
    let flags = second.is_some() as u8 | (checkpoint as u8) << 1 | (snapshot.is_some() as u8) << 2;
    let mut out = vec![flags];
    out.extend_from_slice(&second.unwrap_or(0).to_be_bytes());
    for base in std::iter::once(0).chain(second) {
        for suffix in [".log", ".index", ".timeindex"] {
            section(&mut out, files.get(&format!("{base:020}{suffix}")));
        }
    }
    if checkpoint {
        section(&mut out, files.get("recovery.checkpoint"));
    }
    if let Some(s) = snapshot {
        out.extend_from_slice(&s.to_be_bytes());
        section(&mut out, files.get(&format!("{s:020}.snapshot")));
    }
    out
}

/// A small log of several segments (of exactly two, rolled by hand, with `two`);
/// returns its files before and after close, and its segment base offsets.
fn seed_log(two: bool) -> (Files, Files, Vec<u64>) {
    let dir = MemDir::new();
    let mut config = LogConfig::default();
    config.segment_bytes = if two { 1 << 20 } else { 1024 };
    config.index_interval_bytes = 100;
    config.segment_ms = None;
    let (mut log, _) = Log::open(dir.clone(), config).expect("open");
    let mut sequences = BTreeMap::new();
    let mut rng = Rng(9);
    let count = if two { 10 } else { 24 };
    for b in 0..count {
        let records = (0..1 + b % 4)
            .map(|i| {
                let mut r = random_record(
                    &mut rng,
                    b * 10 + i,
                    T0 + (b * 7 % 5) as i64 * 10 - i as i64,
                );
                r.key = r.key.map(|k| k[..k.len().min(20)].to_vec());
                r.value = r.value.map(|v| v[..v.len().min(60)].to_vec());
                r
            })
            .collect();
        append_all(
            &mut log,
            vec![(records, (b % 3 == 0).then_some((1000, 0)))],
            &mut sequences,
        );
        if two && b == count / 2 {
            log.roll().expect("roll");
        }
    }
    let bases = log.segment_base_offsets();
    assert!(
        if two {
            bases.len() == 2
        } else {
            bases.len() >= 3
        },
        "{bases:?}"
    );
    let open_files = mem_files(&dir);
    log.close().expect("close");
    (open_files, mem_files(&dir), bases)
}

#[test]
fn write_fuzz_seeds() {
    if std::env::var_os("DSYS_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    write("batch_decoder", "golden", &golden_batch(42, 9));
    write("batch_decoder", "sarama_uncompressed", &SARAMA_UNCOMPRESSED);
    let edge = workload(5, 0);
    write(
        "batch_decoder",
        "nulls_and_headers",
        build(&edge[0].0, None).as_slice(),
    );
    write(
        "batch_decoder",
        "wide_timestamps",
        build(&edge[2].0, Some(GOLDEN_PRODUCER)).as_slice(),
    );
    let mut gzip_flag = golden_batch(0, 0);
    gzip_flag[22] = 1; // attributes: gzip (CRC now wrong, and records not gzip)
    write("batch_decoder", "bad_crc_gzip", &gzip_flag);

    let (open_files, files, bases) = seed_log(false);
    let base1 = bases[1];
    for (i, base) in bases.iter().enumerate() {
        let size = files[&format!("{base:020}.log")].len() as u64;
        let mut index = size.to_le_bytes().to_vec();
        index.extend_from_slice(&files[&format!("{base:020}.index")]);
        write("index_loader", &format!("offsets_{i}"), &index);
        let mut time = size.to_le_bytes().to_vec();
        time.extend_from_slice(&files[&format!("{base:020}.timeindex")]);
        write("index_loader", &format!("times_{i}"), &time);
    }
    write(
        "log_recovery",
        "one_segment",
        &recovery_input(&files, None, false, None),
    );
    write(
        "log_recovery",
        "two_segments",
        &recovery_input(&files, Some(base1), false, None),
    );
    write(
        "log_recovery",
        "two_segments_open",
        &recovery_input(&open_files, Some(base1), false, None),
    );
    // A clean shutdown of a log of exactly two segments, with its checkpoint and
    // producer snapshot.
    let (_, files, bases) = seed_log(true);
    let snapshot = files
        .keys()
        .filter_map(|n| parse_name(n, ".snapshot"))
        .max();
    write(
        "log_recovery",
        "clean_shutdown",
        &recovery_input(&files, Some(bases[1]), true, snapshot),
    );
    write("log_recovery", "empty", &[0]);

    // Compaction output: an emptied producer batch, a batch with a delete horizon.
    let dir = MemDir::new();
    let (log, _, _) = compacted_log(&dir);
    let bases = log.segment_base_offsets();
    let files = mem_files(&dir);
    let first = spec::decode_segment(&files[&format!("{:020}.log", bases[0])]).expect("decodes");
    let log_bytes = &files[&format!("{:020}.log", bases[0])];
    let (pos, empty) = &first[0];
    write(
        "batch_decoder",
        "empty_producer_batch",
        &log_bytes[*pos..pos + empty.size()],
    );
    let (pos, stamped) = &first[1];
    write(
        "batch_decoder",
        "delete_horizon",
        &log_bytes[*pos..pos + stamped.size()],
    );
    write(
        "log_recovery",
        "compacted",
        &recovery_input(&files, Some(bases[1]), false, None),
    );
}

// ---------------------------------------------------------------------------------
// Compaction output: KIP-534 delete horizons and the cleaner's empty batches.
// ---------------------------------------------------------------------------------

/// What compaction writes, read with the independent decoder: a batch kept for its
/// tombstone carries attribute bit 6 with the delete horizon in `baseTimestamp`, and
/// its records' timestamps still decode to what the producer sent; a producer's last
/// batch whose records were all superseded is a bare 61-byte header with
/// `recordsCount` 0 and `baseTimestamp` -1 that keeps its offsets, producer fields and
/// `maxTimestamp` (Kafka's `DefaultRecordBatch.writeEmptyHeader`); the indexes of the
/// rewritten segment are Kafka's.
#[test]
fn compacted_segments_decode_with_the_independent_decoder() {
    let dir = MemDir::new();
    let (mut log, cfg, now) = compacted_log(&dir);
    let old = T0 - 86_400_000;
    let segments = decode_dir(&mem_files(&dir));
    let batches: Vec<&spec::Batch> = segments[0].batches.iter().map(|(_, b)| b).collect();
    assert_eq!(batches.len(), 3, "{batches:#?}");
    let empty = batches[0];
    assert_eq!(
        (
            empty.base_offset,
            empty.last_offset_delta,
            empty.records_count
        ),
        (0, 1, 0)
    );
    assert_eq!(empty.batch_length, 49, "a bare header");
    assert_eq!(empty.partition_leader_epoch, 7);
    assert_eq!(empty.attributes, 0);
    assert_eq!(empty.base_timestamp, spec::NO_TIMESTAMP);
    assert_eq!(empty.max_timestamp, T0 + 3);
    assert_eq!(
        (empty.producer_id, empty.producer_epoch, empty.base_sequence),
        (5, 2, 10)
    );

    let stamped = batches[1];
    assert_eq!(stamped.attributes, spec::DELETE_HORIZON_FLAG);
    assert_eq!(
        stamped.delete_horizon(),
        Some(now + cfg.delete_retention_ms)
    );
    assert_eq!((stamped.base_offset, stamped.last_offset_delta), (2, 2));
    let records: Vec<(i32, i64, Option<&[u8]>)> = stamped
        .records
        .iter()
        .map(|r| {
            (
                r.offset_delta,
                stamped.base_timestamp.wrapping_add(r.timestamp_delta),
                r.value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        records,
        vec![(1, old, None), (2, T0 + 4, Some(&b"v2'"[..]))]
    );
    assert_eq!(stamped.max_timestamp, T0 + 4);
    assert_eq!(batches[2].attributes, 0, "no tombstone, no horizon");
    for seg in &segments[..segments.len() - 1] {
        check_indexes(seg, true);
    }
    // dsys-log reads the same.
    let read = log.read(0, 1 << 20).expect("read");
    assert_eq!(read[0].header().records_count, 0);
    assert!(read[1].header().has_delete_horizon());
    let tombstone = read[1].records().next().expect("a record").expect("valid");
    assert_eq!((tombstone.offset, tombstone.timestamp), (3, old));
    // Lookups by time skip the emptied batch, whose maxTimestamp has no record left.
    assert_eq!(log.offset_for_timestamp(T0 + 3).expect("lookup"), Some(4));
    assert_eq!(log.offset_for_timestamp(old).expect("lookup"), Some(3));

    // At the horizon the tombstone goes; the batch keeps its horizon, as Kafka's
    // cleaner keeps a batch's existing deleteHorizonMs.
    log.compact(now + cfg.delete_retention_ms).expect("compact");
    let segments = decode_dir(&mem_files(&dir));
    let stamped = &segments[0].batches[1].1;
    assert_eq!(stamped.records.len(), 1);
    assert_eq!(stamped.records[0].offset_delta, 2);
    assert_eq!(
        stamped.delete_horizon(),
        Some(now + cfg.delete_retention_ms)
    );
    assert_eq!(
        stamped
            .base_timestamp
            .wrapping_add(stamped.records[0].timestamp_delta),
        T0 + 4
    );
    for seg in &segments[..segments.len() - 1] {
        check_indexes(seg, true);
    }
}

/// A log of two segments whose first was compacted once at the returned `now`: a
/// producer's batch emptied (offsets 0..=1), a batch kept for its tombstone with an
/// old CreateTime (2..=4, the value at 2 superseded), a plain batch (5).
fn compacted_log(dir: &MemDir) -> (Log<MemDir>, LogConfig, i64) {
    let mut cfg = config();
    cfg.cleanup = dsys_log::CleanupPolicy::Compact;
    cfg.delete_retention_ms = 1_000;
    let (mut log, _) = Log::open(dir.clone(), cfg.clone()).expect("open");
    let producer = ProducerStamp {
        producer_id: 5,
        producer_epoch: 2,
        base_sequence: 10,
    };
    let old = T0 - 86_400_000;
    type Records<'a> = Vec<(i64, &'a [u8], Option<&'a [u8]>)>;
    let sent: [(Option<ProducerStamp>, Records<'_>); 3] = [
        (
            Some(producer),
            vec![(T0, b"k1", Some(b"v1")), (T0 + 3, b"k2", Some(b"v2"))],
        ),
        (
            None,
            vec![
                (T0 + 5, b"k3", Some(b"v3")),
                // A delete with an old CreateTime.
                (old, b"k1", None),
                (T0 + 4, b"k2", Some(b"v2'")),
            ],
        ),
        (None, vec![(T0 + 6, b"k3", Some(b"v3'"))]),
    ];
    for (stamp, records) in &sent {
        let mut b = BatchBuilder::new();
        if let Some(stamp) = stamp {
            b = b.producer(*stamp);
        }
        for (ts, k, v) in records {
            b.push(NewRecord::new(*ts, Some(k), *v));
        }
        log.append(b.finish().expect("records"), T0)
            .expect("append");
    }
    log.roll().expect("roll");
    let now = T0 + 10_000;
    log.compact(now).expect("compact");
    (log, cfg, now)
}
