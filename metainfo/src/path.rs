//! Path safety: the rules that keep a torrent's files inside the download
//! folder, applied when a torrent is parsed.

use crate::error::{Error, Result};

/// Checks one component of a file path (or the torrent's name).
///
/// Refused rather than sanitised: a torrent whose paths try to climb out of
/// the download folder is hostile or broken, and silently renaming its files
/// would hand the user something other than what the torrent describes.
pub(crate) fn check_component(component: &str) -> Result<(), &'static str> {
    match component {
        "" => Err("empty path component"),
        "." | ".." => Err("`.` or `..` path component"),
        c if c.contains('/') => Err("`/` inside a path component"),
        // A backslash separates paths on Windows; refuse it everywhere so that a
        // torrent is read the same on every system.
        c if c.contains('\\') => Err("`\\` inside a path component"),
        c if c.contains('\0') => Err("NUL byte in a path component"),
        _ => Ok(()),
    }
}

/// Checks a whole relative path given as components.
pub(crate) fn check_path(components: &[String], field: &str) -> Result<()> {
    if components.is_empty() {
        return Err(Error::UnsafePath {
            field: field.to_string(),
            path: String::new(),
            reason: "empty path",
        });
    }
    for component in components {
        check_component(component).map_err(|reason| Error::UnsafePath {
            field: field.to_string(),
            path: components.join("/"),
            reason,
        })?;
    }
    Ok(())
}

/// Refuses two files with one path, and a file whose path is another file's
/// folder (`a` and `a/b`): either would make one file overwrite another.
///
/// Sorting the paths puts each path right before every path it is a prefix
/// of, so comparing neighbours finds both cases in O(n log n) comparisons,
/// whatever the paths' depth.
///
/// `root` (the folder of a multi-file torrent) is only for the message.
pub(crate) fn check_conflicts<'a>(
    root: Option<&str>,
    paths: impl Iterator<Item = &'a [String]>,
) -> Result<()> {
    let mut paths: Vec<&[String]> = paths.collect();
    paths.sort_unstable();
    for pair in paths.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if first == second {
            return Err(conflict(root, first, "appears twice"));
        }
        if second.starts_with(first) {
            return Err(conflict(root, first, "is both a file and a folder"));
        }
    }
    Ok(())
}

fn conflict(root: Option<&str>, path: &[String], conflict: &'static str) -> Error {
    let path = root.into_iter().chain(path.iter().map(String::as_str));
    Error::PathConflict {
        path: path.collect::<Vec<_>>().join("/"),
        conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(String::from).collect()
    }

    #[test]
    fn hostile_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\..\\b", "nul\0byte"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "...",
            "..a",
            "a..",
            "Ünïcødé 🎵.flac",
            " spaced ",
            ".hidden",
        ] {
            assert!(check_component(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn conflicts_are_found_in_either_order() {
        assert!(check_conflicts(None, [p("a/b"), p("a/c")].iter().map(|v| v.as_slice())).is_ok());
        for pair in [[p("a/b"), p("a/b")], [p("a"), p("a/b")], [p("a/b"), p("a")]] {
            let err = check_conflicts(None, pair.iter().map(|v| v.as_slice())).unwrap_err();
            assert!(matches!(err, Error::PathConflict { .. }), "{pair:?}");
        }
    }
}
