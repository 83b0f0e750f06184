//! Proxying a Debian-style archive: which paths are signed documents (`InRelease`) and which are
//! files they vouch for, what a verified `InRelease` lists (its `SHA256` entries, and their
//! `by-hash` names when it offers them), and what a `Packages` or `Sources` index lists.

use std::io::{BufRead as _, BufReader, Read};

use artifactd_plugin_api::{Error, ProxyFormat, ProxyPath, Result, Vouch};

/// The APT format as a proxy sees it.
#[derive(Debug, Default)]
pub struct AptProxy;

/// A path segment a Debian archive uses: ASCII letters, digits and `. _ + ~ - % : =`, not `.`
/// or `..`.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'+' | b'~' | b'-' | b'%' | b':' | b'=')
        })
}

fn valid_path(p: &str) -> bool {
    p.len() <= 1024 && p.split('/').all(valid_segment)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The last segment of a path.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The indexes that list pool files, by their name without compression.
fn list_kind(path: &str) -> Option<(&'static str, &str)> {
    let name = basename(path);
    let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
    let kind = match stem {
        "Packages" => "Packages",
        "Sources" => "Sources",
        _ => return None,
    };
    matches!(ext, "" | "gz" | "xz" | "zst").then_some((kind, ext))
}

fn decompress<'a>(ext: &str, body: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
    Ok(match ext {
        "" => Box::new(body),
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(body)),
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(body)),
        "zst" => Box::new(
            ruzstd::decoding::StreamingDecoder::new(body)
                .map_err(|e| Error::invalid(format!("The index is not valid zstd ({e}).")))?,
        ),
        other => {
            return Err(Error::invalid(format!(
                "The index compression {other:?} is not supported."
            )));
        }
    })
}

/// One `<sha256> <size> <name>` line of a multi-line checksum field.
fn checksum_line(line: &str) -> Option<(String, u64, &str)> {
    let mut parts = line.split_whitespace();
    let sha = parts.next()?.to_ascii_lowercase();
    let size = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    (parts.next().is_none() && is_sha256(&sha)).then_some((sha, size, name))
}

/// The value of a `Name: value` line when its field is `name` (case-insensitive).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    k.eq_ignore_ascii_case(name).then(|| v.trim())
}

impl AptProxy {
    /// A `Packages` index: each paragraph's `Filename`, `SHA256` and `Size`.
    fn packages(reader: impl Read) -> Result<Vec<Vouch>> {
        let mut out = Vec::new();
        let (mut file, mut sha, mut size) = (None::<String>, None::<String>, None::<u64>);
        let mut flush =
            |file: &mut Option<String>, sha: &mut Option<String>, size: &mut Option<u64>| {
                if let (Some(f), Some(s)) = (file.take(), sha.take())
                    && valid_path(&f)
                    && is_sha256(&s)
                {
                    out.push(Vouch::new(f, s, *size));
                }
                *size = None;
            };
        for line in BufReader::new(reader).lines() {
            let line =
                line.map_err(|e| Error::invalid(format!("The index cannot be read ({e}).")))?;
            if line.trim().is_empty() {
                flush(&mut file, &mut sha, &mut size);
            } else if let Some(v) = field(&line, "Filename") {
                file = Some(v.to_owned());
            } else if let Some(v) = field(&line, "SHA256") {
                sha = Some(v.to_ascii_lowercase());
            } else if let Some(v) = field(&line, "Size") {
                size = v.parse().ok();
            }
        }
        flush(&mut file, &mut sha, &mut size);
        Ok(out)
    }

