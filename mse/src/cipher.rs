//! The RC4 streams: one key per direction, derived from the shared secret
//! and SKEY (the torrent's info-hash), the first 1,024 bytes of each
//! stream thrown away.

use rc4::{KeyInit as _, Rc4, StreamCipher as _};

use crate::dh::KEY_LEN;

/// Keystream bytes discarded before the first byte is ciphered.
const DISCARD: usize = 1024;

/// One direction's RC4 stream. Ciphering and deciphering are the same
/// operation.
pub struct Cipher(Rc4);

impl Cipher {
    fn new(key: &[u8; 20]) -> Cipher {
        let mut rc4 = Rc4::new_from_slice(key).expect("a 20-byte key is within RC4's 1 to 256");
        let mut discard = [0u8; DISCARD];
        rc4.apply_keystream(&mut discard);
        Cipher(rc4)
    }

    /// Ciphers (or deciphers) `data` in place, moving the stream on.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(RC4)")
    }
}

/// SHA-1 of the parts one after the other.
pub(crate) fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut hash = sha1_smol::Sha1::new();
    for part in parts {
        hash.update(part);
    }
    hash.digest().bytes()
}

/// The initiator's stream (`keyA`) and the responder's (`keyB`).
pub(crate) fn streams(secret: &[u8; KEY_LEN], skey: &[u8; 20]) -> (Cipher, Cipher) {
    (
        Cipher::new(&sha1(&[b"keyA", secret, skey])),
        Cipher::new(&sha1(&[b"keyB", secret, skey])),
    )
}

/// `HASH('req2', SKEY)`: what an initiator's `req2 xor req3` reveals to a
/// responder that knows the torrent. A responder keeps these for its
/// torrents, to find which one an initiator wants.
pub fn req2(skey: &[u8; 20]) -> [u8; 20] {
    sha1(&[b"req2", skey])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_kilobyte_of_the_keystream_is_thrown_away() {
        let key = [7u8; 20];
        let mut ours = Cipher::new(&key);
        let mut reference = Rc4::new_from_slice(&key).unwrap();
        let mut stream = [0u8; DISCARD + 16];
        reference.apply_keystream(&mut stream);
        let mut bytes = [0u8; 16];
        ours.apply(&mut bytes);
        assert_eq!(bytes, stream[DISCARD..]);
    }

    #[test]
    fn ciphering_twice_gives_the_bytes_back() {
        let (mut a, _) = streams(&[1; KEY_LEN], &[2; 20]);
        let (mut a2, _) = streams(&[1; KEY_LEN], &[2; 20]);
        let mut data = *b"hello, peer";
        a.apply(&mut data);
        assert_ne!(&data, b"hello, peer");
        a2.apply(&mut data);
        assert_eq!(&data, b"hello, peer");
    }
}
