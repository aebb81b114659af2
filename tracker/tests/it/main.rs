//! The tracker protocol without sockets: URLs, responses, and the swarm state.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

mod http;
mod messages;
mod real;
mod swarm;
mod udp;
