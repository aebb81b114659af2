//! BEP 6's allowed-fast set: pieces a peer may download from us even while
//! choked, chosen the same way by both sides from its IP and the torrent.

use std::net::IpAddr;

use metainfo::InfoHash;

/// The `k` allowed-fast pieces for a peer at `ip` in a torrent of
/// `num_pieces` pieces, by BEP 6's algorithm. IPv4 addresses are masked to
/// their /24, as the BEP says; IPv6 ones to their /48 (the BEP leaves IPv6
/// open; this follows libtorrent).
///
/// `k` is capped at 1,024 (BEP 6 suggests 10), which keeps the work small
/// whatever the torrent.
pub fn allowed_fast_set(ip: IpAddr, info_hash: &InfoHash, num_pieces: u32, k: usize) -> Vec<u32> {
    let k = k.min(num_pieces as usize).min(1024);
    let mut set = Vec::with_capacity(k);
    let mut x: Vec<u8> = match ip.to_canonical() {
        IpAddr::V4(v4) => (u32::from(v4) & 0xffff_ff00).to_be_bytes().to_vec(),
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[6..].fill(0);
            octets.to_vec()
        }
    };
    x.extend_from_slice(info_hash.as_bytes());
    while set.len() < k {
        x = metainfo::sha1(&x).to_vec();
        for chunk in x.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BEP 6's own example: 1313 pieces, peer 80.4.4.200, info-hash of 0xaa.
    #[test]
    fn matches_the_bep_example() {
        let ip: IpAddr = "80.4.4.200".parse().unwrap();
        let hash = InfoHash([0xaa; 20]);
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // The same /24 gives the same set.
        assert_eq!(
            allowed_fast_set("80.4.4.7".parse().unwrap(), &hash, 1313, 7),
            allowed_fast_set(ip, &hash, 1313, 7)
        );
    }

    #[test]
    fn small_torrents_do_not_loop_forever() {
        let set = allowed_fast_set("1.2.3.4".parse().unwrap(), &InfoHash([1; 20]), 3, 10);
        let mut sorted = set.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2]);
        assert!(allowed_fast_set("1.2.3.4".parse().unwrap(), &InfoHash([1; 20]), 0, 10).is_empty());
    }
}
