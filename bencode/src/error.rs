use std::fmt;

/// A decoding failure: where in the input it happened and what was wrong.
///
/// The offset is the index of the first byte that could not be accepted (or the
/// input's length, when the input ended too early), so a caller can point at it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct Error {
    offset: usize,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        Error { offset, kind }
    }

    /// The byte offset in the input where decoding failed.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// True when the input could be the beginning of a valid value that was
    /// cut off: it ended early, or a byte string runs past its end.
    ///
    /// A streaming caller can wait for more bytes when this is true (bounding
    /// how many it is willing to wait for); any other error means the input is
    /// invalid whatever follows.
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::UnexpectedEnd { .. } | ErrorKind::LengthPastEnd { .. }
        )
    }
}

/// The ways bencode input can be invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended where more was expected.
    UnexpectedEnd {
        /// What was expected instead of the end.
        expected: &'static str,
    },
    /// A byte that cannot appear here.
    UnexpectedByte {
        /// The byte found.
        found: u8,
        /// What was expected instead.
        expected: &'static str,
    },
    /// An integer or a string length written with a leading zero (`i03e`, `03:abc`).
    LeadingZero,
    /// The integer `i-0e`, which BEP 3 forbids.
    NegativeZero,
    /// An integer outside the range of `i64`.
    IntegerOverflow,
    /// A byte string whose declared length runs past the end of the input.
    LengthPastEnd {
        /// The declared length (saturated at `u64::MAX`).
        length: u64,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A dictionary key that is not greater than the key before it (strict mode).
    UnsortedKey,
    /// A dictionary key that appears twice in one dictionary.
    DuplicateKey,
    /// Lists and dictionaries nested deeper than the decoder's limit.
    TooDeep {
        /// The limit in force.
        max_depth: usize,
    },
    /// Bytes after the end of the top-level value.
    TrailingData,
    /// A lenient decode of a dictionary lying past the first 4 GiB of input.
    InputTooLarge,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnexpectedEnd { expected } => {
                write!(f, "input ended early, expected {expected}")
            }
            ErrorKind::UnexpectedByte { found, expected } => {
                write!(
                    f,
                    "unexpected byte {}, expected {expected}",
                    Printable(*found)
                )
            }
            ErrorKind::LeadingZero => f.write_str("number with a leading zero"),
            ErrorKind::NegativeZero => f.write_str("negative zero (i-0e) is not allowed"),
            ErrorKind::IntegerOverflow => f.write_str("integer does not fit in 64 bits"),
            ErrorKind::LengthPastEnd { length, remaining } => write!(
                f,
                "byte string of length {length} runs past the end of the input ({remaining} bytes left)"
            ),
            ErrorKind::UnsortedKey => {
                f.write_str("dictionary key is out of order (keys must be sorted)")
            }
            ErrorKind::DuplicateKey => f.write_str("dictionary key appears twice"),
            ErrorKind::TooDeep { max_depth } => {
                write!(f, "lists and dictionaries nested deeper than {max_depth}")
            }
            ErrorKind::TrailingData => f.write_str("unexpected data after the end of the value"),
            ErrorKind::InputTooLarge => f.write_str("input over 4 GiB"),
        }
    }
}

/// Shows a byte as a quoted character when printable, else in hex.
struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}
