//! Reading a `.deb`: the ar container, the control archive in any compression dpkg writes, and
//! the control paragraph, checked against Debian policy before any of it reaches an index.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use artifactd_plugin_api::{Error, Result};

/// Largest compressed control archive accepted.
const MAX_CONTROL_MEMBER: u64 = 16 << 20;
/// Largest `control` file accepted.
const MAX_CONTROL_FILE: u64 = 1 << 20;
/// Bytes of the decompressed control archive read at most while looking for `control`.
const MAX_CONTROL_INFLATED: u64 = 64 << 20;

/// Fields the index sets itself; a package that sets them is refused.
const RESERVED: &[&str] = &["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

fn bad(rule: impl Into<String>) -> Error {
    Error::invalid(rule)
}

/// One ar member header.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) offset: u64,
}

/// The next ar member header of `f`, `None` at its end.
pub(crate) fn read_member(f: &mut File, file_len: u64) -> Result<Option<Member>> {
    let pos = f.stream_position()?;
    if pos == file_len {
        return Ok(None);
    }
    let mut h = [0u8; 60];
    f.read_exact(&mut h)
        .map_err(|_| bad("The .deb is truncated inside an ar member header."))?;
    if &h[58..60] != b"`\n" {
        return Err(bad("The .deb has a corrupt ar member header."));
    }
    let name = String::from_utf8_lossy(&h[..16])
        .trim_end()
        .trim_end_matches('/')
        .to_owned();
    let size: u64 = String::from_utf8_lossy(&h[48..58])
        .trim()
        .parse()
        .map_err(|_| bad("The .deb has an ar member with an unreadable size."))?;
    let offset = pos + 60;
    let end = offset
        .checked_add(size)
        .filter(|e| *e <= file_len)
        .ok_or_else(|| {
            bad(format!(
                "The .deb is truncated: member {name:?} runs past the end of the file."
            ))
        })?;
    // Members are padded to an even offset.
    let next = end + (end % 2);
    if next > file_len && end != file_len {
        return Err(bad("The .deb is truncated after its last member."));
    }
    f.seek(SeekFrom::Start(next.min(file_len)))?;
    Ok(Some(Member { name, size, offset }))
}

