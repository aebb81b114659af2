//! Typed access to bencoded fields, each error naming the field.

use std::collections::BTreeMap;

use bencode::{Dict, List, OwnedValue, Value};

use crate::error::{Error, Result};

pub(crate) fn missing(field: &str) -> Error {
    Error::Missing {
        field: field.into(),
    }
}

pub(crate) fn bad(field: &str, problem: String) -> Error {
    Error::BadValue {
        field: field.into(),
        problem,
    }
}

fn wrong(value: Value<'_>, field: &str, expected: &'static str) -> Error {
    Error::WrongType {
        field: field.into(),
        expected,
        found: value.kind_name(),
    }
}

pub(crate) fn required<'a>(dict: Dict<'a>, key: &[u8], field: &str) -> Result<Value<'a>> {
    dict.get(key).ok_or_else(|| missing(field))
}

pub(crate) fn dict<'a>(value: Value<'a>, field: &str) -> Result<Dict<'a>> {
    value
        .as_dict()
        .ok_or_else(|| wrong(value, field, "a dictionary"))
}

pub(crate) fn list<'a>(value: Value<'a>, field: &str) -> Result<List<'a>> {
    value.as_list().ok_or_else(|| wrong(value, field, "a list"))
}

pub(crate) fn bytes<'a>(value: Value<'a>, field: &str) -> Result<&'a [u8]> {
    value
        .as_bytes()
        .ok_or_else(|| wrong(value, field, "a byte string"))
}

pub(crate) fn int(value: Value<'_>, field: &str) -> Result<i64> {
    value
        .as_int()
        .ok_or_else(|| wrong(value, field, "an integer"))
}

pub(crate) fn length(value: Value<'_>, field: &str) -> Result<u64> {
    let n = int(value, field)?;
    u64::try_from(n).map_err(|_| bad(field, format!("must not be negative, not {n}")))
}

/// A string that must be UTF-8.
pub(crate) fn string(value: Value<'_>, field: &str) -> Result<String> {
    let b = bytes(value, field)?;
    String::from_utf8(b.to_vec()).map_err(|_| bad(field, "is not valid UTF-8".into()))
}

/// A string for display or a file name: invalid UTF-8 becomes U+FFFD, as
/// other clients show it, rather than refusing the whole torrent.
pub(crate) fn lossy(value: Value<'_>, field: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(bytes(value, field)?).into_owned())
}

pub(crate) fn opt_string(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<String>> {
    dict.get(key).map(|v| string(v, field)).transpose()
}

pub(crate) fn opt_lossy(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<String>> {
    dict.get(key).map(|v| lossy(v, field)).transpose()
}

pub(crate) fn opt_int(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<i64>> {
    dict.get(key).map(|v| int(v, field)).transpose()
}

/// The entries whose keys are not in `known`, copied out.
pub(crate) fn extra_keys(dict: Dict<'_>, known: &[&[u8]]) -> BTreeMap<Vec<u8>, OwnedValue> {
    dict.iter()
        .filter(|(k, _)| !known.contains(k))
        .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
        .collect()
}

/// A UTF-8 string value, or `None` for anything else.
pub(crate) fn text(value: Value<'_>) -> Option<String> {
    value.as_str().map(str::to_string)
}
