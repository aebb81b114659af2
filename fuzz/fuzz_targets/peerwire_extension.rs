//! Any extension message payload (BEP 10 handshake, `ut_metadata`,
//! `ut_pex`): no panic, bounded output, and what decodes encodes back to
//! the same value.
#![no_main]

mod check {
    include!("../checks/peerwire_extension.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
