//! A node's id and routing table, saved between runs so that a restart
//! does not bootstrap from nothing.

use bencode::Encoder;

use crate::id::NodeId;
use crate::krpc::{NodeInfo, compact, compact_addr};

/// At most this many nodes are read back.
const MAX_SAVED: usize = 2048;

/// What a node keeps for its next run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// Its id.
    pub id: Option<NodeId>,
    /// Nodes of its table, either family.
    pub nodes: Vec<NodeInfo>,
}

/// Why saved bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SavedError {
    /// Not bencode.
    #[error("saved DHT state is not bencode: {0}")]
    Bencode(#[from] bencode::Error),
    /// Bencode, but not a saved DHT state.
    #[error("saved DHT state has a malformed `{0}`")]
    Field(&'static str),
}

impl Saved {
    /// Encodes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut nodes = Vec::new();
        let mut nodes6 = Vec::new();
        for node in &self.nodes {
            let out = if node.addr.is_ipv6() {
                &mut nodes6
            } else {
                &mut nodes
            };
            out.extend_from_slice(&node.id.0);
            out.extend_from_slice(&compact(node.addr));
        }
        let mut e = Encoder::default();
        e.dict(|d| {
            if let Some(id) = self.id {
                d.entry_with(b"id", |e| e.bytes(&id.0));
            }
            d.entry_with(b"nodes", |e| e.bytes(&nodes));
            d.entry_with(b"nodes6", |e| e.bytes(&nodes6));
        });
        e.into_bytes()
    }

    /// Reads what [`Saved::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Saved, SavedError> {
        let value = bencode::Decoder::lenient().max_depth(2).decode(bytes)?;
        let dict = value.as_dict().ok_or(SavedError::Field("dictionary"))?;
        let id = match dict.get(b"id") {
            None => None,
            Some(id) => Some(NodeId(
                id.as_bytes()
                    .and_then(|b| <[u8; 20]>::try_from(b).ok())
                    .ok_or(SavedError::Field("id"))?,
            )),
        };
        let mut nodes = Vec::new();
        for (key, size) in [(&b"nodes"[..], 26), (&b"nodes6"[..], 38)] {
            let Some(value) = dict.get(key) else { continue };
            let bytes = value.as_bytes().ok_or(SavedError::Field("nodes"))?;
            if bytes.len() % size != 0 {
                return Err(SavedError::Field("nodes"));
            }
            for entry in bytes.chunks_exact(size) {
                if nodes.len() == MAX_SAVED {
                    break;
                }
                let id = NodeId(
                    entry[..20]
                        .try_into()
                        .map_err(|_| SavedError::Field("nodes"))?,
                );
                let addr = compact_addr(&entry[20..]).ok_or(SavedError::Field("nodes"))?;
                if addr.port() != 0 {
                    nodes.push(NodeInfo { id, addr });
                }
            }
        }
        Ok(Saved { id, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_round_trips_and_garbage_is_refused() {
        let saved = Saved {
            id: Some(NodeId([9; 20])),
            nodes: vec![
                NodeInfo {
                    id: NodeId([1; 20]),
                    addr: "127.0.0.2:6881".parse().expect("addr"),
                },
                NodeInfo {
                    id: NodeId([2; 20]),
                    addr: "[::1]:6882".parse().expect("addr"),
                },
            ],
        };
        assert_eq!(Saved::decode(&saved.encode()), Ok(saved));
        for garbage in [
            &b""[..],
            b"de1",
            b"li1ee",
            b"d2:id3:abce",
            b"d5:nodes3:abce",
        ] {
            assert!(Saved::decode(garbage).is_err(), "{garbage:?}");
        }
    }
}
