//! PEP 440 versions: parsing, the canonical form, and ordering.

use std::cmp::Ordering;

/// A parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Option<String>,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if start == self.i || self.i - start > 18 {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn sep(&mut self) -> bool {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// `[sep] word [sep] [number]` (the number defaults to 0); the cursor does not move when no
    /// word of `words` is there. Returns the word's index and the number.
    fn tagged(&mut self, words: &[&str]) -> Option<(usize, u64)> {
        let start = self.i;
        self.sep();
        let Some(w) = self.word(words) else {
            self.i = start;
            return None;
        };
        let before_number = self.i;
        self.sep();
        let n = self.number().unwrap_or_else(|| {
            self.i = before_number;
            0
        });
        Some((w, n))
    }

    /// Consumes the longest of `words` at the cursor.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.s[self.i..];
        let mut best: Option<(usize, usize)> = None;
        for (n, w) in words.iter().enumerate() {
            if rest.starts_with(w.as_bytes()) && best.is_none_or(|(_, l)| w.len() > l) {
                best = Some((n, w.len()));
            }
        }
        let (n, l) = best?;
        self.i += l;
        Some(n)
    }
}

impl Version {
    /// Parses a PEP 440 version (case-insensitive, an optional leading `v`).
    pub fn parse(input: &str) -> Option<Self> {
        let lower = input.trim().to_ascii_lowercase();
        if lower.is_empty() || lower.len() > MAX_VERSION_LEN {
            return None;
        }
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        let mut c = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        let first = c.number()?;
        let mut epoch = 0;
        let mut release = vec![first];
        if c.peek() == Some(b'!') {
            c.i += 1;
            epoch = first;
            release = vec![c.number()?];
        }
        while c.peek() == Some(b'.') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            release.push(c.number()?);
        }
        let pre = c
            .tagged(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"])
            .map(|(w, n)| {
                (
                    if w < 2 {
                        0
                    } else if w < 4 {
                        1
                    } else {
                        2
                    },
                    n,
                )
            });
        let post = if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            Some(c.number()?)
        } else {
            c.tagged(&["post", "rev", "r"]).map(|(_, n)| n)
        };
        let dev = c.tagged(&["dev"]).map(|(_, n)| n);
        let local = if c.peek() == Some(b'+') {
            c.i += 1;
            let rest = std::str::from_utf8(&c.s[c.i..]).ok()?;
            let parts: Vec<&str> = rest.split(['.', '-', '_']).collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return None;
            }
            c.i = c.s.len();
            Some(parts.join("."))
        } else {
            None
        };
        if c.i != c.s.len() {
            return None;
        }
        Some(Self {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The canonical form (`1.0.0-Alpha1` → `1.0.0a1`).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        if self.epoch != 0 {
            out.push_str(&format!("{}!", self.epoch));
        }
        let rel: Vec<String> = self.release.iter().map(u64::to_string).collect();
        out.push_str(&rel.join("."));
        if let Some((k, n)) = self.pre {
            out.push_str(["a", "b", "rc"][usize::from(k)]);
            out.push_str(&n.to_string());
        }
        if let Some(n) = self.post {
            out.push_str(&format!(".post{n}"));
        }
        if let Some(n) = self.dev {
            out.push_str(&format!(".dev{n}"));
        }
        if let Some(l) = &self.local {
            out.push('+');
            out.push_str(l);
        }
        out
    }

    fn trimmed_release(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 1 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }

    fn key(&self) -> (u64, &[u64], (i8, u64), i64, u64) {
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0),
            (None, _, _) => (3, 0),
            (Some((k, n)), _, _) => (k as i8, n),
        };
        let post = self
            .post
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let dev = self.dev.unwrap_or(u64::MAX);
        (self.epoch, self.trimmed_release(), pre, post, dev)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .cmp(&other.key())
            .then_with(|| self.local.cmp(&other.local))
    }
}

/// The canonical form of `v`, if it is a valid version.
pub fn canonical(v: &str) -> Option<String> {
    // The canonical form can be longer than what was written ("1-2" is "1.post2"); it must
    // itself be a version, within the same length bound.
    Version::parse(v)
        .map(|v| v.canonical())
        .filter(|c| c.len() <= MAX_VERSION_LEN)
}

/// Longest version accepted, as written and in canonical form.
const MAX_VERSION_LEN: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `names` fuzz target: a 128-character version whose canonical form is
    /// longer was canonicalized to something that is not a version.
    #[test]
    fn canonical_forms_stay_versions() {
        let long = format!("2-20+e.tar-pkgk{}g.egg", "Z".repeat(108));
        assert_eq!(long.len(), 128);
        assert_eq!(canonical(&long), None);
        for v in ["1-2", "1.0-post-3", "1!2.0rc1-4"] {
            let c = canonical(v).expect("version");
            assert_eq!(canonical(&c).as_deref(), Some(c.as_str()), "{v}");
        }
    }

    #[test]
    fn canonical_forms() {
        for (raw, want) in [
            ("1.0", "1.0"),
            ("v1.0", "1.0"),
            ("1.0.0-Alpha1", "1.0.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.post", "1.0.post0"),
            ("1.0-rev3", "1.0.post3"),
            ("1.0.dev", "1.0.dev0"),
            (
                "1!2.0rc1.post2.dev3+Ubuntu-1",
                "1!2.0rc1.post2.dev3+ubuntu.1",
            ),
            ("2026.12.02", "2026.12.2"),
        ] {
            assert_eq!(canonical(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in [
            "", "x", "1.0-", "1..0", "1.0+", "1.0+a..b", "1.0 beta", "1.0/2", "1.0foo",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ordering() {
        let order = [
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.1",
            "2!0.1",
        ];
        for w in order.windows(2) {
            let (a, b) = (Version::parse(w[0]).unwrap(), Version::parse(w[1]).unwrap());
            assert!(a < b, "{} < {}", w[0], w[1]);
        }
        assert_eq!(
            Version::parse("1.0")
                .unwrap()
                .cmp(&Version::parse("1.0.0").unwrap()),
            Ordering::Equal
        );
    }
}
