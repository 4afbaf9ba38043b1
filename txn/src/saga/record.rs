//! The saga log's records and their binary codec.
//!
//! The log is the saga's only durable state (Garcia-Molina & Salem §5, "the
//! saga log"): replaying a saga's records in order rebuilds exactly where it
//! stopped. A record is framed as
//!
//! ```text
//! crc32c(body): u32 LE | body = version: u8 (1) | tag: u8 | fields
//! ```
//!
//! with integers fixed-width little-endian, byte strings and UTF-8 strings as
//! a `u32` LE length then the bytes, booleans and enums as one byte with
//! only the listed values accepted, and no trailing bytes: every record has
//! exactly one encoding, and decoding never allocates more than the input's
//! length.

use bytes::Bytes;

use super::definition::{InvokeKind, MAX_NAME_LEN, MAX_STEPS, StepError};
use crate::WallTime;

/// The largest saga input or step output a record may hold (16 MiB).
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;
/// The longest error message or stuck reason a record may hold (64 KiB).
pub const MAX_MESSAGE_LEN: usize = 64 << 10;

const VERSION: u8 = 1;

/// How a finished saga ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step's action succeeded.
    Completed,
    /// Step `failed_step`'s action failed with `error`; every earlier step
    /// (and the failed step itself if it may have taken effect, see
    /// [`SagaRecord::StepFailed`]) was compensated, by the saga or by an
    /// operator.
    Compensated {
        /// The step whose action failed (0-based).
        failed_step: usize,
        /// Its last error.
        error: StepError,
    },
}

/// One entry of a saga's durable log (Garcia-Molina & Salem §5: replaying a
/// saga's records in order rebuilds exactly where it stopped).
///
/// Binary form ([`encode`](Self::encode), [`decode`](Self::decode)):
/// `crc32c(body): u32 LE | body`, where the body is a version byte (1), a
/// tag byte and the fields: integers fixed-width little-endian, byte
/// strings and UTF-8 strings as a `u32` LE length then the bytes (bounded
/// by [`MAX_PAYLOAD_LEN`], [`MAX_MESSAGE_LEN`] or
/// [`MAX_NAME_LEN`](super::MAX_NAME_LEN)), booleans and enums as one byte
/// with only the listed values accepted, and no trailing bytes. Every
/// record has exactly one encoding; decoding never allocates more than
/// the input's length. The orchestrator emits them in
/// [`Output::Persist`](super::Output::Persist); [`Orchestrator::recover`]
/// replays them. Steps are 0-based indexes into the definition.
///
/// [`Orchestrator::recover`]: super::Orchestrator::recover
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SagaRecord {
    /// The saga was started.
    Started {
        /// The definition's name.
        definition: String,
        /// The definition's [`fingerprint`](super::SagaDefinition::fingerprint)
        /// when the saga started: recovery refuses the saga if it changed.
        fingerprint: u64,
        /// The saga's input, handed to every step.
        input: Bytes,
    },
    /// An attempt of a step's action or compensation was scheduled. Durable
    /// before the attempt is invoked, so a crash never loses the count of
    /// attempts, nor the start of the schedule-to-close clock.
    AttemptStarted {
        /// The step.
        step: usize,
        /// Action or compensation.
        kind: InvokeKind,
        /// 1-based, increasing across operator retries.
        attempt: u32,
        /// When it was scheduled.
        at: WallTime,
    },
    /// An attempt failed and will be retried at `retry_at`.
    AttemptFailed {
        /// The step.
        step: usize,
        /// Action or compensation.
        kind: InvokeKind,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: StepError,
        /// When the next attempt is due.
        retry_at: WallTime,
    },
    /// A step's action succeeded with `output`.
    StepCompleted {
        /// The step.
        step: usize,
        /// Its output, handed to later steps and to its compensation.
        output: Bytes,
    },
    /// A step's action failed for good; compensation starts.
    StepFailed {
        /// The step.
        step: usize,
        /// Its last error.
        error: StepError,
        /// Whether its effect may exist, so its own compensation runs too:
        /// true unless the step itself answered a non-retryable error (its
        /// final answer for the idempotency key) and no attempt's outcome
        /// was unknown. After a timeout, an unusable output or a retryable
        /// error, an earlier delivery of the same key (an attempt that
        /// timed out, or one re-sent after a crash) may still land.
        compensate_failed_step: bool,
    },
    /// A step's compensation succeeded.
    CompensationCompleted {
        /// The step.
        step: usize,
    },
    /// A step's compensation exhausted its policy: the saga waits for an
    /// operator.
    Stuck {
        /// The step.
        step: usize,
        /// The last error, for the operator.
        reason: String,
    },
    /// An operator asked to retry the stuck compensation with a fresh policy.
    OperatorRetry {
        /// When.
        at: WallTime,
    },
    /// An operator compensated the stuck step by hand.
    Resolved {
        /// The step.
        step: usize,
    },
    /// The saga ended; its records may now be forgotten.
    Finished {
        /// How.
        outcome: Outcome,
    },
}

