//! Any datagram as a UDP tracker's answer (BEP 15), read as btc's client
//! reads it: no panic, whole peers only, and an announce answer kept
//! within the bounds of an HTTP one.
#![no_main]

mod check {
    include!("../checks/udp_tracker_answer.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
