//! Any byte stream from a peer: no panic, a buffer bounded by one frame, and every
//! message decoded re-encodes to the frame it came from.
#![no_main]

mod check {
    include!("../checks/peerwire_decode.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
