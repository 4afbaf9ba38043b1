//! The stable hash behind every placement: [`KeyHash`] documents it.

use std::hash::{Hash, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the key hash (an arbitrary constant, fixed forever).
pub const KEY_SEED: u64 = 0x6473_7973_2d68_7231; // "dsys-hr1"

/// Seed of node-id hashes (vnode tokens, rendezvous scores, Maglev
/// permutations derive from it).
pub const NODE_SEED: u64 = 0x6473_7973_2d6e_6431; // "dsys-nd1"

/// A key's 64-bit position in the hash space.
///
/// Computing it once and passing it to several lookups (primary, preference
/// list, another placement) saves rehashing the key.
///
/// # The hash behind every placement
///
/// A placement is only useful if every process that computes it agrees: the
/// client that routes a request, the node that stores the key, and the same
/// node after an upgrade. So nothing here uses a randomly keyed hasher
/// (`std`'s `RandomState`) or a hasher whose output may change between Rust
/// releases (`DefaultHasher`). Every position is **XXH3-64** (the frozen
/// xxHash 0.8 specification) with seed [`KEY_SEED`], computed by the
/// `xxhash-rust` crate:
///
/// * a byte key hashes its bytes: `xxh3_64_with_seed(bytes, KEY_SEED)`;
/// * a [`Hash`] key folds the writes its `Hash` impl makes, in order: starting
///   from `h = KEY_SEED`, each write of bytes `b` sets
///   `h = xxh3_64_with_seed(b, h)`. Integers are written little-endian and
///   `usize`/`isize` widened to 64 bits, so the result is the same on every
///   platform. Hashing each write where it happens, instead of collecting
///   the bytes first, keeps a short key's position at a few nanoseconds. A
///   key that makes a single write (an integer) lands where its bytes do
///   with [`KeyHash::of_bytes`]; a `&str` writes its bytes and then a `0xff`
///   terminator, so `"a"` and `b"a"` land in different places (pick one form
///   per keyspace). `std` does not promise that its own `Hash` impls write the
///   same bytes forever; for positions you persist across compiler upgrades,
///   prefer byte keys.
///
/// The `golden_vectors` test pins these values: a change to any of them is a
/// breaking change to every deployed placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// The position of a byte key: XXH3-64 of the bytes with [`KEY_SEED`].
    #[inline]
    #[must_use]
    pub fn of_bytes(key: &[u8]) -> Self {
        KeyHash(xxh3_64_with_seed(key, KEY_SEED))
    }

    /// The position of any [`Hash`] key (see the type docs for what is
    /// hashed).
    #[inline]
    #[must_use]
    pub fn of<K: Hash + ?Sized>(key: &K) -> Self {
        KeyHash(stable_hash(key, KEY_SEED))
    }
}

/// The XXH3 fold of what `value`'s [`Hash`] impl writes (module docs),
/// platform-independent.
#[inline]
pub(crate) fn stable_hash<K: Hash + ?Sized>(value: &K, seed: u64) -> u64 {
    let mut hasher = StableHasher { state: seed };
    value.hash(&mut hasher);
    hasher.state
}

/// The 64-bit identity of a node id, from which its vnode tokens and scores
/// are derived.
#[inline]
pub(crate) fn node_hash<N: Hash + ?Sized>(node: &N) -> u64 {
    stable_hash(node, NODE_SEED)
}

/// The position of a node's `index`-th derived point (vnode token, probe):
/// XXH3-64 of `node_hash` and `index` as 16 little-endian bytes.
#[inline]
pub(crate) fn derived_point(node_hash: u64, index: u64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&node_hash.to_le_bytes());
    bytes[8..].copy_from_slice(&index.to_le_bytes());
    xxh3_64_with_seed(&bytes, NODE_SEED)
}

