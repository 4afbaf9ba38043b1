//! Record batch decoding of arbitrary bytes (a produce request, a damaged segment):
//! `BatchHeader::decode`, `RecordBatch::decode` with every record, and
//! `BatchBuf::from_bytes` never panic and agree with each other, and a batch
//! `from_bytes` accepts is stored by the log unchanged but for its base offset and
//! leader epoch.
#![no_main]

use bytes::{Bytes, BytesMut};
use dsys_log::{
    BatchBuf, BatchHeader, Compression, HEADER_LEN, Log, LogConfig, MAX_BATCH_LEN, MemDir,
    RecordBatch,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = BatchHeader::decode(data);
    if let Ok(h) = &header {
        assert!(h.total_len() >= HEADER_LEN);
        assert!(h.last_offset() >= h.base_offset);
    }

    let decoded = RecordBatch::decode(Bytes::copy_from_slice(data));
    if let Ok(batch) = &decoded {
        assert_eq!(Ok(*batch.header()), header);
        assert_eq!(&batch.as_bytes()[..], &data[..batch.len()]);
        let mut count = 0u64;
        for record in batch.records() {
            let Ok(record) = record else { break };
            assert!(record.offset >= batch.base_offset());
            count += 1;
        }
        assert!(count <= batch.header().records_count as u64);
        if batch.validate_records().is_ok() {
            assert_eq!(count, batch.header().records_count as u64);
            assert_eq!(batch.header().last_offset_delta as u64 + 1, count);
        }
    }

    let Ok(buf) = BatchBuf::from_bytes(BytesMut::from(data)) else {
        return;
    };
    assert_eq!(buf.as_slice(), data);
    let batch = decoded.expect("from_bytes accepted what decode refuses");
    assert_eq!(
        batch.len(),
        data.len(),
        "from_bytes accepted trailing bytes"
    );
    if batch.header().compression() == Compression::None {
        batch
            .validate_records()
            .expect("from_bytes accepted inconsistent records");
    }

    let dir = MemDir::new();
    let mut config = LogConfig::default();
    config.max_batch_bytes = MAX_BATCH_LEN;
    let (mut log, _) = Log::open(dir, config).expect("open an empty log");
    let appended = log.append(buf, 0).expect("append to an empty log");
    assert_eq!(appended.base_offset, 0);
    assert_eq!(
        appended.last_offset,
        batch.header().last_offset_delta as u64
    );
    let read = log.read(0, 1 << 20).expect("read back");
    assert_eq!(read.len(), 1);
    let stored = read[0].as_bytes();
    assert_eq!(stored.len(), data.len());
    assert_eq!(&stored[..8], &0i64.to_be_bytes(), "baseOffset");
    assert_eq!(&stored[8..12], &data[8..12], "batchLength");
    assert_eq!(&stored[12..16], &0i32.to_be_bytes(), "partitionLeaderEpoch");
    assert_eq!(&stored[16..], &data[16..], "bytes from magic on");
});
