use crate::error::{Error, ErrorKind};
use crate::value::{Dict, Kind, Value};

/// The nesting depth a [`Decoder`] accepts unless told otherwise.
///
/// A torrent file nests five deep (root, info, files, file, path); 64 leaves
/// room for anything real while keeping recursion shallow.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// A configured bencode decoder.
///
/// The default is strict, as BEP 3 says: integers without leading zeros or
/// `-0`, dictionary keys sorted and unique, and nothing after the value.
/// [`Decoder::lenient`] accepts dictionary keys in any order, because real
/// torrent files sometimes have them unsorted, and nothing else: duplicate keys
/// stay an error, since two clients could read different values from them.
///
/// Hostile input cannot get past the limits: nesting is bounded by
/// [`Decoder::max_depth`], integers must fit an `i64`, byte strings must fit in
/// the input, and the decoder allocates at most a small constant per input
/// byte (list and dictionary entries), never in proportion to a declared length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    sorted_keys: bool,
    max_depth: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::strict()
    }
}

impl Decoder {
    /// A decoder that enforces every rule of BEP 3.
    pub fn strict() -> Self {
        Decoder {
            sorted_keys: true,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// A decoder that also accepts dictionaries whose keys are out of order.
    ///
    /// Keys must still be unique. Every value's [`Value::raw`] bytes are still
    /// exactly what the input held, so an info-hash computed from a lenient
    /// decode is the one other clients compute.
    pub fn lenient() -> Self {
        Decoder {
            sorted_keys: false,
            ..Decoder::strict()
        }
    }

    /// Sets how deeply lists and dictionaries may nest. A bare integer or
    /// string has depth 0; `li1ee` has depth 1.
    pub fn max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Decodes one value that must span the whole input.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Value<'a>, Error> {
        let (value, used) = self.decode_prefix(input)?;
        if used != input.len() {
            return Err(Error::new(used, ErrorKind::TrailingData));
        }
        Ok(value)
    }

    /// Decodes one value from the start of the input and returns it with the
    /// number of bytes it took. Anything after it is left alone: some messages
    /// (BEP 9's metadata pieces) put a payload after a bencoded dictionary.
    pub fn decode_prefix<'a>(&self, input: &'a [u8]) -> Result<(Value<'a>, usize), Error> {
        let mut parser = Parser {
            input,
            pos: 0,
            options: *self,
        };
        let value = parser.value(0)?;
        Ok((value, parser.pos))
    }
}

/// Decodes `input` with a strict [`Decoder`].
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    Decoder::strict().decode(input)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    options: Decoder,
}

impl<'a> Parser<'a> {
    fn peek(&self, expected: &'static str) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error(ErrorKind::UnexpectedEnd { expected }))
    }

    fn error(&self, kind: ErrorKind) -> Error {
        Error::new(self.pos, kind)
    }

