//! Which pieces a peer has.

use std::fmt;

use bytes::Bytes;

/// A set of piece indices below a fixed piece count, stored as BEP 3's
/// bitfield: the high bit of the first byte is piece 0.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
}

/// A bitfield that does not fit the torrent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitfieldError {
    /// The wrong number of bytes for the piece count.
    #[error("bitfield of {found} bytes; {pieces} pieces need {expected}")]
    WrongLength {
        /// Bytes received.
        found: usize,
        /// Bytes needed.
        expected: usize,
        /// The piece count.
        pieces: u32,
    },
    /// Bits set past the last piece.
    #[error("bitfield has bits set past the last piece")]
    SpareBitsSet,
}

impl Bitfield {
    /// An empty set for `len` pieces.
    pub fn new(len: u32) -> Self {
        Bitfield {
            bits: vec![0; Self::bytes_for(len)],
            len,
        }
    }

    /// Every piece, for `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut field = Bitfield {
            bits: vec![0xff; Self::bytes_for(len)],
            len,
        };
        field.clear_spare_bits();
        field
    }

    /// The bytes a bitfield for `pieces` pieces takes.
    pub fn bytes_for(pieces: u32) -> usize {
        (pieces as usize).div_ceil(8)
    }

    /// A bitfield received from a peer, checked against the piece count.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = Self::bytes_for(len);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                found: bytes.len(),
                expected,
                pieces: len,
            });
        }
        if bytes
            .last()
            .is_some_and(|&last| last & !Self::last_byte_mask(len) != 0)
        {
            return Err(BitfieldError::SpareBitsSet);
        }
        Ok(Bitfield {
            bits: bytes.to_vec(),
            len,
        })
    }

    /// The bits of the last byte that stand for pieces.
    fn last_byte_mask(len: u32) -> u8 {
        let spare = (8 - len % 8) % 8;
        0xffu8.checked_shl(spare).unwrap_or(0)
    }

    fn clear_spare_bits(&mut self) {
        let mask = Self::last_byte_mask(self.len);
        if let Some(last) = self.bits.last_mut() {
            *last &= mask;
        }
    }

    /// The piece count.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True for a torrent of no pieces.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `piece` is in the set (false past the end).
    pub fn get(&self, piece: u32) -> bool {
        piece < self.len && self.bits[(piece / 8) as usize] & (0x80 >> (piece % 8)) != 0
    }

    /// Adds `piece`; returns false (and does nothing) past the end.
    pub fn set(&mut self, piece: u32) -> bool {
        if piece >= self.len {
            return false;
        }
        self.bits[(piece / 8) as usize] |= 0x80 >> (piece % 8);
        true
    }

    /// Removes `piece`.
    pub fn unset(&mut self, piece: u32) {
        if piece < self.len {
            self.bits[(piece / 8) as usize] &= !(0x80 >> (piece % 8));
        }
    }

    /// How many pieces are in the set.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// True when every piece is in the set.
    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    /// The pieces in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&p| self.get(p))
    }

    /// The pieces `other` has and `self` lacks: what we could ask them for.
    /// Empty if the two are for different piece counts.
    pub fn wanted_from<'a>(&'a self, other: &'a Bitfield) -> impl Iterator<Item = u32> + 'a {
        let same = self.len == other.len;
        self.bits
            .iter()
            .zip(&other.bits)
            .enumerate()
            .filter(move |_| same)
            .flat_map(|(i, (ours, theirs))| {
                let wanted = theirs & !ours;
                (0..8u32)
                    .filter(move |bit| wanted & (0x80 >> bit) != 0)
                    .map(move |bit| i as u32 * 8 + bit)
            })
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.bits)
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{} ", self.count(), self.len)?;
        for piece in 0..self.len.min(64) {
            f.write_str(if self.get(piece) { "1" } else { "0" })?;
        }
        if self.len > 64 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_numbered_from_the_high_bit() {
        let mut field = Bitfield::new(10);
        assert!(field.set(0) && field.set(9));
        assert!(!field.set(10));
        assert_eq!(field.to_bytes().as_ref(), [0x80, 0x40]);
        assert_eq!(field.iter().collect::<Vec<_>>(), [0, 9]);
        assert_eq!(field.count(), 2);
        field.unset(0);
        assert!(!field.get(0) && field.get(9) && !field.get(99));
    }

    #[test]
    fn received_bitfields_are_checked() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                found: 1,
                expected: 2,
                pieces: 10
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet)
        );
        let full = Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap();
        assert!(full.is_full());
        assert_eq!(full, Bitfield::full(10));
        assert_eq!(Bitfield::full(16).to_bytes().as_ref(), [0xff, 0xff]);
        assert!(Bitfield::from_bytes(&[], 0).unwrap().is_full());
    }

    #[test]
    fn wanted_is_theirs_minus_ours() {
        let ours = Bitfield::from_bytes(&[0b1010_0000, 0], 12).unwrap();
        let theirs = Bitfield::from_bytes(&[0b1110_0000, 0b1001_0000], 12).unwrap();
        assert_eq!(ours.wanted_from(&theirs).collect::<Vec<_>>(), [1, 8, 11]);
        assert_eq!(ours.wanted_from(&Bitfield::new(99)).count(), 0);
    }
}
