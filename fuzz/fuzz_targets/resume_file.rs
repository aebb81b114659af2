//! Any bytes as a resume file (the first three pick the torrent's piece
//! and file counts): no panic, and whatever is accepted has the torrent's
//! shape and is written back to the same bytes' meaning.
#![no_main]

mod check {
    include!("../checks/resume_file.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
