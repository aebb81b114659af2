//! Node ids, their XOR distance, and BEP 42's tie between an id and an IP.

use std::fmt;
use std::net::IpAddr;

use rand::Rng;

/// A 160-bit DHT key: a node's id, or an info-hash looked up as a target.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// A uniformly random id.
    pub fn random(rng: &mut impl Rng) -> NodeId {
        NodeId(rng.random())
    }

    /// An id that BEP 42 ties to `ip`: its first 21 bits come from a CRC32-C
    /// of the address, so a node cannot choose where in the key space it
    /// sits. Addresses BEP 42 exempts (loopback, private ranges) get a
    /// random id.
    pub fn secure(ip: IpAddr, rng: &mut impl Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        if let Some(crc) = secure_prefix(ip, id.0[19] & 7) {
            id.0[0] = (crc >> 24) as u8;
            id.0[1] = (crc >> 16) as u8;
            id.0[2] = ((crc >> 8) as u8 & 0xf8) | (id.0[2] & 7);
        }
        id
    }

    /// Whether this id is one BEP 42 allows for `ip`. Every id is allowed
    /// for an exempt address.
    pub fn is_secure_for(&self, ip: IpAddr) -> bool {
        match secure_prefix(ip, self.0[19] & 7) {
            None => true,
            Some(crc) => {
                self.0[0] == (crc >> 24) as u8
                    && self.0[1] == (crc >> 16) as u8
                    && self.0[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
            }
        }
    }

    /// The XOR distance to `other`, comparable as a big-endian number.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits this id shares with `other` (160 if equal).
    pub fn common_prefix(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// A random id that shares exactly `prefix` leading bits with `self`
    /// (for refreshing the bucket at that depth). `prefix` is below 160.
    pub fn random_at(&self, prefix: usize, rng: &mut impl Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        let prefix = prefix.min(159);
        for bit in 0..=prefix {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let ours = self.0[byte] & mask;
            let want = if bit == prefix { ours ^ mask } else { ours };
            id.0[byte] = (id.0[byte] & !mask) | want;
        }
        id
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl From<metainfo::InfoHash> for NodeId {
    fn from(hash: metainfo::InfoHash) -> NodeId {
        NodeId(hash.0)
    }
}

/// The XOR of two ids: smaller is closer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl Distance {
    /// Leading zero bits: the length of the two ids' common prefix.
    pub fn leading_zeros(&self) -> usize {
        let mut zeros = 0;
        for byte in self.0 {
            if byte != 0 {
                return zeros + byte.leading_zeros() as usize;
            }
            zeros += 8;
        }
        zeros
    }
}

/// Whether BEP 42 exempts `ip`: addresses that are not globally routed,
/// where a node cannot know the address others see.
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || seg & 0xfe00 == 0xfc00
                || seg & 0xffc0 == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_exempt(IpAddr::V4(v4)))
        }
    }
}

/// The CRC32-C of `ip` under BEP 42's mask, with the three random bits `r`;
/// `None` for an exempt address.
fn secure_prefix(ip: IpAddr, r: u8) -> Option<u32> {
    if is_exempt(ip) {
        return None;
    }
    let crc = match ip {
        IpAddr::V4(v4) => {
            let mut bytes = (u32::from(v4) & 0x030f_3fff).to_be_bytes();
            bytes[0] |= r << 5;
            crc32c::crc32c(&bytes)
        }
        IpAddr::V6(v6) => {
            let high = (u128::from(v6) >> 64) as u64;
            let mut bytes = (high & 0x0103_070f_1f3f_7fff).to_be_bytes();
            bytes[0] |= r << 5;
            crc32c::crc32c(&bytes)
        }
    };
    Some(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn id(hex: &str) -> NodeId {
        let mut out = [0; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        NodeId(out)
    }

    /// The examples of BEP 42's table: each id is secure for its IP, and
    /// flipping a bit of the prefix makes it insecure.
    #[test]
    fn bep42_examples() {
        for (ip, hex) in [
            ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
            ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
            ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
            ("84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
            ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            let good = id(hex);
            assert!(good.is_secure_for(ip), "{ip} {good}");
            let mut bad = good;
            bad.0[1] ^= 0x10;
            assert!(!bad.is_secure_for(ip), "{ip} {bad}");
        }
    }

    #[test]
    fn secure_ids_verify_and_exempt_addresses_take_any_id() {
        let mut rng = SmallRng::seed_from_u64(7);
        for ip in ["124.31.75.21", "2001:db8::1", "8.8.4.4"] {
            let ip: IpAddr = ip.parse().expect("ip");
            for _ in 0..50 {
                assert!(NodeId::secure(ip, &mut rng).is_secure_for(ip));
            }
        }
        for ip in ["127.0.0.5", "10.1.2.3", "192.168.1.1", "::1", "fd00::1"] {
            assert!(NodeId([0; 20]).is_secure_for(ip.parse().expect("ip")));
        }
    }

    #[test]
    fn distance_and_prefix() {
        let a = NodeId([0; 20]);
        let mut b = a;
        b.0[2] = 0x10;
        assert_eq!(a.common_prefix(&b), 19);
        assert_eq!(a.common_prefix(&a), 160);
        let mut c = a;
        c.0[0] = 0x80;
        assert!(a.distance(&b) < a.distance(&c));
    }

    #[test]
    fn random_at_shares_exactly_the_prefix() {
        let mut rng = SmallRng::seed_from_u64(1);
        let own = NodeId::random(&mut rng);
        for prefix in 0..160 {
            let other = own.random_at(prefix, &mut rng);
            assert_eq!(own.common_prefix(&other), prefix);
        }
    }
}
