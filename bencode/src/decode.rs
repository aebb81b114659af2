use crate::error::{Error, ErrorKind};
use crate::value::Value;

/// The nesting depth a [`Decoder`] accepts unless told otherwise.
///
/// A torrent file nests five deep (root, info, files, file, path); 64 leaves
/// room for anything real while keeping recursion shallow.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// The deepest nesting [`Decoder::max_depth`] can allow, so that no setting
/// lets hostile input exhaust the stack.
pub const MAX_DEPTH_LIMIT: usize = 512;

/// A configured bencode decoder.
///
/// The default is strict, as BEP 3 says: integers without leading zeros or
/// `-0`, dictionary keys sorted and unique, and nothing after the value.
/// [`Decoder::lenient`] accepts dictionary keys in any order, because real
/// torrent files sometimes have them unsorted, and nothing else: duplicate keys
/// stay an error, since two clients could read different values from them.
///
/// Hostile input cannot get past the limits: nesting is bounded by
/// [`Decoder::max_depth`], integers must fit an `i64`, and byte strings must fit
/// in the input. Strict decoding allocates nothing at all: it validates the
/// input in one pass and the [`Value`] it returns is a view of the input.
/// Lenient decoding allocates only to find duplicate keys, 4 bytes per key of
/// one dictionary at a time, which is less than the bytes those keys occupy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    rules: Rules,
}

/// What the parser checks. `TRUSTED` walks input validated before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    keys: KeyRule,
    max_depth: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyRule {
    SortedUnique,
    Unique,
    Unchecked,
}

impl Rules {
    pub(crate) const TRUSTED: Rules = Rules {
        keys: KeyRule::Unchecked,
        max_depth: usize::MAX,
    };
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
            rules: Rules {
                keys: KeyRule::SortedUnique,
                max_depth: DEFAULT_MAX_DEPTH,
            },
        }
    }

    /// A decoder that also accepts dictionaries whose keys are out of order.
    ///
    /// Keys must still be unique. Every value's [`Value::raw`] bytes are still
    /// exactly what the input held, so an info-hash computed from a lenient
    /// decode is the one other clients compute.
    pub fn lenient() -> Self {
        let mut decoder = Decoder::strict();
        decoder.rules.keys = KeyRule::Unique;
        decoder
    }

    /// Sets how deeply lists and dictionaries may nest, at most
    /// [`MAX_DEPTH_LIMIT`]. A bare integer or string has depth 0; `li1ee` has
    /// depth 1.
    pub fn max_depth(mut self, max_depth: usize) -> Self {
        self.rules.max_depth = max_depth.min(MAX_DEPTH_LIMIT);
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
        let end = Parser::new(input, self.rules).value(0, 0)?;
        Ok((Value::new(&input[..end], 0), end))
    }
}

/// Decodes `input` with a strict [`Decoder`].
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    Decoder::strict().decode(input)
}