    /// A `Sources` index: each paragraph's `Directory` joined with its `Checksums-Sha256`
    /// files.
    fn sources(reader: impl Read) -> Result<Vec<Vouch>> {
        let mut out = Vec::new();
        let mut dir = None::<String>;
        let mut files: Vec<(String, u64, String)> = Vec::new();
        let mut in_sums = false;
        let mut flush = |dir: &mut Option<String>, files: &mut Vec<(String, u64, String)>| {
            if let Some(d) = dir.take() {
                for (sha, size, name) in files.drain(..) {
                    let path = format!("{d}/{name}");
                    if valid_path(&path) {
                        out.push(Vouch::new(path, sha, Some(size)));
                    }
                }
            }
            files.clear();
        };
        for line in BufReader::new(reader).lines() {
            let line =
                line.map_err(|e| Error::invalid(format!("The index cannot be read ({e}).")))?;
            if line.trim().is_empty() {
                flush(&mut dir, &mut files);
                in_sums = false;
            } else if line.starts_with([' ', '\t']) {
                if in_sums && let Some((sha, size, name)) = checksum_line(&line) {
                    files.push((sha, size, name.to_owned()));
                }
            } else {
                in_sums = field(&line, "Checksums-Sha256").is_some();
                if let Some(v) = field(&line, "Directory") {
                    dir = Some(v.to_owned());
                }
            }
        }
        flush(&mut dir, &mut files);
        Ok(out)
    }
}

impl ProxyFormat for AptProxy {
    fn signed(&self) -> bool {
        true
    }

    fn classify(&self, path: &str) -> ProxyPath {
        match path {
            "pubkey" | "pubkey.asc" => return ProxyPath::Keyring { armored: true },
            "pubkey.gpg" => return ProxyPath::Keyring { armored: false },
            _ => {}
        }
        if !valid_path(path) {
            return ProxyPath::NotFound;
        }
        if let Some(rest) = path.strip_prefix("dists/") {
            if rest.ends_with("/InRelease") {
                return ProxyPath::Signed;
            }
            let mut back = rest.rsplit('/');
            let (hash, algo, by) = (back.next(), back.next(), back.next());
            let content = match (hash, algo, by) {
                (Some(h), Some("SHA256"), Some("by-hash")) if is_sha256(h) => {
                    Some(h.to_ascii_lowercase())
                }
                _ => None,
            };
            return ProxyPath::Vouched { content };
        }
        if path.starts_with("pool/") {
            return ProxyPath::Vouched { content: None };
        }
        ProxyPath::NotFound
    }

    fn vouched_by(&self, path: &str, text: &str) -> Result<Vec<Vouch>> {
        let dir = path
            .strip_suffix("InRelease")
            .ok_or_else(|| Error::invalid(format!("{path} is not an InRelease file.")))?;
        let mut by_hash = false;
        let mut in_sums = false;
        let mut entries = Vec::new();
        for line in text.lines() {
            if line.starts_with([' ', '\t']) {
                if in_sums && let Some((sha, size, name)) = checksum_line(line) {
                    entries.push((sha, size, name.to_owned()));
                }
                continue;
            }
            in_sums = field(line, "SHA256").is_some();
            if let Some(v) = field(line, "Acquire-By-Hash") {
                by_hash = v.eq_ignore_ascii_case("yes");
            }
        }
        if entries.is_empty() {
            return Err(Error::invalid(format!(
                "{path} lists no files with SHA-256 hashes."
            )));
        }
        let mut out = Vec::with_capacity(entries.len() * 2);
        for (sha, size, name) in entries {
            if !valid_path(&name) {
                continue;
            }
            if by_hash {
                let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                let sep = if parent.is_empty() { "" } else { "/" };
                out.push(Vouch::new(
                    format!("{dir}{parent}{sep}by-hash/SHA256/{sha}"),
                    sha.clone(),
                    Some(size),
                ));
            }
            out.push(Vouch::new(format!("{dir}{name}"), sha, Some(size)));
        }
        Ok(out)
    }

    fn lists_files(&self, path: &str) -> bool {
        !path.contains("/by-hash/") && list_kind(path).is_some()
    }

