//! Encrypted connections (MSE/PE) between btc sessions, every pairing of
//! policies: those that can meet connect, encrypted where both can; those
//! that cannot (`off` and `require`) fail without a plaintext byte taken.

use engine::{Encryption, Session, SessionConfig};

use super::*;

const POLICIES: [Encryption; 4] = [
    Encryption::Off,
    Encryption::Allow,
    Encryption::Prefer,
    Encryption::Require,
];

/// What a leecher dialling a seeder ends with: `None` if they cannot
/// meet, else whether the payload is ciphered.
fn expected(leecher: Encryption, seeder: Encryption) -> Option<bool> {
    use Encryption::*;
    match (leecher, seeder) {
        (Off, Require) | (Require, Off) => None,
        // Plaintext offered, plaintext taken (whatever MSE could do).
        (Off, _) | (Allow, Off | Allow | Prefer) => Some(false),
        // MSE offered with both methods: the seeder chooses, plaintext
        // unless it requires RC4.
        (Prefer, Off) => Some(false), // it cannot: plaintext again
        (Prefer, Allow | Prefer) => Some(false),
        (Prefer, Require) => Some(true),
        // The seeder refused plaintext: MSE, which it takes with RC4.
        (Allow, Require) => Some(true),
        (Require, _) => Some(true),
    }
}

async fn meet(content: &Content, leecher: Encryption, seeder: Encryption) {
    let with = |encryption| SessionConfig {
        encryption,
        ..test_config()
    };
    let seeding = slow_seeder(content, with(seeder), 256 * 1024).await;
    let leeching = Session::start(with(leecher)).await.unwrap();
    let (handle, dir) = leech_from(&leeching, content, vec![seeding.local_addr()]).await;
    let pair = format!("leecher {leecher:?}, seeder {seeder:?}");
    let mut watch = handle.watch();
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        watch.wait_for(|s| s.peers > 0 || s.dial_failures > 0),
    )
    .await
    .unwrap_or_else(|_| panic!("{pair}: neither connected nor failed"))
    .unwrap()
    .clone();
    match expected(leecher, seeder) {
        None => {
            assert_eq!(seen.peers_ever, 0, "{pair}: they met");
            assert!(seen.dial_failures > 0, "{pair}");
        }
        Some(encrypted) => {
            assert_eq!(seen.peers, 1, "{pair}: {seen:?}");
            assert_eq!(seen.encrypted_peers == 1, encrypted, "{pair}");
            complete(&handle).await;
            content.assert_downloaded(dir.path());
        }
    }
    leeching.shutdown().await;
    seeding.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pairing_of_policies_connects_as_it_should() {
    let content = content(&[300_000, 100_000], 16 * 1024, &[], 81);
    let pairs = POLICIES
        .iter()
        .flat_map(|l| POLICIES.iter().map(move |s| (*l, *s)));
    futures::future::join_all(pairs.map(|(l, s)| meet(&content, l, s))).await;
}
