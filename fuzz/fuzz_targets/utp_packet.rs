//! Any datagram as a uTP packet: no panic, and what decodes round-trips.
#![no_main]

mod check {
    include!("../checks/utp_packet.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
