use std::collections::BTreeMap;
use std::fmt;

use crate::decode::{Parser, Rules};

/// A decoded bencode value: a view of validated input that remembers the
/// exact bytes it came from.
///
/// Values borrow from the input and are cheap to copy. Decoding validates the
/// whole input once, without allocating; lists and dictionaries are then
/// walked on demand, so a value tree costs no memory beyond the input itself.
/// [`Value::raw`] gives back the bytes the value was decoded from, unchanged:
/// that is what a torrent's info-hash must be computed over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    offset: usize,
}

/// The four kinds of bencode value, with their contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(List<'a>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

impl<'a> Value<'a> {
    /// `raw` must be exactly one value that a [`crate::Decoder`] accepted.
    pub(crate) fn new(raw: &'a [u8], offset: usize) -> Self {
        Value { raw, offset }
    }

    /// The exact bytes this value was decoded from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Where this value starts in the decoded input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What kind of value this is, with its contents.
    pub fn kind(&self) -> Kind<'a> {
        match self.raw.first() {
            Some(b'i') => Kind::Int(parse_int(&self.raw[1..self.raw.len() - 1])),
            Some(b'l') => Kind::List(List(*self)),
            Some(b'd') => Kind::Dict(Dict(*self)),
            _ => Kind::Bytes(string_contents(self.raw)),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind() {
            Kind::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind() {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<List<'a>> {
        match self.kind() {
            Kind::List(list) => Some(list),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<Dict<'a>> {
        match self.kind() {
            Kind::Dict(dict) => Some(dict),
            _ => None,
        }
    }

    /// A short name for the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.raw.first() {
            Some(b'i') => "integer",
            Some(b'l') => "list",
            Some(b'd') => "dictionary",
            _ => "byte string",
        }
    }

    /// Copies the value into an [`OwnedValue`] that no longer borrows the input.
    pub fn to_owned_value(&self) -> OwnedValue {
        match self.kind() {
            Kind::Int(n) => OwnedValue::Int(n),
            Kind::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            Kind::List(list) => OwnedValue::List(list.iter().map(|v| v.to_owned_value()).collect()),
            Kind::Dict(dict) => OwnedValue::Dict(
                dict.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }

    /// The values inside a list or dictionary, starting after the opening
    /// byte: for a dictionary, keys and values alternate.
    fn children(&self) -> Children<'a> {
        Children {
            parent: *self,
            pos: 1,
        }
    }
}

/// The digits of a validated integer; they always fit an `i64`.
fn parse_int(digits: &[u8]) -> i64 {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    // Accumulate as a negative number so that i64::MIN fits.
    let n = digits.iter().fold(0i64, |n, d| {
        n.wrapping_mul(10).wrapping_sub(i64::from(d - b'0'))
    });
    if negative { n } else { n.wrapping_neg() }
}

/// The bytes after the length prefix of a validated byte string.
fn string_contents(raw: &[u8]) -> &[u8] {
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .map_or(raw.len(), |p| p + 1);
    &raw[colon..]
}

/// Walks the values directly inside a validated list or dictionary.
#[derive(Clone)]
struct Children<'a> {
    parent: Value<'a>,
    pos: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        let raw = self.parent.raw;
        if raw.get(self.pos).is_none_or(|&b| b == b'e') {
            return None;
        }
        // The bytes were validated when decoded, so this cannot fail; stop
        // quietly rather than panic if it somehow did.
        let end = Parser::new(raw, Rules::TRUSTED).skip_value(self.pos).ok()?;
        let child = Value::new(&raw[self.pos..end], self.parent.offset + self.pos);
        self.pos = end;
        Some(child)
    }
}

/// A decoded list: its items are found by walking the raw bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct List<'a>(Value<'a>);

impl<'a> List<'a> {
    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + use<'a> {
        self.0.children()
    }

    /// How many items there are (walks the list).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the list has no items.
    pub fn is_empty(&self) -> bool {
        self.0.raw.get(1) == Some(&b'e')
    }

    /// The list as a value, with its raw bytes and offset.
    pub fn as_value(&self) -> Value<'a> {
        self.0
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A decoded dictionary: its entries in the order they appear in the input.
///
/// Keys are unique. In strict mode they are also sorted; a lenient decoder
/// accepts them in any order and they are given back in that order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Dict<'a>(Value<'a>);

impl<'a> Dict<'a> {
    /// The value for `key`, if present (walks the dictionary).
    pub fn get(&self, key: &[u8]) -> Option<Value<'a>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries, in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Value<'a>)> + use<'a> {
        let mut children = self.0.children();
        std::iter::from_fn(move || {
            let key = children.next()?.kind();
            let value = children.next()?;
            match key {
                Kind::Bytes(key) => Some((key, value)),
                _ => None,
            }
        })
    }

    /// How many entries there are (walks the dictionary).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.raw.get(1) == Some(&b'e')
    }

    /// The dictionary as a value, with its raw bytes and offset.
    pub fn as_value(&self) -> Value<'a> {
        self.0
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (ByteStr(k), v)))
            .finish()
    }
}

impl fmt::Debug for Value<'_> {
    // Show the structure; the raw bytes and offset would drown it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Kind::Int(n) => write!(f, "{n}"),
            Kind::Bytes(b) => write!(f, "{}", ByteStr(b)),
            Kind::List(list) => list.fmt(f),
            Kind::Dict(dict) => dict.fmt(f),
        }
    }
}

/// A bencode value that owns its contents: for building values to encode, or
/// keeping parts of a decoded value after the input is gone.
///
/// Dictionaries are kept sorted by key, as bencode requires.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnedValue {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<OwnedValue>),
    /// A dictionary.
    Dict(BTreeMap<Vec<u8>, OwnedValue>),
}

impl fmt::Debug for OwnedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnedValue::Int(n) => write!(f, "{n}"),
            OwnedValue::Bytes(b) => write!(f, "{}", ByteStr(b)),
            OwnedValue::List(items) => f.debug_list().entries(items).finish(),
            OwnedValue::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (ByteStr(k), v)))
                .finish(),
        }
    }
}

/// Prints a byte string as `"text"` with non-printable bytes escaped, or as
/// `<N bytes>` when long and binary, so debug output stays readable.
pub(crate) struct ByteStr<'a>(pub(crate) &'a [u8]);

impl fmt::Display for ByteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let binary = self
            .0
            .iter()
            .filter(|b| !(b.is_ascii_graphic() || **b == b' '))
            .count();
        if self.0.len() > 32 && binary > self.0.len() / 4 {
            return write!(f, "<{} bytes>", self.0.len());
        }
        f.write_str("\"")?;
        for &b in self.0 {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                b if b.is_ascii_graphic() || b == b' ' => write!(f, "{}", b as char)?,
                b => write!(f, "\\x{b:02x}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for ByteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
