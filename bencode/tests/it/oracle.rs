//! bendy as an independent decoder, turned into this crate's `OwnedValue` so
//! its results can be compared with ours.

use bencode::OwnedValue;
use bendy::decoding::{Decoder, Object};

/// Decodes a whole input with bendy; `None` when bendy refuses it (including
/// trailing data, which bendy itself would let through).
pub(crate) fn bendy_decode(input: &[u8]) -> Option<OwnedValue> {
    let mut decoder = Decoder::new(input).with_max_depth(bencode::DEFAULT_MAX_DEPTH);
    let value = convert(decoder.next_object().ok()??)?;
    match decoder.next_object() {
        Ok(None) => Some(value),
        _ => None,
    }
}

fn convert(object: Object<'_, '_>) -> Option<OwnedValue> {
    Some(match object {
        Object::Integer(text) => OwnedValue::Int(text.parse().ok()?),
        Object::Bytes(bytes) => OwnedValue::Bytes(bytes.to_vec()),
        Object::List(mut list) => {
            let mut items = Vec::new();
            while let Some(item) = list.next_object().ok()? {
                items.push(convert(item)?);
            }
            OwnedValue::List(items)
        }
        Object::Dict(mut dict) => {
            let mut map = std::collections::BTreeMap::new();
            while let Some((key, value)) = dict.next_pair().ok()? {
                map.insert(key.to_vec(), convert(value)?);
            }
            OwnedValue::Dict(map)
        }
    })
}
