//! How numbers and carts are printed, and the replica ids of section 3's scaling table.

use std::time::Duration;

use dsys_crdt::sim::Record;
use dsys_crdt::{GCounter, ORSet};

pub(super) fn views_read(counter: &GCounter<String>) -> i128 {
    i128::try_from(counter.value()).unwrap_or(i128::MAX)
}

/// `1,580`, `-1,234`.
pub(super) fn num(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `num` of a count.
pub(super) fn count(n: u64) -> String {
    num(i128::from(n))
}

/// `count` of a virtual time's whole milliseconds: `1,200`.
pub(super) fn millis(time: Duration) -> String {
    num(i128::try_from(time.as_millis()).unwrap_or(i128::MAX))
}

/// A read against the truth: `1,580`, or `1,710 (+130)`.
pub(super) fn against(read: i128, truth: i128) -> String {
    match read - truth {
        0 => num(read),
        off if off > 0 => format!("{} (+{})", num(read), num(off)),
        off => format!("{} ({})", num(read), num(off)),
    }
}

/// `book, pen`, or `(empty)`.
pub(super) fn cart_cell(items: &[String]) -> String {
    if items.is_empty() {
        "(empty)".to_owned()
    } else {
        items.join(", ")
    }
}

/// Replica ids `pop-0000`, `pop-0001`...: edge points of presence.
pub(super) fn pop(i: usize) -> String {
    format!("pop-{i:04}")
}

/// A record on a simulated disk: `incarnation 1: book, pen`.
pub(super) fn record_cell(record: &Record<ORSet<u64, String>>) -> String {
    format!(
        "incarnation {}: {}",
        record.incarnation,
        cart_cell(&record.state.iter().cloned().collect::<Vec<_>>())
    )
}
