//! Glob patterns over a torrent's file paths (`dir/name`, components joined with `/`).

/// Return whether `path` matches `pattern`.
///
/// `*` matches any run of characters within one path component, `?` one character other than
/// `/`, `**` any run of characters across components (`**/` also matches nothing, so `**/x`
/// matches `x`). A pattern without `/` is also tried against the file's own name (the last
/// component), so `*.iso` matches `disc/image.iso`. Every other character matches itself.
/// Matching backtracks, so its cost grows with the number of `*` in the pattern; it never
/// allocates or panics.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    if matches(p, s) {
        return true;
    }
    match (pattern.contains('/'), path.rsplit_once('/')) {
        (false, Some((_, name))) => matches(p, name.as_bytes()),
        _ => false,
    }
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    match p {
        [] => s.is_empty(),
        [b'*', b'*', rest @ ..] => {
            let rest = trim_stars(rest);
            if let [b'/', after @ ..] = rest {
                if matches(after, s) {
                    return true;
                }
            }
            (0..=s.len()).any(|k| matches(rest, &s[k..]))
        }
        [b'*', rest @ ..] => {
            for k in 0..=s.len() {
                if matches(rest, &s[k..]) {
                    return true;
                }
                if s.get(k) == Some(&b'/') {
                    return false;
                }
            }
            false
        }
        [b'?', rest @ ..] => match s.first() {
            Some(&c) if c != b'/' => matches(rest, &s[char_len(c).min(s.len())..]),
            _ => false,
        },
        [c, rest @ ..] => s.first() == Some(c) && matches(rest, &s[1..]),
    }
}

/// Drop the `*` that follow a `**` (`***` is `**`).
fn trim_stars(mut p: &[u8]) -> &[u8] {
    while let [b'*', rest @ ..] = p {
        p = rest;
    }
    p
}

/// The length of the UTF-8 character that starts with byte `c`.
fn char_len(c: u8) -> usize {
    match c {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_stay_in_a_component_and_double_stars_cross() {
        assert!(glob_match("a.txt", "a.txt"));
        assert!(!glob_match("a.txt", "a.txt2"));
        assert!(glob_match("*.txt", "a.txt"));
        assert!(
            glob_match("*.txt", "docs/a.txt"),
            "a bare pattern matches the name"
        );
        assert!(!glob_match("docs/*.txt", "docs/sub/a.txt"));
        assert!(glob_match("docs/*/a.txt", "docs/sub/a.txt"));
        assert!(glob_match("docs/**", "docs/sub/a.txt"));
        assert!(glob_match("**/a.txt", "a.txt"));
        assert!(glob_match("**/a.txt", "x/y/a.txt"));
        assert!(glob_match("d*s/**/*.txt", "docs/a.txt"));
        assert!(!glob_match("*.txt", "a.txt/b"));
        assert!(glob_match("?.txt", "é.txt"));
        assert!(!glob_match("a?b", "a/b"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("***", "a/b"));
    }
}
