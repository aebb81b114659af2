use std::collections::BTreeMap;
use std::fmt;

/// A decoded bencode value that remembers the exact bytes it came from.
///
/// Values borrow from the input: byte strings are slices of it, and
/// [`Value::raw`] gives back the bytes the value was decoded from, unchanged.
/// That is what a torrent's info-hash must be computed over.
#[derive(Clone, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    offset: usize,
    kind: Kind<'a>,
}

/// The four kinds of bencode value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

impl<'a> Value<'a> {
    pub(crate) fn new(raw: &'a [u8], offset: usize, kind: Kind<'a>) -> Self {
        Value { raw, offset, kind }
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
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list's items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match &self.kind {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name for the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Int(_) => "integer",
            Kind::Bytes(_) => "byte string",
            Kind::List(_) => "list",
            Kind::Dict(_) => "dictionary",
        }
    }

    /// Copies the value into an [`OwnedValue`] that no longer borrows the input.
    pub fn to_owned_value(&self) -> OwnedValue {
        match &self.kind {
            Kind::Int(n) => OwnedValue::Int(*n),
            Kind::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            Kind::List(items) => {
                OwnedValue::List(items.iter().map(Value::to_owned_value).collect())
            }
            Kind::Dict(d) => OwnedValue::Dict(
                d.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

impl fmt::Debug for Value<'_> {
    // The raw bytes and offset would drown the structure; show the kind only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Int(n) => write!(f, "{n}"),
            Kind::Bytes(b) => write!(f, "{}", ByteStr(b)),
            Kind::List(items) => f.debug_list().entries(items).finish(),
            Kind::Dict(d) => d.fmt(f),
        }
    }
}

/// A decoded dictionary: its entries in the order they appeared in the input.
///
/// Keys are unique. In strict mode they are also sorted; a lenient decoder
/// keeps them in the order the input had them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Dict<'a> {
    pub(crate) fn from_entries(entries: Vec<(&'a [u8], Value<'a>)>) -> Self {
        Dict { entries }
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries, in input order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// How many entries the dictionary has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (ByteStr(k), v)))
            .finish()
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
