//! Swarms of several sessions.