    /// Decodes the value at `pos`; `depth` counts the containers around it.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        let start = self.pos;
        let kind = match self.peek("a value")? {
            b'i' => Kind::Int(self.int()?),
            b'0'..=b'9' => Kind::Bytes(self.bytes()?),
            b'l' => {
                self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek("a list item or 'e'")? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Kind::List(items)
            }
            b'd' => {
                self.enter(depth)?;
                Kind::Dict(self.dict(depth)?)
            }
            found => {
                return Err(self.error(ErrorKind::UnexpectedByte {
                    found,
                    expected: "a value ('i', 'l', 'd' or a digit)",
                }));
            }
        };
        Ok(Value::new(&self.input[start..self.pos], start, kind))
    }

    /// Steps over a container's opening byte, if the depth limit allows.
    fn enter(&mut self, depth: usize) -> Result<(), Error> {
        if depth >= self.options.max_depth {
            return Err(self.error(ErrorKind::TooDeep {
                max_depth: self.options.max_depth,
            }));
        }
        self.pos += 1;
        Ok(())
    }

    fn dict(&mut self, depth: usize) -> Result<Dict<'a>, Error> {
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        // Key start offsets, kept only to point at a duplicate in lenient mode.
        let mut key_offsets = Vec::new();
        loop {
            let key_start = self.pos;
            match self.peek("a dictionary key or 'e'")? {
                b'e' => break,
                b'0'..=b'9' => {}
                found => {
                    return Err(self.error(ErrorKind::UnexpectedByte {
                        found,
                        expected: "a dictionary key (a byte string) or 'e'",
                    }));
                }
            }
            let key = self.bytes()?;
            if self.options.sorted_keys {
                if let Some((previous, _)) = entries.last() {
                    if key == *previous {
                        return Err(Error::new(key_start, ErrorKind::DuplicateKey));
                    }
                    if key < *previous {
                        return Err(Error::new(key_start, ErrorKind::UnsortedKey));
                    }
                }
            } else {
                key_offsets.push(key_start);
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        if !self.options.sorted_keys {
            // Sort positions by key; equal neighbours are duplicates. Report the
            // one that comes later in the input.
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|&a, &b| entries[a].0.cmp(entries[b].0).then(a.cmp(&b)));
            if let Some(pair) = order
                .windows(2)
                .find(|w| entries[w[0]].0 == entries[w[1]].0)
            {
                return Err(Error::new(key_offsets[pair[1]], ErrorKind::DuplicateKey));
            }
        }
        Ok(Dict::from_entries(entries))
    }

    /// Decodes `i<digits>e` at `pos`.
    fn int(&mut self) -> Result<i64, Error> {
        self.pos += 1; // 'i'
        let negative = self.peek("an integer")? == b'-';
        if negative {
            self.pos += 1;
        }
        let first_digit = self.pos;
        // Accumulate as a negative number so that i64::MIN fits.
        let mut n: i64 = 0;
        loop {
            match self.peek("a digit or 'e'")? {
                b'e' => break,
                b @ b'0'..=b'9' => {
                    if self.pos > first_digit && self.input[first_digit] == b'0' {
                        return Err(Error::new(first_digit, ErrorKind::LeadingZero));
                    }
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_sub(i64::from(b - b'0')))
                        .ok_or_else(|| Error::new(first_digit, ErrorKind::IntegerOverflow))?;
                    self.pos += 1;
                }
                found => {
                    return Err(self.error(ErrorKind::UnexpectedByte {
                        found,
                        expected: "a digit or 'e'",
                    }));
                }
            }
        }
        if self.pos == first_digit {
            return Err(self.error(ErrorKind::UnexpectedByte {
                found: b'e',
                expected: "a digit",
            }));
        }
        self.pos += 1; // 'e'
        if negative {
            if n == 0 {
                return Err(Error::new(first_digit - 1, ErrorKind::NegativeZero));
            }
            Ok(n)
        } else {
            n.checked_neg()
                .ok_or_else(|| Error::new(first_digit, ErrorKind::IntegerOverflow))
        }
    }

    /// Decodes `<length>:<bytes>` at `pos`, which holds a digit.
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let mut length: u64 = 0;
        loop {
            match self.peek("a digit or ':'")? {
                b':' => break,
                b @ b'0'..=b'9' => {
                    if self.pos > start && self.input[start] == b'0' {
                        return Err(Error::new(start, ErrorKind::LeadingZero));
                    }
                    length = length
                        .saturating_mul(10)
                        .saturating_add(u64::from(b - b'0'));
                    self.pos += 1;
                }
                found => {
                    return Err(self.error(ErrorKind::UnexpectedByte {
                        found,
                        expected: "a digit or ':'",
                    }));
                }
            }
        }
        self.pos += 1; // ':'
        let remaining = self.input.len() - self.pos;
        match usize::try_from(length) {
            Ok(len) if len <= remaining => {
                let bytes = &self.input[self.pos..self.pos + len];
                self.pos += len;
                Ok(bytes)
            }
            _ => Err(Error::new(
                start,
                ErrorKind::LengthPastEnd { length, remaining },
            )),
        }
    }
}