/// A cheap, well-mixed combination of two 64-bit hashes (the `wymix` /
/// `folded multiply` finalizer: the 128-bit product folded to 64 bits).
/// Used where a score must be computed per (key, node) pair at lookup time.
#[inline]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let product = u128::from(a ^ 0x2d35_8dcc_aa6c_78a5) * u128::from(b ^ 0x8bb8_4b93_962e_acc9);
    let folded = (product as u64) ^ ((product >> 64) as u64);
    // One more multiply-xorshift round so that nearby inputs diverge in all bits.
    let x = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 32)
}

/// Folds each write of a `Hash` impl into an XXH3 chain, with integers
/// normalised to little-endian and 64-bit `usize`.
struct StableHasher {
    state: u64,
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.state
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.state = xxh3_64_with_seed(bytes, self.state);
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as i64 as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned positions. If this test fails, every deployed placement would
    /// move: that is a breaking change, not a test to update.
    #[test]
    fn golden_vectors() {
        assert_eq!(KeyHash::of_bytes(b"").0, xxh3_64_with_seed(b"", KEY_SEED));
        let pinned: [(&[u8], u64); 4] = [
            (b"user:1001", GOLDEN[0]),
            (b"order:5555", GOLDEN[1]),
            (b"product:abc", GOLDEN[2]),
            (b"session:xyz", GOLDEN[3]),
        ];
        for (key, want) in pinned {
            assert_eq!(
                KeyHash::of_bytes(key).0,
                want,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
        assert_eq!(KeyHash::of("user:1001").0, GOLDEN[4]);
        assert_eq!(KeyHash::of(&1001u64).0, GOLDEN[5]);
        assert_eq!(node_hash("cassandra-node-0"), GOLDEN[6]);
        assert_eq!(derived_point(node_hash("cassandra-node-0"), 7), GOLDEN[7]);
    }

    const GOLDEN: [u64; 8] = [
        0x518b_10b0_8a12_8994,
        0x3211_5815_4dd0_7769,
        0x40f7_ea9d_4260_1c49,
        0x066a_a020_316f_0652,
        0x7298_7d76_0cee_bb2b,
        0x7aa5_9d0d_bae9_5048,
        0x6021_2d64_f514_1148,
        0xa69c_356e_1953_0211,
    ];

    /// The hashing crate implements XXH3 as specified: the reference
    /// implementation's value for the empty input with seed 0 (xxHash's
    /// sanity-check tables).
    #[test]
    fn xxh3_matches_the_reference_implementation() {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2d06_8005_38d3_94c2);
    }

    #[test]
    fn integers_hash_as_little_endian_and_usize_as_u64() {
        assert_eq!(KeyHash::of(&7u64), KeyHash::of_bytes(&7u64.to_le_bytes()));
        assert_eq!(KeyHash::of(&7usize), KeyHash::of(&7u64));
        assert_eq!(KeyHash::of(&-1isize), KeyHash::of(&-1i64));
        assert_eq!(KeyHash::of(&0x0102u16), KeyHash::of_bytes(&[2, 1]));
    }

    #[test]
    fn str_keys_fold_their_bytes_then_a_terminator() {
        let fold = |s: &str| xxh3_64_with_seed(&[0xff], xxh3_64_with_seed(s.as_bytes(), KEY_SEED));
        assert_eq!(KeyHash::of("abc").0, fold("abc"));
        assert_eq!(KeyHash::of(&"abc".to_string()).0, fold("abc"));
        assert_eq!(KeyHash::of("").0, fold(""));
        let long = "k".repeat(1000);
        assert_eq!(KeyHash::of(long.as_str()).0, fold(&long));
        assert_ne!(KeyHash::of("abc"), KeyHash::of_bytes(b"abc"));
        // A tuple folds its fields' writes in order.
        let pair = xxh3_64_with_seed(
            &2u32.to_le_bytes(),
            xxh3_64_with_seed(&1u32.to_le_bytes(), KEY_SEED),
        );
        assert_eq!(KeyHash::of(&(1u32, 2u32)).0, pair);
    }

    #[test]
    fn mix_spreads_neighbouring_inputs() {
        let a = mix(1, 2);
        let b = mix(1, 3);
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
    }
}
