//! Saga log records from arbitrary bytes (a damaged SQLite blob, a foreign
//! table): `SagaRecord::decode` never panics, a record it accepts re-encodes
//! to the same bytes (one encoding per record), and a log of decoded
//! records, recovered by an orchestrator, is refused with an error or
//! resumed without a panic.
//!
//! Input: a sequence of `len: u16 LE | saga: u8 | record bytes` frames.
#![no_main]

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, Orchestrator, Output, SagaDefinition, SagaId, SagaRecord, StepDefinition,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = SagaRecord::decode(data) {
        assert_eq!(rec.to_bytes().expect("a decoded record re-encodes"), data);
    }

    let definition = SagaDefinition::new("order")
        .step(StepDefinition::new("create_order"))
        .step(StepDefinition::new("deduct_inventory").without_compensation())
        .step(StepDefinition::new("process_payment"));
    let mut log = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let saga = SagaId(u64::from(rest[2]));
        rest = &rest[3..];
        let take = len.min(rest.len());
        if let Ok(rec) = SagaRecord::decode(&rest[..take]) {
            // Random bytes almost never carry the definition's fingerprint;
            // give every Started record the right one so that recovery goes
            // past the fingerprint check and the rest of the log is exercised.
            let rec = match rec {
                SagaRecord::Started { definition: name, input, .. } => SagaRecord::Started {
                    definition: name,
                    fingerprint: definition.fingerprint(),
                    input,
                },
                other => other,
            };
            log.push((saga, rec));
        }
        rest = &rest[take..];
    }
    let mut orch = Orchestrator::new(Config::default()).expect("the default config is valid");
    orch.define(definition.clone()).expect("a valid definition");
    let now = WallTime::from_millis(1_700_000_000_000);
    if orch.recover(log, now).is_err() {
        return;
    }
    for _ in 0..1000 {
        match orch.poll_output() {
            Some(Output::Persist { id, .. }) => orch.on_persisted(id),
            Some(Output::Invoke(i)) => {
                orch.handle_result(i.saga, i.step, i.kind, i.attempt, Ok(Bytes::new()), now)
            }
            Some(Output::Stuck { saga, .. }) => {
                let _ = orch.retry_stuck(saga, now);
            }
            Some(_) => {}
            None => match orch.poll_timeout() {
                Some(t) => orch.handle_timeout(t),
                None => break,
            },
        }
    }
});
