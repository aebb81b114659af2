//! DHT nodes on real sockets, each on its own loopback address.

mod loopback;
