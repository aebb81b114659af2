//! Tokens for `announce_peer` (BEP 5): proof that the announcing node got a
//! `get_peers` answer at the address it announces from.
//!
//! A token is a hash of the querier's IP and a secret. The secret changes
//! every five minutes and the previous one is still accepted, so a token is
//! good for five to ten minutes and the node keeps no state per querier.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;

/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
const TOKEN_LEN: usize = 8;

/// The secrets tokens are made with.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

impl Tokens {
    /// Fresh secrets.
    pub fn new(now: Instant, rng: &mut impl Rng) -> Tokens {
        Tokens {
            current: rng.random(),
            previous: rng.random(),
            rotated: now,
        }
    }

    /// Changes the secret if it is [`ROTATE_EVERY`] old.
    pub fn rotate(&mut self, now: Instant, rng: &mut impl Rng) {
        if now.saturating_duration_since(self.rotated) >= ROTATE_EVERY {
            self.previous = self.current;
            self.current = rng.random();
            self.rotated = now;
        }
    }

    /// When the secret changes next.
    pub fn next_rotation(&self) -> Instant {
        self.rotated + ROTATE_EVERY
    }

    /// The token for a querier at `ip`.
    pub fn make(&self, ip: IpAddr) -> Vec<u8> {
        token_of(&self.current, ip).to_vec()
    }

    /// Whether `token` is one this node gave `ip` in the last five to ten
    /// minutes.
    pub fn check(&self, token: &[u8], ip: IpAddr) -> bool {
        token == token_of(&self.current, ip) || token == token_of(&self.previous, ip)
    }
}

fn token_of(secret: &[u8; 16], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut hash = sha1_smol::Sha1::new();
    hash.update(secret);
    match ip {
        IpAddr::V4(v4) => hash.update(&v4.octets()),
        IpAddr::V6(v6) => hash.update(&v6.octets()),
    }
    let digest = hash.digest().bytes();
    let mut out = [0; TOKEN_LEN];
    out.copy_from_slice(&digest[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn a_token_is_good_for_its_ip_for_five_to_ten_minutes() {
        let mut rng = SmallRng::seed_from_u64(3);
        let start = Instant::now();
        let mut tokens = Tokens::new(start, &mut rng);
        let ip: IpAddr = "127.0.0.9".parse().expect("ip");
        let other: IpAddr = "127.0.0.10".parse().expect("ip");
        let token = tokens.make(ip);
        assert!(tokens.check(&token, ip));
        assert!(!tokens.check(&token, other));
        assert!(!tokens.check(b"forged!!", ip));
        tokens.rotate(start + ROTATE_EVERY, &mut rng);
        assert!(tokens.check(&token, ip), "still good after one rotation");
        tokens.rotate(start + ROTATE_EVERY * 2, &mut rng);
        assert!(!tokens.check(&token, ip), "gone after two");
    }
}
