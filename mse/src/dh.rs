//! The Diffie-Hellman exchange over MSE's 768-bit prime, generator 2.

use std::sync::LazyLock;

use num_bigint::BigUint;
use rand::Rng;

use crate::Error;

/// Bytes of a public key and of the shared secret: 768 bits, big-endian,
/// zero-padded on the left.
pub const KEY_LEN: usize = 96;

/// The prime P of MSE.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1\
29024E088A67CC74020BBEA63B139B22514A08798E3404DD\
EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245\
E485B576625E7EC6F44C42E9A63A36210000000000090563";

static PRIME: LazyLock<BigUint> =
    LazyLock::new(|| BigUint::parse_bytes(PRIME_HEX, 16).expect("the prime is valid hexadecimal"));

/// Bytes of a private key: 160 bits, as the specification advises.
const PRIVATE_LEN: usize = 20;

/// One side's secret exponent.
pub(crate) struct PrivateKey(BigUint);

impl PrivateKey {
    pub(crate) fn random(rng: &mut impl Rng) -> PrivateKey {
        let mut bytes = [0u8; PRIVATE_LEN];
        rng.fill(&mut bytes);
        PrivateKey(BigUint::from_bytes_be(&bytes))
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> PrivateKey {
        PrivateKey(BigUint::from_bytes_be(bytes))
    }

    /// 2^x mod P.
    pub(crate) fn public(&self) -> [u8; KEY_LEN] {
        to_key(&BigUint::from(2u32).modpow(&self.0, &PRIME))
    }

    /// Y^x mod P, the secret both sides share. A key of 0, 1, P − 1 or
    /// past P would make the secret guessable: refused.
    pub(crate) fn shared(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], Error> {
        let y = BigUint::from_bytes_be(theirs);
        let one = BigUint::from(1u32);
        if y <= one || y >= &*PRIME - &one {
            return Err(Error::BadPublicKey);
        }
        Ok(to_key(&y.modpow(&self.0, &PRIME)))
    }
}

/// `n` (below P) as 96 big-endian bytes.
fn to_key(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut key = [0u8; KEY_LEN];
    key[KEY_LEN - bytes.len()..].copy_from_slice(&bytes);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_prime_is_768_bits() {
        assert_eq!(PRIME.bits(), 768);
    }

    /// 2^x mod P for x = 0x0102…14, worked out apart from this code
    /// (Python's `pow(2, x, P)`).
    #[test]
    fn a_public_key_matches_a_known_value() {
        let x = PrivateKey::from_bytes(&hex("0102030405060708090a0b0c0d0e0f1011121314"));
        let expected = hex(concat!(
            "96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556",
            "b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d4",
            "06258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693",
        ));
        assert_eq!(x.public().to_vec(), expected);
    }

    #[test]
    fn both_sides_reach_the_same_secret() {
        let mut rng = rand::rng();
        let a = PrivateKey::random(&mut rng);
        let b = PrivateKey::random(&mut rng);
        assert_eq!(
            a.shared(&b.public()).unwrap(),
            b.shared(&a.public()).unwrap()
        );
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let a = PrivateKey::random(&mut rand::rng());
        let mut p_minus_one = to_key(&(&*PRIME - 1u32));
        for key in [
            [0u8; KEY_LEN],
            to_key(&BigUint::from(1u32)),
            p_minus_one,
            [0xff; KEY_LEN],
        ] {
            assert!(matches!(a.shared(&key), Err(Error::BadPublicKey)));
        }
        p_minus_one[KEY_LEN - 1] -= 1;
        assert!(a.shared(&p_minus_one).is_ok());
    }
}
