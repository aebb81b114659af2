//! Any bytes as a torrent, any text as a magnet link: no panic, and whatever
//! is accepted keeps metainfo's promises.
#![no_main]

mod check {
    include!("../checks/metainfo_parse.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
