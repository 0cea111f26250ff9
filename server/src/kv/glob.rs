//! Redis's glob patterns (`stringmatchlen`), for KEYS and SCAN MATCH: `*` any run, `?` any
//! byte, `[...]` a set (`^` negates, `a-z` ranges either way round, `\` escapes), `\x` the
//! byte x. Bytes, not characters, and case-sensitive.
//!
//! Invariant: a malformed pattern never panics; it matches as Redis's does (an unclosed `[`
//! runs to the end of the pattern).

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    matches_from(pattern, text, 0)
}

fn matches_from(mut p: &[u8], mut s: &[u8], depth: usize) -> bool {
    // Redis gives up past this nesting of stars (a pathological pattern).
    if depth > 1000 {
        return false;
    }
    while let Some(&c) = p.first() {
        match c {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for start in 0..=s.len() {
                    if matches_from(&p[1..], &s[start..], depth + 1) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                let Some(&b) = s.first() else { return false };
                let (hit, rest) = class(&p[1..], b);
                if !hit {
                    return false;
                }
                p = rest;
                s = &s[1..];
                if s.is_empty() {
                    return p.iter().all(|&c| c == b'*');
                }
                continue;
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.first() != Some(&p[0]) {
                    return false;
                }
                s = &s[1..];
            }
            _ => {
                if s.first() != Some(&c) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            return p.iter().all(|&c| c == b'*');
        }
    }
    s.is_empty()
}

/// A `[...]` set (`p` just after the `[`): whether `b` is in it, and the pattern after it.
fn class(mut p: &[u8], b: u8) -> (bool, &[u8]) {
    let not = p.first() == Some(&b'^');
    if not {
        p = &p[1..];
    }
    let mut hit = false;
    loop {
        match p {
            [] => break,
            [b'\\', x, ..] => {
                hit |= *x == b;
                p = &p[2..];
            }
            [b']', ..] => {
                p = &p[1..];
                break;
            }
            [lo, b'-', hi, ..] => {
                let (lo, hi) = if lo <= hi { (*lo, *hi) } else { (*hi, *lo) };
                hit |= (lo..=hi).contains(&b);
                p = &p[3..];
            }
            [x, ..] => {
                hit |= *x == b;
                p = &p[1..];
            }
        }
    }
    (hit != not, p)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_as_redis() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes());
        assert!(m("*", "") && m("*", "abc") && m("a*", "abc") && m("*c", "abc") && m("a*c", "abbbc"));
        assert!(m("h?llo", "hello") && !m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo") && m("h[b-a]llo", "hallo") && !m("h[a-b]llo", "hcllo"));
        assert!(m("h\\*llo", "h*llo") && !m("h\\*llo", "hello"));
        assert!(m("[\\]]", "]") && !m("abc", "ab") && !m("ab", "abc"));
        assert!(m("a**", "a") && m("*a*b*", "xaxxbx") && !m("*a*b*", "xbxa"));
    }
}
