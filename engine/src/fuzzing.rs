//! Entry points for the fuzz targets in `fuzz/`, with the `fuzzing`
//! feature: the sans-IO parts that read strangers' bytes and are not
//! public otherwise. Not an API.

use std::ops::Range;

use crate::webseed::{Verdict, judge};

/// What a web seed makes of an answer with `status` and `headers` to a
/// request of `uri` for `range`: `"body"`, `"redirect URL"`, or
/// `"failed: REASON"`. `None` if the status or a header is not valid HTTP
/// (hyper would not have passed it on).
pub fn web_seed_answer(
    status: u16,
    headers: &[(&[u8], &[u8])],
    uri: &str,
    range: Range<u64>,
) -> Option<String> {
    let status = hyper::StatusCode::from_u16(status).ok()?;
    let uri: hyper::Uri = uri.parse().ok()?;
    let mut map = hyper::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            hyper::header::HeaderName::from_bytes(name).ok()?,
            hyper::header::HeaderValue::from_bytes(value).ok()?,
        );
    }
    Some(match judge(status, &map, &uri, &range) {
        Verdict::Body => "body".to_string(),
        Verdict::Redirect(to) => format!("redirect {to}"),
        Verdict::Failed(failed) => format!("failed: {}", failed.reason),
    })
}