/// The control paragraph of a `.deb`, as text.
///
/// # Errors
/// [`Error::InvalidInput`] naming what is wrong with the container or the control archive.
pub fn control_text(path: &Path) -> Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 8];
    if f.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Err(bad(
            "The file is not a Debian package (no ar archive header).",
        ));
    }
    let mut members = Vec::new();
    while let Some(m) = read_member(&mut f, len)? {
        members.push(m);
        if members.len() > 16 {
            return Err(bad("The .deb has too many ar members."));
        }
    }
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    if names.first() != Some(&"debian-binary") {
        return Err(bad("The .deb must start with the debian-binary member."));
    }
    let first = &members[0];
    let mut version = vec![0u8; first.size.min(16) as usize];
    f.seek(SeekFrom::Start(first.offset))?;
    f.read_exact(&mut version)?;
    if !version.starts_with(b"2.") {
        return Err(bad("The .deb format version is not 2.x."));
    }
    let control = members
        .get(1)
        .filter(|m| m.name.starts_with("control.tar"))
        .ok_or_else(|| bad("The second member of a .deb must be control.tar, control.tar.gz, control.tar.xz or control.tar.zst."))?;
    let data = members
        .get(2)
        .filter(|m| m.name.starts_with("data.tar"))
        .ok_or_else(|| bad("The third member of a .deb must be a data.tar archive."))?;
    if !matches!(
        data.name.as_str(),
        "data.tar"
            | "data.tar.gz"
            | "data.tar.xz"
            | "data.tar.zst"
            | "data.tar.bz2"
            | "data.tar.lzma"
    ) {
        return Err(bad(format!(
            "The data member {:?} uses an unsupported compression.",
            data.name
        )));
    }
    if let Some(extra) = members[3..].iter().find(|m| !m.name.starts_with('_')) {
        return Err(bad(format!(
            "The .deb has an unexpected member {:?} after data.tar (dpkg allows only names starting with '_' there).",
            extra.name
        )));
    }
    if control.size > MAX_CONTROL_MEMBER {
        return Err(bad(format!(
            "The control archive is larger than {MAX_CONTROL_MEMBER} bytes."
        )));
    }
    let mut raw = vec![0u8; control.size as usize];
    f.seek(SeekFrom::Start(control.offset))?;
    f.read_exact(&mut raw)?;
    let reader: Box<dyn Read> = match control.name.as_str() {
        "control.tar" => Box::new(&raw[..]),
        "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(&raw[..])),
        "control.tar.xz" => Box::new(liblzma::read::XzDecoder::new(&raw[..])),
        "control.tar.zst" => Box::new(
            ruzstd::decoding::StreamingDecoder::new(&raw[..])
                .map_err(|e| bad(format!("The control archive is not valid zstd ({e}).")))?,
        ),
        other => {
            return Err(bad(format!(
                "The control member {other:?} uses an unsupported compression (dpkg accepts none, gz, xz and zst)."
            )));
        }
    };
    let inflated = std::cell::Cell::new(0u64);
    let counted = Counted {
        inner: reader.take(MAX_CONTROL_INFLATED + 1),
        count: &inflated,
    };
    let too_big = || {
        bad(format!(
            "The control archive inflates to more than {MAX_CONTROL_INFLATED} bytes."
        ))
    };
    let invalid = |e: std::io::Error| {
        if inflated.get() > MAX_CONTROL_INFLATED {
            too_big()
        } else {
            bad(format!(
                "The control archive is not a valid tar archive ({e})."
            ))
        }
    };
    let mut archive = tar::Archive::new(counted);
    let mut text = None;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let p = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = p.strip_prefix("./").unwrap_or(&p);
        let kind = entry.header().entry_type();
        if name.starts_with('/') || name.split('/').any(|s| s == "..") {
            return Err(bad(format!(
                "The control archive has a member {p:?} outside its folder."
            )));
        }
        if !(kind.is_file() || kind.is_dir()) {
            return Err(bad(format!(
                "The control archive member {p:?} is not a regular file (links, devices and sparse files are refused)."
            )));
        }
        if name == "control" && kind.is_file() {
            if text.is_some() {
                return Err(bad("The control archive has two control files."));
            }
            if entry.header().size().unwrap_or(u64::MAX) > MAX_CONTROL_FILE {
                return Err(bad(format!(
                    "The control file is larger than {MAX_CONTROL_FILE} bytes."
                )));
            }
            let mut t = String::new();
            (&mut entry)
                .take(MAX_CONTROL_FILE + 1)
                .read_to_string(&mut t)
                .map_err(|_| bad("The control file is not valid UTF-8."))?;
            text = Some(t);
        }
    }
    if inflated.get() > MAX_CONTROL_INFLATED {
        return Err(too_big());
    }
    if inflated.get() > 1 << 20 && inflated.get() / control.size.max(1) > 250 {
        return Err(bad(
            "The control archive compresses more than 250:1, as only a decompression bomb does.",
        ));
    }
    text.ok_or_else(|| bad("The control archive has no control file."))
}

/// Counts the bytes read through it.
struct Counted<'c, R> {
    inner: R,
    count: &'c std::cell::Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A checked control paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// The source package name (from `Source`, else the package).
    pub source: String,
    /// The first line of `Description`.
    pub summary: String,
    /// `Depends`.
    pub depends: String,
    /// The paragraph's lines, verbatim, without a trailing newline.
    pub stanza: String,
}

/// The value of field `name` in a control paragraph, continuation lines joined by spaces.
pub fn field(paragraph: &str, name: &str) -> Option<String> {
    let mut lines = paragraph.lines();
    let first = lines.find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| !k.starts_with([' ', '\t']))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    })?;
    let mut value = first;
    for l in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        value.push(' ');
        value.push_str(l.trim());
    }
    Some(value)
}

