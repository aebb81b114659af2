//! The wire protocol from the outside: round trips, arbitrary read splits,
//! snapshots of encodings, malformed frames, and a real client.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

mod codec;
mod extension;
mod real;
