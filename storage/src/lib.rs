//! Where downloaded bytes become files and seeded bytes come from.
//!
//! Not built yet. This crate will accept blocks in any order, verify each piece
//! before counting it as had, write multi-file torrents through a bounded cache
//! of file handles without ever blocking the async runtime or writing outside
//! the download folder, and resume a stopped download from a resume file.
