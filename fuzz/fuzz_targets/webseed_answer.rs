//! Any status and headers as a web seed's answer to a range request (the
//! first two bytes the status, the next eight the range's start, then
//! `name: value` lines): no panic, and every verdict is one btc can act
//! on.
#![no_main]

mod check {
    include!("../checks/webseed_answer.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