/// Debian policy 5.6.7.
pub fn valid_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 128
        && (s.as_bytes()[0].is_ascii_lowercase() || s.as_bytes()[0].is_ascii_digit())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

/// Debian policy 5.6.12: `[epoch:]upstream[-revision]`.
pub fn valid_version(v: &str) -> bool {
    if v.is_empty() || v.len() > 128 {
        return false;
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let upstream_ok = upstream.starts_with(|c: char| c.is_ascii_digit())
        && upstream.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'+' | b'~')
                || (b == b'-' && revision.is_some())
        });
    let revision_ok = revision.is_none_or(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~'))
    });
    upstream_ok && revision_ok
}

/// Orders two Debian versions as dpkg does (policy 5.6.12): epoch, then upstream version,
/// then revision, each compared by alternating non-digit parts (`~` before everything, letters
/// before other characters) and numeric parts.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream, revision)
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            Some(b'~') => -1,
            None => 0,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    fn part(a: &str, b: &str) -> std::cmp::Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            while a.first().is_some_and(|c| !c.is_ascii_digit())
                || b.first().is_some_and(|c| !c.is_ascii_digit())
            {
                let (x, y) = (order(a.first().copied()), order(b.first().copied()));
                if x != y {
                    return x.cmp(&y);
                }
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
            }
            let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (na, nb) = (digits(a), digits(b));
            // Compared as numbers of any length: without leading zeros, by length, then digits.
            let num = |s: &[u8]| {
                let t = &s[s.iter().take_while(|c| **c == b'0').count()..];
                (t.len(), t.to_vec())
            };
            let ord = num(&a[..na]).cmp(&num(&b[..nb]));
            if ord.is_ne() {
                return ord;
            }
            a = &a[na..];
            b = &b[nb..];
        }
        std::cmp::Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

fn valid_arch(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 32
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && a != "any"
        && a != "source"
}

