//! Any bytes as a tracker answer, a UDP packet or an announce query: no
//! panic, bounded output, and what decodes encodes back to the same value.
#![no_main]

mod check {
    include!("../checks/tracker_messages.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