/// Why bytes are not a valid [`SagaRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("record truncated")]
    Truncated,
    /// The checksum does not match: a torn or corrupted record.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the record.
        stored: u32,
        /// The checksum of the body.
        computed: u32,
    },
    /// An unknown format version.
    #[error("unknown record version {0}")]
    Version(u8),
    /// An unknown record tag.
    #[error("unknown record tag {0}")]
    Tag(u8),
    /// A one-byte enum or boolean with a value outside its set.
    #[error("invalid {field} byte {value}")]
    BadByte {
        /// Which field.
        field: &'static str,
        /// The byte.
        value: u8,
    },
    /// A length beyond its field's bound.
    #[error("{field} length {len} exceeds {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The stored length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A step index at or beyond [`MAX_STEPS`].
    #[error("step {0} out of range")]
    Step(u32),
    /// A string that is not UTF-8.
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    /// Bytes after the record's last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Why a record cannot be encoded: a field beyond its bound. The
/// orchestrator never emits such a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field is longer than the codec accepts.
    #[error("{field} length {len} exceeds {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A step index at or beyond [`MAX_STEPS`].
    #[error("step {0} out of range")]
    Step(usize),
}

impl SagaRecord {
    /// Appends the record's framed encoding to `buf`. On error `buf` is
    /// unchanged.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.extend_from_slice(&[0; 4]);
        if let Err(e) = self.encode_body(buf) {
            buf.truncate(start);
            return Err(e);
        }
        let crc = crc32c::crc32c(&buf[start + 4..]);
        buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// The record's framed encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    fn encode_body(&self, b: &mut Vec<u8>) -> Result<(), EncodeError> {
        b.push(VERSION);
        match self {
            Self::Started {
                definition,
                fingerprint,
                input,
            } => {
                b.push(1);
                put_str(b, "definition", definition, MAX_NAME_LEN)?;
                b.extend_from_slice(&fingerprint.to_le_bytes());
                put_bytes(b, "input", input, MAX_PAYLOAD_LEN)?;
            }
            Self::AttemptStarted {
                step,
                kind,
                attempt,
                at,
            } => {
                b.push(2);
                put_step(b, *step)?;
                b.push(kind_byte(*kind));
                b.extend_from_slice(&attempt.to_le_bytes());
                b.extend_from_slice(&at.as_nanos().to_le_bytes());
            }
            Self::AttemptFailed {
                step,
                kind,
                attempt,
                error,
                retry_at,
            } => {
                b.push(3);
                put_step(b, *step)?;
                b.push(kind_byte(*kind));
                b.extend_from_slice(&attempt.to_le_bytes());
                put_error(b, error)?;
                b.extend_from_slice(&retry_at.as_nanos().to_le_bytes());
            }
            Self::StepCompleted { step, output } => {
                b.push(4);
                put_step(b, *step)?;
                put_bytes(b, "output", output, MAX_PAYLOAD_LEN)?;
            }
            Self::StepFailed {
                step,
                error,
                compensate_failed_step,
            } => {
                b.push(5);
                put_step(b, *step)?;
                put_error(b, error)?;
                b.push(u8::from(*compensate_failed_step));
            }
            Self::CompensationCompleted { step } => {
                b.push(6);
                put_step(b, *step)?;
            }
            Self::Stuck { step, reason } => {
                b.push(7);
                put_step(b, *step)?;
                put_str(b, "reason", reason, MAX_MESSAGE_LEN)?;
            }
            Self::OperatorRetry { at } => {
                b.push(8);
                b.extend_from_slice(&at.as_nanos().to_le_bytes());
            }
            Self::Resolved { step } => {
                b.push(9);
                put_step(b, *step)?;
            }
            Self::Finished { outcome } => {
                b.push(10);
                match outcome {
                    Outcome::Completed => b.push(0),
                    Outcome::Compensated { failed_step, error } => {
                        b.push(1);
                        put_step(b, *failed_step)?;
                        put_error(b, error)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes one framed record that spans all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: bytes };
        let stored = r.u32()?;
        let computed = crc32c::crc32c(r.buf);
        if stored != computed {
            return Err(DecodeError::Checksum { stored, computed });
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let rec = match r.u8()? {
            1 => Self::Started {
                definition: r.string("definition", MAX_NAME_LEN)?,
                fingerprint: r.u64()?,
                input: Bytes::copy_from_slice(r.bytes("input", MAX_PAYLOAD_LEN)?),
            },
            2 => Self::AttemptStarted {
                step: r.step()?,
                kind: r.kind()?,
                attempt: r.u32()?,
                at: WallTime::from_nanos(r.u64()?),
            },
            3 => Self::AttemptFailed {
                step: r.step()?,
                kind: r.kind()?,
                attempt: r.u32()?,
                error: r.error()?,
                retry_at: WallTime::from_nanos(r.u64()?),
            },
            4 => Self::StepCompleted {
                step: r.step()?,
                output: Bytes::copy_from_slice(r.bytes("output", MAX_PAYLOAD_LEN)?),
            },
            5 => Self::StepFailed {
                step: r.step()?,
                error: r.error()?,
                compensate_failed_step: r.bool("compensate_failed_step")?,
            },
            6 => Self::CompensationCompleted { step: r.step()? },
            7 => Self::Stuck {
                step: r.step()?,
                reason: r.string("reason", MAX_MESSAGE_LEN)?,
            },
            8 => Self::OperatorRetry {
                at: WallTime::from_nanos(r.u64()?),
            },
            9 => Self::Resolved { step: r.step()? },
            10 => Self::Finished {
                outcome: match r.u8()? {
                    0 => Outcome::Completed,
                    1 => Outcome::Compensated {
                        failed_step: r.step()?,
                        error: r.error()?,
                    },
                    value => {
                        return Err(DecodeError::BadByte {
                            field: "outcome",
                            value,
                        });
                    }
                },
            },
            tag => return Err(DecodeError::Tag(tag)),
        };
        if !r.buf.is_empty() {
            return Err(DecodeError::Trailing(r.buf.len()));
        }
        Ok(rec)
    }
}

fn kind_byte(kind: InvokeKind) -> u8 {
    match kind {
        InvokeKind::Action => 0,
        InvokeKind::Compensation => 1,
    }
}

fn put_step(b: &mut Vec<u8>, step: usize) -> Result<(), EncodeError> {
    if step >= MAX_STEPS {
        return Err(EncodeError::Step(step));
    }
    let s = u32::try_from(step).map_err(|_| EncodeError::Step(step))?;
    b.extend_from_slice(&s.to_le_bytes());
    Ok(())
}

fn put_bytes(
    b: &mut Vec<u8>,
    field: &'static str,
    v: &[u8],
    max: usize,
) -> Result<(), EncodeError> {
    if v.len() > max {
        return Err(EncodeError::TooLong {
            field,
            len: v.len(),
            max,
        });
    }
    let len = u32::try_from(v.len()).map_err(|_| EncodeError::TooLong {
        field,
        len: v.len(),
        max,
    })?;
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(v);
    Ok(())
}

fn put_str(b: &mut Vec<u8>, field: &'static str, v: &str, max: usize) -> Result<(), EncodeError> {
    put_bytes(b, field, v.as_bytes(), max)
}

fn put_error(b: &mut Vec<u8>, e: &StepError) -> Result<(), EncodeError> {
    put_str(b, "error kind", &e.kind, MAX_NAME_LEN)?;
    put_str(b, "error message", &e.message, MAX_MESSAGE_LEN)?;
    b.push(u8::from(e.retryable));
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::BadByte { field, value }),
        }
    }

