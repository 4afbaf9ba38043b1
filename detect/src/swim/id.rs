//! Node identities: the bound set every id satisfies ([`NodeId`]) and the wire codec it
//! carries ([`IdCodec`]), with implementations for the usual id types.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::wire::{DecodeError, get_bytes, get_u8, get_u32, get_uvarint, put_uvarint};

/// Longest identity accepted by the decoders for variable-length ids (`String`), in
/// bytes.
pub const MAX_ID_LEN: usize = 255;

/// A node identity: the suite's bound set (`Clone + Eq + Ord + Hash + Debug`) plus the
/// wire codec, [`IdCodec`], since SWIM writes ids into every packet.
///
/// Never implemented by hand: the blanket implementation covers every type with those
/// bounds, so implementing [`IdCodec`] for your own id type (a UUID, a name plus a
/// generation) is all it takes. `u32`, `u64`, `u128`, `String` and [`SocketAddr`] come
/// with it.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug + IdCodec {}

impl<T: Clone + Eq + Ord + Hash + Debug + IdCodec> NodeId for T {}

/// How a node identity travels in packets.
///
/// Implemented for `u32`, `u64`, `u128`, `String` and [`SocketAddr`]; implement it for
/// your own id type with a compact, prefix-free encoding. `decode` must consume exactly
/// what `encode` wrote and must reject, not panic on, any other input, including an
/// encoding longer than [`MAX_ENCODED_LEN`](Self::MAX_ENCODED_LEN).
pub trait IdCodec: Sized {
    /// The longest encoding `encode` writes and `decode` accepts, in bytes. The
    /// smallest valid [`SwimConfig::max_packet_size`](crate::SwimConfig::max_packet_size)
    /// is sized from it ([`SwimConfig::min_packet_size`](crate::SwimConfig::min_packet_size)).
    /// An id longer than declared never makes a packet exceed `max_packet_size`: what
    /// does not fit is not sent, and is counted in
    /// [`SwimCounters`](crate::SwimCounters)' `oversized_packets` and
    /// `oversized_updates`.
    const MAX_ENCODED_LEN: usize;
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one id from the front of `input` and advances it.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid id of this type ([`DecodeError::NodeId`], or
    /// [`DecodeError::Truncated`] / [`DecodeError::Varint`] for a broken length or
    /// number); `input` may have been advanced.
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

impl IdCodec for u32 {
    const MAX_ENCODED_LEN: usize = 5;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, u64::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_u32(input)
    }
}

impl IdCodec for u64 {
    const MAX_ENCODED_LEN: usize = 10;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, *self);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_uvarint(input)
    }
}

impl IdCodec for u128 {
    const MAX_ENCODED_LEN: usize = 16;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let b = get_bytes(input, 16)?;
        Ok(u128::from_be_bytes(b.try_into().expect("16 bytes")))
    }
}

impl IdCodec for String {
    /// A 2-byte length and up to [`MAX_ID_LEN`] bytes.
    const MAX_ENCODED_LEN: usize = 2 + MAX_ID_LEN;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_uvarint(input)?;
        if len > MAX_ID_LEN as u64 {
            return Err(DecodeError::NodeId);
        }
        let b = get_bytes(input, len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NodeId)
    }
}

impl IdCodec for SocketAddr {
    /// A tag, an IPv6 address and a port.
    const MAX_ENCODED_LEN: usize = 1 + 16 + 2;
    fn encode(&self, out: &mut Vec<u8>) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.port().to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let ip = match get_u8(input)? {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(get_bytes(input, 4)?).expect("4 bytes"),
            )),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(get_bytes(input, 16)?).expect("16 bytes"),
            )),
            _ => return Err(DecodeError::NodeId),
        };
        let port = u16::from_be_bytes(get_bytes(input, 2)?.try_into().expect("2 bytes"));
        Ok(SocketAddr::new(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        fn rt<N: NodeId>(n: N) {
            let mut out = Vec::new();
            n.encode(&mut out);
            let mut s = &out[..];
            assert_eq!(N::decode(&mut s).unwrap(), n);
            assert!(s.is_empty());
        }
        rt(0u64);
        rt(u64::MAX);
        rt(u128::MAX - 5);
        rt(String::from("node-a"));
        rt("10.0.0.1:7946".parse::<SocketAddr>().unwrap());
        rt("[::1]:7946".parse::<SocketAddr>().unwrap());
        fn longest<N: NodeId>(n: N) {
            let mut out = Vec::new();
            n.encode(&mut out);
            assert_eq!(out.len(), N::MAX_ENCODED_LEN, "{n:?}");
        }
        longest(u32::MAX);
        longest(u64::MAX);
        longest(u128::MAX);
        longest("x".repeat(MAX_ID_LEN));
        longest(
            "[ffff::ffff]:65535"
                .parse::<SocketAddr>()
                .expect("an address"),
        );
        let mut long = Vec::new();
        "x".repeat(MAX_ID_LEN + 1).encode(&mut long);
        assert_eq!(String::decode(&mut &long[..]), Err(DecodeError::NodeId));
    }
}