/// A validating walk over bencode that builds nothing: each step returns
/// where the value it checked ends.
pub(crate) struct Parser<'a> {
    input: &'a [u8],
    rules: Rules,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a [u8], rules: Rules) -> Self {
        Parser { input, rules }
    }

    /// Where the value starting at `pos` ends.
    pub(crate) fn skip_value(&self, pos: usize) -> Result<usize, Error> {
        self.value(pos, 0)
    }

    fn peek(&self, pos: usize, expected: &'static str) -> Result<u8, Error> {
        self.input
            .get(pos)
            .copied()
            .ok_or_else(|| Error::new(pos, ErrorKind::UnexpectedEnd { expected }))
    }

    /// Checks the value at `pos`, which sits inside `depth` containers.
    fn value(&self, pos: usize, depth: usize) -> Result<usize, Error> {
        match self.peek(pos, "a value")? {
            b'i' => self.int(pos),
            b'0'..=b'9' => self.bytes(pos).map(|(_, end)| end),
            b'l' => {
                self.enter(pos, depth)?;
                let mut pos = pos + 1;
                while self.peek(pos, "a list item or 'e'")? != b'e' {
                    pos = self.value(pos, depth + 1)?;
                }
                Ok(pos + 1)
            }
            b'd' => {
                self.enter(pos, depth)?;
                self.dict(pos, depth)
            }
            found => Err(Error::new(
                pos,
                ErrorKind::UnexpectedByte {
                    found,
                    expected: "a value ('i', 'l', 'd' or a digit)",
                },
            )),
        }
    }

    fn enter(&self, pos: usize, depth: usize) -> Result<(), Error> {
        if depth >= self.rules.max_depth {
            return Err(Error::new(
                pos,
                ErrorKind::TooDeep {
                    max_depth: self.rules.max_depth,
                },
            ));
        }
        Ok(())
    }

    /// Checks the dictionary at `start` and returns where it ends.
    fn dict(&self, start: usize, depth: usize) -> Result<usize, Error> {
        let mut pos = start + 1;
        let mut previous: Option<&[u8]> = None;
        let mut entries = 0usize;
        loop {
            let key_start = pos;
            match self.peek(pos, "a dictionary key or 'e'")? {
                b'e' => break,
                b'0'..=b'9' => {}
                found => {
                    return Err(Error::new(
                        pos,
                        ErrorKind::UnexpectedByte {
                            found,
                            expected: "a dictionary key (a byte string) or 'e'",
                        },
                    ));
                }
            }
            let (key, key_end) = self.bytes(pos)?;
            if self.rules.keys == KeyRule::SortedUnique {
                if let Some(previous) = previous {
                    if key == previous {
                        return Err(Error::new(key_start, ErrorKind::DuplicateKey));
                    }
                    if key < previous {
                        return Err(Error::new(key_start, ErrorKind::UnsortedKey));
                    }
                }
                previous = Some(key);
            }
            pos = self.value(key_end, depth + 1)?;
            entries += 1;
        }
        if self.rules.keys == KeyRule::Unique && entries > 1 {
            self.check_unique_keys(start, entries)?;
        }
        Ok(pos + 1)
    }

    /// Finds a key that appears twice in the (already checked) dictionary
    /// at `start`, and reports its later occurrence.
    fn check_unique_keys(&self, start: usize, entries: usize) -> Result<(), Error> {
        let trusted = Parser::new(self.input, Rules::TRUSTED);
        // Key offsets fit u32 unless the input is over 4 GiB; a dictionary
        // beyond that is refused rather than checked with wider offsets.
        let too_large = || Error::new(start, ErrorKind::InputTooLarge);
        let mut offsets: Vec<u32> = Vec::with_capacity(entries);
        let mut pos = start + 1;
        while self.input.get(pos).is_some_and(|&b| b != b'e') {
            offsets.push(u32::try_from(pos).map_err(|_| too_large())?);
            let (_, key_end) = self.bytes(pos)?;
            pos = trusted.skip_value(key_end)?;
        }
        let key = |offset: u32| self.bytes(offset as usize).map_or(&[][..], |(key, _)| key);
        offsets.sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        match offsets.windows(2).find(|w| key(w[0]) == key(w[1])) {
            Some(pair) => Err(Error::new(pair[1] as usize, ErrorKind::DuplicateKey)),
            None => Ok(()),
        }
    }

    /// Checks `i<digits>e` at `pos`; returns where it ends.
    fn int(&self, pos: usize) -> Result<usize, Error> {
        let mut start = pos + 1; // 'i'
        let negative = self.peek(start, "an integer")? == b'-';
        if negative {
            start += 1;
        }
        let (magnitude, end) = self.digits(start, b'e', "a digit or 'e'")?;
        if end == start {
            let expected = "a digit";
            return Err(Error::new(
                end,
                ErrorKind::UnexpectedByte {
                    found: b'e',
                    expected,
                },
            ));
        }
        let limit = if negative {
            i64::MIN.unsigned_abs()
        } else {
            i64::MAX as u64
        };
        match magnitude {
            Some(0) if negative => Err(Error::new(start - 1, ErrorKind::NegativeZero)),
            Some(n) if n <= limit => Ok(end + 1),
            _ => Err(Error::new(start, ErrorKind::IntegerOverflow)),
        }
    }

    /// Checks `<length>:<bytes>` at `start`, which holds a digit; returns the
    /// string's contents and where it ends.
    fn bytes(&self, start: usize) -> Result<(&'a [u8], usize), Error> {
        let (length, colon) = self.digits(start, b':', "a digit or ':'")?;
        let pos = colon + 1;
        let remaining = self.input.len() - pos;
        match length.and_then(|l| usize::try_from(l).ok()) {
            Some(len) if len <= remaining => Ok((&self.input[pos..pos + len], pos + len)),
            _ => {
                let length = length.unwrap_or(u64::MAX);
                Err(Error::new(
                    start,
                    ErrorKind::LengthPastEnd { length, remaining },
                ))
            }
        }
    }

    /// Reads decimal digits from `start` up to `terminator`, refusing a
    /// leading zero. Returns their value (`None` past `u64::MAX`) and where
    /// the terminator is.
    fn digits(
        &self,
        start: usize,
        terminator: u8,
        expected: &'static str,
    ) -> Result<(Option<u64>, usize), Error> {
        let mut pos = start;
        let mut value = Some(0u64);
        loop {
            match self.peek(pos, expected)? {
                b if b == terminator => return Ok((value, pos)),
                b @ b'0'..=b'9' => {
                    if pos > start && self.input[start] == b'0' {
                        return Err(Error::new(start, ErrorKind::LeadingZero));
                    }
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(b - b'0')));
                    pos += 1;
                }
                found => {
                    return Err(Error::new(
                        pos,
                        ErrorKind::UnexpectedByte { found, expected },
                    ));
                }
            }
        }
    }
}