/// Checks a control paragraph and keeps its text verbatim for the index.
///
/// # Errors
/// [`Error::InvalidInput`] naming the rule.
pub fn parse_control(text: &str) -> Result<Control> {
    let parsed = deb822_lossless::Deb822::parse(text);
    if !parsed.ok() {
        return Err(bad(format!(
            "The control file does not parse: {}.",
            parsed
                .errors()
                .first()
                .map(String::as_str)
                .unwrap_or("syntax error")
        )));
    }
    let doc = parsed.tree();
    let paragraphs: Vec<_> = doc.paragraphs().collect();
    let [para] = paragraphs.as_slice() else {
        return Err(bad("The control file must hold exactly one paragraph."));
    };
    // Verbatim lines: fields and continuation lines only, no blank or comment lines inside.
    let body = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    let mut lines = Vec::new();
    let mut keys = Vec::new();
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("The control file contains control characters."));
        }
        if line.trim().is_empty() {
            return Err(bad(
                "The control file has an empty line inside its paragraph (use \" .\" for blank description lines).",
            ));
        }
        if line.starts_with(['#']) {
            return Err(bad("The control file has comment lines."));
        }
        if !line.starts_with([' ', '\t']) {
            let (k, _) = line.split_once(':').ok_or_else(|| {
                bad(format!(
                    "The control file has a line that is not \"Field: value\": {:?}.",
                    line.chars().take(60).collect::<String>()
                ))
            })?;
            if k.is_empty()
                || k.len() > 64
                || !k.starts_with(|c: char| c.is_ascii_alphanumeric())
                || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            {
                return Err(bad(format!(
                    "The control file has an invalid field name {k:?}."
                )));
            }
            if keys.iter().any(|x: &String| x.eq_ignore_ascii_case(k)) {
                return Err(bad(format!("The control file sets the field {k} twice.")));
            }
            if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k)) {
                return Err(bad(format!(
                    "The control file may not set {k}; the repository computes it."
                )));
            }
            keys.push(k.to_owned());
        } else if lines.is_empty() {
            return Err(bad("The control file starts with a continuation line."));
        }
        lines.push(line);
    }
    let field = |name: &str| {
        para.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let package = field("Package").ok_or_else(|| bad("The control file has no Package field."))?;
    let version = field("Version").ok_or_else(|| bad("The control file has no Version field."))?;
    let architecture =
        field("Architecture").ok_or_else(|| bad("The control file has no Architecture field."))?;
    if !valid_package_name(&package) {
        return Err(bad(format!(
            "The package name {package:?} breaks Debian policy: 2 or more lower-case letters, digits, '+', '-' or '.', starting with a letter or digit."
        )));
    }
    if !valid_version(&version) {
        return Err(bad(format!(
            "The version {version:?} breaks Debian policy ([epoch:]upstream[-revision])."
        )));
    }
    if !valid_arch(&architecture) {
        return Err(bad(format!(
            "The architecture {architecture:?} is not a single Debian architecture."
        )));
    }
    let source = field("Source")
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| package.clone());
    if !valid_package_name(&source) {
        return Err(bad(format!(
            "The source package name {source:?} breaks Debian policy."
        )));
    }
    Ok(Control {
        summary: field("Description")
            .map(|d| d.lines().next().unwrap_or_default().to_owned())
            .unwrap_or_default(),
        depends: field("Depends").unwrap_or_default(),
        package,
        version,
        architecture,
        source,
        stanza: lines.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        for (a, b, want) in [
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1:0.1-1", "2.0-1", Greater),
            ("1.0", "1.0-0", Equal),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0.1", Less),
            ("2.10", "2.9", Greater),
            ("1.002", "1.2", Equal),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn versions_and_names() {
        for v in [
            "1.0",
            "3.6.7-1~18.04",
            "1:2.0-1",
            "2.0+dfsg-1ubuntu0.1",
            "1.0~rc1",
            "1.2-3-4",
        ] {
            assert!(valid_version(v), "{v}");
        }
        for v in [
            "", "a1.0", "1.0-", ":1.0", "x:1.0", "1.0 beta", "1.0_2", "1.0-a_b",
        ] {
            assert!(!valid_version(v), "{v}");
        }
        assert!(valid_package_name("python3"));
        assert!(valid_package_name("libc6-dev"));
        assert!(!valid_package_name("a"));
        assert!(!valid_package_name("Foo"));
        assert!(!valid_package_name("foo_bar"));
    }

    #[test]
    fn control_paragraphs() {
        let c = parse_control("Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@b.c>\nDescription: greets\n Longer text.\n .\n More.\n").unwrap();
        assert_eq!(c.package, "hello");
        assert_eq!(c.summary, "greets");
        assert!(c.stanza.ends_with(" More."));
        for (bad, why) in [
            ("Version: 1\nArchitecture: all\n", "no Package"),
            (
                "Package: hello\nVersion: 1\nArchitecture: all\nFilename: ../../etc/passwd\n",
                "may not set Filename",
            ),
            (
                "Package: hello\nVersion: 1\nArchitecture: all\n\nPackage: evil\nVersion: 1\nArchitecture: all\n",
                "paragraph",
            ),
            (
                "Package: hello\nVersion: 1\nArchitecture: all\nDescription: x\n\n",
                "",
            ),
            ("Package: Hello\nVersion: 1\nArchitecture: all\n", "policy"),
            (
                "Package: hello\nVersion: 1\nArchitecture: any\n",
                "architecture",
            ),
            (
                "Package: hello\nPackage: again\nVersion: 1\nArchitecture: all\n",
                "",
            ),
        ] {
            let r = parse_control(bad);
            if why.is_empty() {
                // Trailing blank lines are fine; only the duplicate field must fail.
                if bad.contains("again") {
                    assert!(r.is_err(), "{bad:?}");
                }
                continue;
            }
            let e = r.expect_err(bad).to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
