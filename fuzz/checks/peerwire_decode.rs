// Fuzz target `peerwire_decode` (included by `fuzz_targets/peerwire_decode.rs` and by the
// workspace's test of the corpora, `xtask/tests/fuzz_corpora.rs`):
// Any byte stream from a peer: no panic, a buffer bounded by one frame, and every
// message decoded re-encodes to the frame it came from.

use bytes::{Bytes, BytesMut};
use peerwire::extension::{ExtensionHandshake, UtMetadata, UtPex};
use peerwire::{Handshake, Message, PeerCodec};
use tokio_util::codec::Decoder;

/// The checks on one input, for the fuzzer and for the regression test
/// that runs the corpus on stable.
pub fn check(data: &[u8]) {
    let _ = Handshake::decode(data);
    let Some((&pieces, stream)) = data.split_first() else {
        return;
    };
    // The first byte picks the piece count, or none (a magnet link).
    let num_pieces = (pieces != 0).then_some(u32::from(pieces) * 37);
    let mut codec = PeerCodec::new(num_pieces);
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(message)) => {
                if let Message::Unknown { .. } = message {
                    continue;
                }
                let mut again = BytesMut::new();
                peerwire::encode(&message, &mut again);
                assert_eq!(again.len(), before - buf.len(), "{message:?}");
                if let Message::Extended { payload, .. } = &message {
                    let _ = ExtensionHandshake::decode(payload);
                    let _ = UtMetadata::decode(payload);
                    let _ = UtPex::decode(payload);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    // At most one frame's worth is reserved; the allocator may double it.
    assert!(buf.capacity() <= 2 * stream.len().max(4 + codec.max_len()) + 64);
    let _ = UtMetadata::decode(&Bytes::copy_from_slice(data));
}
