//! Any input: no panic, and whatever strict decoding accepts is canonical.
#![no_main]

mod check {
    include!("../checks/bencode_decode.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
