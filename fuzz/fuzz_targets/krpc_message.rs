//! Any datagram as a KRPC message: no panic; whatever decodes encodes to
//! bytes that decode to the same message; and a DHT node that receives it
//! answers, if at all, with valid KRPC that fits in a datagram.
#![no_main]

mod check {
    include!("../checks/krpc_message.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
