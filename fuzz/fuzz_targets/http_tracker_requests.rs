//! Any run of requests to `btc tracker`'s HTTP side, one per line
//! (`PATH?QUERY`; the line's first byte picks the client's address), sent
//! in order to one small tracker: no panic, every answer bencode, and no
//! answer or swarm past its bounds.
#![no_main]

mod check {
    include!("../checks/http_tracker_requests.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
