//! Machinery: keys, ring positions drawn as degrees, and number formats.

use dsys_hashring::{KeyHash, TokenRange};

/// `user:0`, `user:1`, ... hashed once, as byte keys.
pub(super) fn user_keys(count: usize) -> Vec<KeyHash> {
    (0..count)
        .map(|i| KeyHash::of_bytes(format!("user:{i}").as_bytes()))
        .collect()
}

/// 2^64, the number of positions on the ring.
pub(super) const SPACE: f64 = 18_446_744_073_709_551_616.0;

/// Where `point` lies on the ring drawn as a 360-degree circle.
pub(super) fn angle(point: u64) -> f64 {
    point as f64 / SPACE * 360.0
}

/// The position at `degrees` on the ring drawn as a 360-degree circle.
pub(super) fn deg(degrees: u64) -> u64 {
    u64::try_from((u128::from(degrees) << 64) / 360).unwrap_or(u64::MAX)
}

/// `(90 deg, 135 deg]`: a range in whole degrees; a range ending at the top
/// of the ring ends at 360, not 0.
pub(super) fn arc(range: &TokenRange) -> String {
    let end = if range.end == 0 {
        360.0
    } else {
        angle(range.end)
    };
    format!("({:.0} deg, {end:.0} deg]", angle(range.start))
}

/// `12.3%`.
pub(super) fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// `1,000,000`.
pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