    fn vouches_in(&self, path: &str, body: &[u8]) -> Result<Vec<Vouch>> {
        let Some((kind, ext)) = list_kind(path) else {
            return Ok(Vec::new());
        };
        let reader = decompress(ext, body)?;
        if kind == "Packages" {
            Self::packages(reader)
        } else {
            Self::sources(reader)
        }
    }

    fn content_type(&self, filename: &str) -> &'static str {
        let name = basename(filename);
        if name == "InRelease" || name == "Release" {
            "text/plain; charset=utf-8"
        } else if name.ends_with(".deb") || name.ends_with(".udeb") {
            "application/vnd.debian.binary-package"
        } else {
            "application/octet-stream"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn paths_are_signed_vouched_or_nothing() {
        let p = AptProxy;
        assert_eq!(p.classify("dists/bookworm/InRelease"), ProxyPath::Signed);
        assert_eq!(
            p.classify("dists/bookworm/main/binary-amd64/Packages.xz"),
            ProxyPath::Vouched { content: None }
        );
        assert_eq!(
            p.classify(&format!(
                "dists/bookworm/main/binary-amd64/by-hash/SHA256/{SHA_A}"
            )),
            ProxyPath::Vouched {
                content: Some(SHA_A.into())
            }
        );
        assert_eq!(
            p.classify("pool/main/h/hello/hello_1.0_amd64.deb"),
            ProxyPath::Vouched { content: None }
        );
        assert_eq!(
            p.classify("pubkey.gpg"),
            ProxyPath::Keyring { armored: false }
        );
        for bad in [
            "",
            "key.asc",
            "pool/../etc/passwd",
            "dists//InRelease",
            "pool/a b",
        ] {
            assert_eq!(p.classify(bad), ProxyPath::NotFound, "{bad}");
        }
    }

    #[test]
    fn a_release_vouches_for_its_files_and_their_hashes() {
        let text = format!(
            "Origin: x\nAcquire-By-Hash: yes\nMD5Sum:\n 0123 1 main/binary-amd64/Packages\nSHA256:\n {SHA_A} 10 main/binary-amd64/Packages\n {SHA_B} 5 main/binary-amd64/Packages.gz\n {SHA_A} 3 ../escape\n"
        );
        let v = AptProxy
            .vouched_by("dists/bookworm/InRelease", &text)
            .unwrap();
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"dists/bookworm/main/binary-amd64/Packages"));
        assert!(paths.contains(
            &format!("dists/bookworm/main/binary-amd64/by-hash/SHA256/{SHA_B}").as_str()
        ));
        assert!(!paths.iter().any(|p| p.contains("..")), "{paths:?}");
        assert_eq!(v.len(), 4);
        assert!(
            AptProxy
                .vouched_by("dists/x/InRelease", "Origin: x\n")
                .is_err()
        );
    }

    #[test]
    fn indexes_vouch_for_pool_files() {
        let packages = format!(
            "Package: hello\nFilename: pool/main/h/hello/hello_1_all.deb\nSize: 42\nSHA256: {SHA_A}\n\nPackage: evil\nFilename: ../../x.deb\nSHA256: {SHA_B}\n"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, packages.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let v = AptProxy
            .vouches_in("dists/b/main/binary-amd64/Packages.gz", &gz)
            .unwrap();
        assert_eq!(
            v,
            [Vouch::new(
                "pool/main/h/hello/hello_1_all.deb",
                SHA_A,
                Some(42)
            )]
        );
        let sources = format!(
            "Package: hello\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n {SHA_A} 7 hello_1.dsc\n {SHA_B} 9 hello_1.tar.xz\nFormat: 3.0 (native)\n"
        );
        let v = AptProxy
            .vouches_in("dists/b/main/source/Sources", sources.as_bytes())
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].path, "pool/main/h/hello/hello_1.tar.xz");
        assert!(AptProxy.lists_files("dists/b/main/source/Sources.xz"));
        assert!(!AptProxy.lists_files("dists/b/main/i18n/Translation-en"));
    }
}
