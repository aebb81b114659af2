// Fuzz target `krpc_message` (included by `fuzz_targets/krpc_message.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any datagram as a KRPC message: no panic; whatever decodes encodes to
// bytes that decode to the same message; and a DHT node that receives it
// neither panics nor answers with anything but valid KRPC that fits in a
// datagram.

use std::time::Instant;

use dht::{Config, Message, Node, krpc::MAX_PACKET};

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode());
        assert_eq!(again.as_ref(), Ok(&message));
    }
    let now = Instant::now();
    let mut node = Node::new(
        Config {
            seed: Some(1),
            ..Config::default()
        },
        now,
    );
    let from = "127.0.0.2:6881".parse().expect("address");
    node.handle(now, from, data);
    node.handle_timeout(now);
    while let Some(transmit) = node.poll_transmit() {
        assert!(transmit.packet.len() <= MAX_PACKET);
        assert!(Message::decode(&transmit.packet).is_ok());
    }
}