    fn kind(&mut self) -> Result<InvokeKind, DecodeError> {
        match self.u8()? {
            0 => Ok(InvokeKind::Action),
            1 => Ok(InvokeKind::Compensation),
            value => Err(DecodeError::BadByte {
                field: "kind",
                value,
            }),
        }
    }

    fn step(&mut self) -> Result<usize, DecodeError> {
        let s = self.u32()?;
        match usize::try_from(s) {
            Ok(step) if step < MAX_STEPS => Ok(step),
            _ => Err(DecodeError::Step(s)),
        }
    }

    fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len)
    }

    fn string(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let b = self.bytes(field, max)?;
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8(field))
    }

    fn error(&mut self) -> Result<StepError, DecodeError> {
        Ok(StepError {
            kind: self.string("error kind", MAX_NAME_LEN)?,
            message: self.string("error message", MAX_MESSAGE_LEN)?,
            retryable: self.bool("retryable")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn samples() -> Vec<SagaRecord> {
        let err = StepError::retryable("timeout", "slow ✓");
        vec![
            SagaRecord::Started {
                definition: "order".into(),
                fingerprint: u64::MAX - 1,
                input: Bytes::from_static(b"in"),
            },
            SagaRecord::AttemptStarted {
                step: 2,
                kind: InvokeKind::Compensation,
                attempt: 7,
                at: WallTime::from_nanos(u64::MAX),
            },
            SagaRecord::AttemptFailed {
                step: 0,
                kind: InvokeKind::Action,
                attempt: 1,
                error: err.clone(),
                retry_at: WallTime::from_millis(5),
            },
            SagaRecord::StepCompleted {
                step: 1023,
                output: Bytes::new(),
            },
            SagaRecord::StepFailed {
                step: 3,
                error: err.clone(),
                compensate_failed_step: true,
            },
            SagaRecord::CompensationCompleted { step: 1 },
            SagaRecord::Stuck {
                step: 1,
                reason: "no".into(),
            },
            SagaRecord::OperatorRetry {
                at: WallTime::from_millis(9),
            },
            SagaRecord::Resolved { step: 0 },
            SagaRecord::Finished {
                outcome: Outcome::Completed,
            },
            SagaRecord::Finished {
                outcome: Outcome::Compensated {
                    failed_step: 2,
                    error: err,
                },
            },
        ]
    }

    #[test]
    fn round_trips_and_rejects_every_truncation_and_bit_flip() {
        for rec in samples() {
            let bytes = rec.to_bytes().unwrap();
            assert_eq!(SagaRecord::decode(&bytes).unwrap(), rec);
            for cut in 0..bytes.len() {
                assert!(
                    SagaRecord::decode(&bytes[..cut]).is_err(),
                    "{rec:?} cut {cut}"
                );
            }
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x10;
                assert!(SagaRecord::decode(&b).is_err(), "{rec:?} flip {i}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(SagaRecord::decode(&long).is_err());
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn error() -> impl Strategy<Value = StepError> {
            (".{0,20}", ".{0,40}", any::<bool>()).prop_map(|(kind, message, retryable)| StepError {
                kind,
                message,
                retryable,
            })
        }

        fn kind() -> impl Strategy<Value = InvokeKind> {
            prop_oneof![Just(InvokeKind::Action), Just(InvokeKind::Compensation)]
        }

        fn record() -> impl Strategy<Value = SagaRecord> {
            let step = 0..MAX_STEPS;
            let at = any::<u64>().prop_map(WallTime::from_nanos);
            let bytes = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
            prop_oneof![
                (".{0,30}", any::<u64>(), bytes.clone()).prop_map(
                    |(definition, fingerprint, input)| SagaRecord::Started {
                        definition,
                        fingerprint,
                        input
                    }
                ),
                (step.clone(), kind(), any::<u32>(), at.clone()).prop_map(
                    |(step, kind, attempt, at)| SagaRecord::AttemptStarted {
                        step,
                        kind,
                        attempt,
                        at
                    }
                ),
                (step.clone(), kind(), any::<u32>(), error(), at.clone()).prop_map(
                    |(step, kind, attempt, error, retry_at)| SagaRecord::AttemptFailed {
                        step,
                        kind,
                        attempt,
                        error,
                        retry_at
                    }
                ),
                (step.clone(), bytes)
                    .prop_map(|(step, output)| SagaRecord::StepCompleted { step, output }),
                (step.clone(), error(), any::<bool>()).prop_map(|(step, error, c)| {
                    SagaRecord::StepFailed {
                        step,
                        error,
                        compensate_failed_step: c,
                    }
                }),
                step.clone()
                    .prop_map(|step| SagaRecord::CompensationCompleted { step }),
                (step.clone(), ".{0,50}")
                    .prop_map(|(step, reason)| SagaRecord::Stuck { step, reason }),
                at.prop_map(|at| SagaRecord::OperatorRetry { at }),
                step.clone().prop_map(|step| SagaRecord::Resolved { step }),
                Just(SagaRecord::Finished {
                    outcome: Outcome::Completed
                }),
                (step, error()).prop_map(|(failed_step, error)| SagaRecord::Finished {
                    outcome: Outcome::Compensated { failed_step, error }
                }),
            ]
        }

        proptest! {
            #[test]
            fn every_record_round_trips(rec in record()) {
                let bytes = rec.to_bytes().unwrap();
                prop_assert_eq!(SagaRecord::decode(&bytes).unwrap(), rec);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
                let _ = SagaRecord::decode(&bytes);
            }
        }
    }

    #[test]
    fn refuses_oversized_fields() {
        let rec = SagaRecord::StepCompleted {
            step: MAX_STEPS,
            output: Bytes::new(),
        };
        assert_eq!(rec.to_bytes(), Err(EncodeError::Step(MAX_STEPS)));
        let rec = SagaRecord::Stuck {
            step: 0,
            reason: "x".repeat(MAX_MESSAGE_LEN + 1),
        };
        let mut buf = vec![1, 2];
        assert!(rec.encode(&mut buf).is_err());
        assert_eq!(buf, [1, 2]);
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Started record claiming a 4 GiB definition name.
        let mut body = vec![VERSION, 1];
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut rec = crc32c::crc32c(&body).to_le_bytes().to_vec();
        rec.extend_from_slice(&body);
        assert!(matches!(
            SagaRecord::decode(&rec),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
