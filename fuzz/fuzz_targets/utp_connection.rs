//! A uTP connection driven by a hostile peer: no panic, datagrams within bounds.
#![no_main]

mod check {
    include!("../checks/utp_connection.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
