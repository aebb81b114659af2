// Fuzz target `utp_connection` (included by `fuzz_targets/utp_connection.rs`
// and by the workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// a uTP connection driven by a hostile peer. The input is a script: packets
// from the peer (any bytes), time passing, the application writing,
// reading, closing. No panic; every datagram the connection sends decodes
// and fits the size allowed; what it holds stays within its buffers.

use std::time::{Duration, Instant};

use utp::{Config, Connection, Header, Packet, PacketType};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let Some((&first, mut script)) = data.split_first() else {
        return;
    };
    let config = Config {
        receive_buffer: 64 * 1024,
        send_buffer: 64 * 1024,
        max_datagram: if first & 2 == 0 { 1472 } else { 9000 },
        ..Config::default()
    };
    let mut now = Instant::now();
    let mut conn = if first & 1 == 0 {
        Connection::connect(now, config.clone(), 100, 1000)
    } else {
        let syn = Packet {
            header: Header {
                kind: PacketType::Syn,
                connection_id: 100,
                timestamp_us: 0,
                timestamp_difference_us: 0,
                window: 1 << 20,
                seq_nr: 5000,
                ack_nr: 0,
            },
            selective_ack: None,
            largest_datagram: (first & 4 != 0).then_some(65_000),
            payload: Vec::new(),
        };
        Connection::accept(now, config.clone(), &syn, 1000)
    };
    let mut buf = vec![0u8; 8192];
    // A bound on the work one input may ask for.
    for _ in 0..512 {
        let Some((&op, rest)) = script.split_first() else {
            break;
        };
        script = rest;
        match op % 6 {
            // A datagram from the peer: a length byte, then its bytes.
            0 => {
                let Some((&len, rest)) = script.split_first() else {
                    break;
                };
                let len = usize::from(len).min(rest.len());
                let (datagram, rest) = rest.split_at(len);
                script = rest;
                if let Ok(packet) = Packet::decode(datagram) {
                    conn.handle(now, &packet);
                }
            }
            // Time passes, timers run.
            1 => {
                now += Duration::from_millis(u64::from(op) * 40);
                if conn.poll_timeout().is_some_and(|at| at <= now) {
                    conn.handle_timeout(now);
                }
            }
            2 => {
                let n = usize::from(op) * 97;
                let written = conn.write(&vec![op; n]);
                assert!(written <= n);
            }
            3 => {
                let n = conn.read(&mut buf);
                assert!(n <= buf.len());
            }
            4 if op > 200 => conn.reset(),
            4 => conn.close(),
            _ => {}
        }
        assert!(conn.readable() <= config.receive_buffer as usize);
        for _ in 0..10_000 {
            let Some(transmit) = conn.poll_transmit(now) else {
                break;
            };
            assert!(transmit.datagram.len() <= usize::from(config.max_datagram));
            let packet = Packet::decode(&transmit.datagram).expect("what we send decodes");
            assert!(utp::is_utp(&transmit.datagram));
            if packet.header.kind == PacketType::Data && packet.payload.is_empty() {
                panic!("an empty data packet");
            }
        }
    }
}
