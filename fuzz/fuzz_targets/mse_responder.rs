//! What an MSE initiator sends, garbled, to a responder: no panic, and a
//! handshake that ends has kept its bounds.
#![no_main]

mod check {
    include!("../checks/mse_responder.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
