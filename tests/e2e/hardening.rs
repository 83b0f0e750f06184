//! Hostile and malformed uploads: a corpus of bad inputs generated here, each with the rule it
//! breaks, sent through every upload path (`/addpkg`, the twine protocol for PyPI files, and
//! `rpcli`). Each must get its 4xx and sentence, and leave the catalog, the blob store, every
//! index and the temporary folder exactly as they were. Also: slow clients are cut off.

use std::io::{Read as _, Write as _};
use std::process::Command;

use artifactd_apt::testing::{Deb, ar, gzip, tar_of};
use artifactd_pypi::testing::{Dist, zip_of};
use artifactd_tests::{Options, Server, bin, fake_gzip, try_run};

/// One bad upload.
struct Case {
    /// The rule it breaks.
    rule: &'static str,
    /// `provider=…&reponame=…&…` for `/addpkg`.
    query: String,
    filename: String,
    bytes: Vec<u8>,
    status: u16,
    /// A piece of the expected sentence.
    says: &'static str,
}

fn case(
    rule: &'static str,
    query: &str,
    file: (String, Vec<u8>),
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        rule,
        query: query.to_owned(),
        filename: file.0,
        bytes: file.1,
        status,
        says,
    }
}

const PYPI: &str = "provider=pypi&reponame=hard";
const APT: &str = "provider=apt&reponame=hard&dist=stable";
const TAR: &str = "provider=tar&reponame=hard";

/// Offsets of zip local headers and central directory entries naming `name`.
fn zip_headers(zip: &[u8], name: &str) -> (usize, usize) {
    let find = |sig: &[u8; 4], name_at: usize| {
        (0..zip.len().saturating_sub(name_at + name.len()))
            .find(|&i| {
                &zip[i..i + 4] == sig
                    && &zip[i + name_at..i + name_at + name.len()] == name.as_bytes()
            })
            .unwrap_or_else(|| panic!("no header for {name}"))
    };
    (find(b"PK\x03\x04", 30), find(b"PK\x01\x02", 46))
}

/// A wheel with its members changed by `f`.
fn wheel_with(f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> (String, Vec<u8>) {
    let d = Dist::new("hard-pkg", "2.0");
    let mut members = d.wheel_members();
    f(&mut members);
    (d.wheel_name(), zip_of(&members))
}

/// A wheel whose bytes are changed by `f` (given the offsets of the `__init__.py` headers).
fn wheel_patched(f: impl FnOnce(&mut Vec<u8>, usize, usize)) -> (String, Vec<u8>) {
    let (name, mut bytes) = Dist::new("hard-pkg", "2.0").wheel();
    let (local, central) = zip_headers(&bytes, "hard_pkg/__init__.py");
    f(&mut bytes, local, central);
    (name, bytes)
}

fn metadata_with(text: &str) -> (String, Vec<u8>) {
    let text = text.to_owned();
    wheel_with(move |m| m[1].1 = text.into_bytes())
}

const GOOD_META: &str = "Metadata-Version: 2.1\nName: hard-pkg\nVersion: 2.0\n";

/// A gzip-compressed tar (an sdist named hard_pkg-2.0.tar.gz) built by `f`.
fn sdist_with(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (String, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let meta = format!("{GOOD_META}Summary: s\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(meta.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hard_pkg-2.0/PKG-INFO", meta.as_bytes())
        .expect("tar");
    f(&mut b);
    let tar = b.into_inner().expect("tar");
    ("hard_pkg-2.0.tar.gz".to_owned(), gzip(&tar))
}

/// A raw tar header for `name` with `kind`, written without the tar crate's path checks.
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).expect("tar entry");
}

/// A .deb with this control text, or with these ar members.
fn deb_control(control: &str) -> (String, Vec<u8>) {
    Deb::new("hard-tool", "1.0", "amd64").build_with_control(control)
}

fn deb_members(members: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    ("hard-tool_1.0_amd64.deb".to_owned(), ar(members))
}

const CONTROL: &str = "Package: hard-tool\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\nDescription: d\n";

/// A .deb whose control.tar holds `./control` and what `f` adds.
fn deb_with_control_entry(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (String, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "./control",
        tar::EntryType::Regular,
        None,
        CONTROL.as_bytes(),
    );
    f(&mut b);
    let ctl = gzip(&b.into_inner().expect("tar"));
    let data = gzip(&tar_of(&[("./usr/share/doc/x", b"x")]));
    deb_members(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &data),
    ])
}

fn control_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    gzip(&tar_of(files))
}

fn corpus() -> Vec<Case> {
    let data = gzip(&tar_of(&[("./usr/share/doc/x", b"x")]));
    let ctl = control_tar(&[("./control", CONTROL.as_bytes())]);
    let good_wheel = Dist::new("hard-pkg", "2.0").wheel();
    let cases = vec![
        // Archives: zip.
        case(
            "not a zip",
            PYPI,
            (
                "hard_pkg-2.0-py3-none-any.whl".into(),
                b"hello, not a zip at all".to_vec(),
            ),
            400,
            "not a valid zip",
        ),
        case(
            "truncated zip",
            PYPI,
            (
                good_wheel.0.clone(),
                good_wheel.1[..good_wheel.1.len() - 40].to_vec(),
            ),
            400,
            "zip",
        ),
        case(
            "trailing data",
            PYPI,
            (
                good_wheel.0.clone(),
                [good_wheel.1.clone(), b"trailing".to_vec()].concat(),
            ),
            400,
            "after its end-of-central-directory",
        ),
        case(
            "prepended data",
            PYPI,
            (
                good_wheel.0.clone(),
                [b"#!/bin/sh\nexit 0\n".to_vec(), good_wheel.1.clone()].concat(),
            ),
            400,
            "before its first member",
        ),
        case(
            "duplicate member names",
            PYPI,
            {
                // The zip writer refuses duplicates: write another name, then rename it in place.
                let (n, mut b) =
                    wheel_with(|m| m.push(("hard_pkg/__init__.pX".into(), b"evil = 1\n".to_vec())));
                let (local, central) = zip_headers(&b, "hard_pkg/__init__.pX");
                let end = "hard_pkg/__init__.p".len();
                b[local + 30 + end] = b'y';
                b[central + 46 + end] = b'y';
                (n, b)
            },
            400,
            "same name",
        ),
        case(
            "local header disagrees",
            PYPI,
            wheel_patched(|b, local, _| b[local + 30] = b'H'),
            400,
            "disagrees with the central directory",
        ),
        case(
            "unsupported compression",
            PYPI,
            wheel_patched(|b, local, central| {
                b[local + 8] = 12;
                b[central + 10] = 12;
            }),
            400,
            "compression method",
        ),
        case(
            "encrypted member",
            PYPI,
            wheel_patched(|b, local, central| {
                b[local + 6] |= 1;
                b[central + 8] |= 1;
            }),
            400,
            "encrypted",
        ),
        case(
            "symlink member",
            PYPI,
            wheel_patched(|b, _, central| {
                b[central + 5] = 3;
                b[central + 38..central + 42].copy_from_slice(&(0o120_777u32 << 16).to_le_bytes());
            }),
            400,
            "symbolic link",
        ),
        case(
            "absolute member path",
            PYPI,
            wheel_with(|m| m.push(("/etc/cron.d/evil".into(), b"x".to_vec()))),
            400,
            "absolute",
        ),
        case(
            "member path with ..",
            PYPI,
            wheel_with(|m| m.push(("../../evil.pth".into(), b"x".to_vec()))),
            400,
            "'..'",
        ),
        case(
            "member path with a backslash",
            PYPI,
            wheel_with(|m| m.push(("hard_pkg\\..\\evil".into(), b"x".to_vec()))),
            400,
            "backslash",
        ),
        case(
            "zip bomb ratio",
            PYPI,
            wheel_patched(|b, local, central| {
                let huge = 0xF000_0000u32.to_le_bytes();
                b[local + 22..local + 26].copy_from_slice(&huge);
                b[central + 24..central + 28].copy_from_slice(&huge);
            }),
            400,
            "decompression bomb",
        ),
        // Python metadata.
        case(
            "no METADATA",
            PYPI,
            wheel_with(|m| {
                m.remove(1);
            }),
            400,
            "METADATA",
        ),
        case(
            "no WHEEL",
            PYPI,
            wheel_with(|m| {
                m.remove(2);
            }),
            400,
            "WHEEL",
        ),
        case(
            "unsupported Wheel-Version",
            PYPI,
            wheel_with(|m| m[2].1 = b"Wheel-Version: 2.0\n".to_vec()),
            400,
            "Wheel-Version",
        ),
        case(
            "unparsable metadata",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nthis line has no colon\n"),
            400,
            "not \"Name: value\"",
        ),
        case(
            "metadata not UTF-8",
            PYPI,
            wheel_with(|m| m[1].1 = b"Metadata-Version: 2.1\nName: hard-pkg\xff\n".to_vec()),
            400,
            "UTF-8",
        ),
        case(
            "no Metadata-Version",
            PYPI,
            metadata_with("Name: hard-pkg\nVersion: 2.0\n"),
            400,
            "Metadata-Version",
        ),
        case(
            "no Name",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nVersion: 2.0\n"),
            400,
            "no Name",
        ),
        case(
            "name disagrees with the file name",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nName: other-pkg\nVersion: 2.0\n"),
            400,
            "metadata says",
        ),
        case(
            "version disagrees with the file name",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nName: hard-pkg\nVersion: 3.0\n"),
            400,
            "version",
        ),
        case(
            "version not PEP 440",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nName: hard-pkg\nVersion: two\n"),
            400,
            "PEP 440",
        ),
        case(
            "over-long summary",
            PYPI,
            metadata_with(&format!("{GOOD_META}Summary: {}\n", "x".repeat(600))),
            400,
            "longer than 512",
        ),
        case(
            "multi-line name",
            PYPI,
            metadata_with("Metadata-Version: 2.1\nName: hard-pkg\n  more\nVersion: 2.0\n"),
            400,
            "line breaks",
        ),
        case(
            "javascript: home page",
            PYPI,
            metadata_with(&format!("{GOOD_META}Home-page: javascript:alert(1)\n")),
            400,
            "http",
        ),
        case(
            "javascript: project URL",
            PYPI,
            metadata_with(&format!(
                "{GOOD_META}Project-URL: Docs, javascript:alert(1)\n"
            )),
            400,
            "http",
        ),
        case(
            "huge metadata",
            PYPI,
            metadata_with(&format!("{GOOD_META}\n{}", "x".repeat(5 << 20))),
            400,
            "larger than",
        ),
        case(
            "name parameter disagrees",
            &format!("{PYPI}&name=other"),
            Dist::new("hard-pkg", "2.0").wheel(),
            400,
            "does not match",
        ),
        case(
            "version parameter disagrees",
            &format!("{PYPI}&version=9.9"),
            Dist::new("hard-pkg", "2.0").wheel(),
            400,
            "does not match",
        ),
        case(
            "wheel file name grammar",
            PYPI,
            ("hard_pkg-2.0.whl".into(), good_wheel.1.clone()),
            400,
            "file name",
        ),
        case(
            "unknown dist extension",
            PYPI,
            ("hard_pkg-2.0.exe".into(), good_wheel.1.clone()),
            400,
            "file name",
        ),
        case(
            "non-ASCII file name",
            PYPI,
            ("härd_pkg-2.0-py3-none-any.whl".into(), good_wheel.1.clone()),
            400,
            "file name",
        ),
        case(
            "over-long file name",
            PYPI,
            (
                format!("{}-2.0-py3-none-any.whl", "h".repeat(300)),
                good_wheel.1.clone(),
            ),
            400,
            "file name",
        ),
        // Archives: tar (sdists).
        case(
            "not gzip",
            PYPI,
            ("hard_pkg-2.0.tar.gz".into(), b"plain text".to_vec()),
            400,
            "tar archive",
        ),
        case(
            "symlink in an sdist",
            PYPI,
            sdist_with(|b| {
                raw_entry(
                    b,
                    "hard_pkg-2.0/evil",
                    tar::EntryType::Symlink,
                    Some("/etc/passwd"),
                    b"",
                )
            }),
            400,
            "is a link",
        ),
        case(
            "hard link in an sdist",
            PYPI,
            sdist_with(|b| {
                raw_entry(
                    b,
                    "hard_pkg-2.0/evil",
                    tar::EntryType::Link,
                    Some("hard_pkg-2.0/PKG-INFO"),
                    b"",
                )
            }),
            400,
            "is a link",
        ),
        case(
            "absolute path in an sdist",
            PYPI,
            sdist_with(|b| raw_entry(b, "/etc/evil", tar::EntryType::Regular, None, b"x")),
            400,
            "absolute",
        ),
        case(
            ".. in an sdist",
            PYPI,
            sdist_with(|b| {
                raw_entry(
                    b,
                    "hard_pkg-2.0/../../evil",
                    tar::EntryType::Regular,
                    None,
                    b"x",
                )
            }),
            400,
            "'..'",
        ),
        case(
            "device in an sdist",
            PYPI,
            sdist_with(|b| raw_entry(b, "hard_pkg-2.0/dev", tar::EntryType::Char, None, b"")),
            400,
            "neither a file nor a folder",
        ),
        case(
            "duplicate sdist member",
            PYPI,
            sdist_with(|b| {
                raw_entry(
                    b,
                    "hard_pkg-2.0/PKG-INFO",
                    tar::EntryType::Regular,
                    None,
                    b"Name: x\n",
                )
            }),
            400,
            "two members",
        ),
        case(
            "data after the gzip stream",
            PYPI,
            {
                let (n, b) = Dist::new("hard-pkg", "2.0").sdist();
                (n, [b.clone(), b].concat())
            },
            400,
            "after its gzip stream",
        ),
        case(
            "truncated sdist",
            PYPI,
            {
                let (n, b) = Dist::new("hard-pkg", "2.0").sdist();
                (n, b[..b.len() / 2].to_vec())
            },
            400,
            "tar archive",
        ),
        case(
            "sdist file name grammar",
            PYPI,
            (
                "hard_pkg.tar.gz".into(),
                Dist::new("hard-pkg", "2.0").sdist().1,
            ),
            400,
            "file name",
        ),
        case(
            "sparse member in an sdist",
            PYPI,
            sdist_with(|b| {
                raw_entry(
                    b,
                    "hard_pkg-2.0/holes",
                    tar::EntryType::GNUSparse,
                    None,
                    b"",
                )
            }),
            400,
            "sparse",
        ),
        case(
            "tar bomb",
            PYPI,
            sdist_with(|b| {
                let zeros = vec![0u8; 80 << 20];
                raw_entry(
                    b,
                    "hard_pkg-2.0/zeros",
                    tar::EntryType::Regular,
                    None,
                    &zeros,
                );
            }),
            400,
            "decompression bomb",
        ),
        case(
            "sdist without PKG-INFO",
            PYPI,
            {
                let mut b = tar::Builder::new(Vec::new());
                raw_entry(
                    &mut b,
                    "hard_pkg-2.0/setup.py",
                    tar::EntryType::Regular,
                    None,
                    b"x",
                );
                (
                    "hard_pkg-2.0.tar.gz".into(),
                    gzip(&b.into_inner().expect("tar")),
                )
            },
            400,
            "PKG-INFO",
        ),
        // Debian packages.
        case(
            "not an ar archive",
            APT,
            ("hard-tool_1.0_amd64.deb".into(), b"not a deb".to_vec()),
            400,
            "no ar archive header",
        ),
        case(
            "wrong member order",
            APT,
            deb_members(&[
                ("control.tar.gz", &ctl),
                ("debian-binary", b"2.0\n"),
                ("data.tar.gz", &data),
            ]),
            400,
            "debian-binary",
        ),
        case(
            "no control member",
            APT,
            deb_members(&[("debian-binary", b"2.0\n"), ("data.tar.gz", &data)]),
            400,
            "control.tar",
        ),
        case(
            "control.tar.bz2",
            APT,
            deb_members(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.bz2", b"BZh9"),
                ("data.tar.gz", &data),
            ]),
            400,
            "unsupported compression",
        ),
        case(
            "unexpected ar member",
            APT,
            deb_members(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &ctl),
                ("data.tar.gz", &data),
                ("evil", b"x"),
            ]),
            400,
            "unexpected member",
        ),
        case(
            "truncated deb",
            APT,
            {
                let (n, b) = deb_control(CONTROL);
                (n, b[..b.len() - 30].to_vec())
            },
            400,
            "truncated",
        ),
        case(
            "format version 3",
            APT,
            deb_members(&[
                ("debian-binary", b"3.0\n"),
                ("control.tar.gz", &ctl),
                ("data.tar.gz", &data),
            ]),
            400,
            "2.x",
        ),
        case(
            "no Package",
            APT,
            deb_control("Version: 1.0\nArchitecture: amd64\nDescription: d\n"),
            400,
            "Package",
        ),
        case(
            "no Version",
            APT,
            deb_control("Package: hard-tool\nArchitecture: amd64\nDescription: d\n"),
            400,
            "Version",
        ),
        case(
            "no Architecture",
            APT,
            deb_control("Package: hard-tool\nVersion: 1.0\nDescription: d\n"),
            400,
            "Architecture",
        ),
        case(
            "invalid package name",
            APT,
            deb_control("Package: Hard_Tool\nVersion: 1.0\nArchitecture: amd64\nDescription: d\n"),
            400,
            "package name",
        ),
        case(
            "invalid version",
            APT,
            deb_control(
                "Package: hard-tool\nVersion: 1.0 beta\nArchitecture: amd64\nDescription: d\n",
            ),
            400,
            "version",
        ),
        case(
            "Package field with a continuation line",
            APT,
            deb_control(
                "Package: hard-tool\n evil\nVersion: 1.0\nArchitecture: amd64\nDescription: d\n",
            ),
            400,
            "package name",
        ),
        case(
            "control sets Filename",
            APT,
            deb_control(&format!("{CONTROL}Filename: pool/evil.deb\n")),
            400,
            "Filename",
        ),
        case(
            "control sets SHA256",
            APT,
            deb_control(&format!("{CONTROL}SHA256: 00\n")),
            400,
            "SHA256",
        ),
        case(
            "control sets Size",
            APT,
            deb_control(&format!("{CONTROL}Size: 1\n")),
            400,
            "Size",
        ),
        case(
            "control field injects a paragraph",
            APT,
            deb_control(&format!("{CONTROL}\nPackage: injected\n")),
            400,
            "paragraph",
        ),
        case(
            "control field with a control character",
            APT,
            deb_control(&format!("{CONTROL}X-Evil: a\u{1b}[31m\n")),
            400,
            "control character",
        ),
        case(
            "huge control file",
            APT,
            deb_control(&format!("{CONTROL}X-Big: {}\n", "x".repeat(2 << 20))),
            400,
            "larger than",
        ),
        case(
            "symlink in control.tar",
            APT,
            deb_with_control_entry(|b| {
                raw_entry(
                    b,
                    "./postinst",
                    tar::EntryType::Symlink,
                    Some("/bin/sh"),
                    b"",
                );
            }),
            400,
            "not a regular file",
        ),
        case(
            ".. in control.tar",
            APT,
            deb_with_control_entry(|b| {
                raw_entry(b, "../../evil", tar::EntryType::Regular, None, b"x");
            }),
            400,
            "outside its folder",
        ),
        case(
            "control.tar bomb",
            APT,
            {
                let zeros = vec![0u8; 8 << 20];
                let ctl = control_tar(&[("./control", CONTROL.as_bytes()), ("./zeros", &zeros)]);
                deb_members(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar.gz", &ctl),
                    ("data.tar.gz", &data),
                ])
            },
            400,
            "decompression bomb",
        ),
        case(
            "name parameter disagrees",
            &format!("{APT}&name=other"),
            deb_control(CONTROL),
            400,
            "does not match",
        ),
        case(
            "architecture parameter disagrees",
            &format!("{APT}&arch=arm64"),
            deb_control(CONTROL),
            400,
            "does not match",
        ),
        case(
            "no dist",
            "provider=apt&reponame=hard",
            deb_control(CONTROL),
            400,
            "dist",
        ),
        // HTTP and names.
        case(
            "unknown provider",
            "provider=npm&reponame=hard",
            ("a-1.0.tgz".into(), fake_gzip(b"a")),
            404,
            "available providers",
        ),
        case(
            "repo name with a slash",
            "provider=tar&reponame=a/b",
            ("a-1.0.tgz".into(), fake_gzip(b"a")),
            400,
            "Invalid repo name",
        ),
        case(
            "repo name ..",
            "provider=tar&reponame=..",
            ("a-1.0.tgz".into(), fake_gzip(b"a")),
            400,
            "Invalid repo name",
        ),
        case(
            "unicode repo name",
            "provider=tar&reponame=r%C3%A9po",
            ("a-1.0.tgz".into(), fake_gzip(b"a")),
            400,
            "Invalid repo name",
        ),
        case(
            "over-long repo name",
            &format!("provider=tar&reponame={}", "r".repeat(65)),
            ("a-1.0.tgz".into(), fake_gzip(b"a")),
            400,
            "Invalid repo name",
        ),
        case(
            "file name with a control character",
            TAR,
            ("a\u{7}-1.0.tgz".into(), fake_gzip(b"a")),
            400,
            "malformed",
        ),
        case(
            "over the size limit",
            TAR,
            ("big-1.0.tgz".into(), fake_gzip(&vec![7u8; 3 << 20])),
            413,
            "limit",
        ),
    ];
    cases
}

/// Everything a refused upload must leave alone.
fn snapshot(s: &Server) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "blobs".to_owned(),
        format!("{:?}", s.stored_files()).into_bytes(),
    )];
    let tmp: Vec<String> = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.push(("tmp".to_owned(), format!("{tmp:?}").into_bytes()));
    for path in [
        "/api/v1/repos",
        "/api/v1/repos/pypi/hard/packages",
        "/api/v1/repos/apt/hard/packages",
        "/api/v1/repos/tar/hard/packages",
        "/api/v1/audit",
        "/repo/pypi/hard/",
        "/repo/pypi/hard/good-pkg/",
        "/repo/apt/hard/dists/stable/InRelease",
        "/repo/apt/hard/dists/stable/main/binary-amd64/Packages",
        "/repo/tar/hard/index.json",
    ] {
        out.push((path.to_owned(), s.get_as(Some(&s.token), path).body));
    }
    let json = s.get_with(
        "/repo/pypi/hard/good-pkg/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    out.push(("pypi json".to_owned(), json.body));
    out
}

fn assert_unchanged(s: &Server, before: &[(String, Vec<u8>)], what: &str) {
    for ((k, a), (_, b)) in before.iter().zip(snapshot(s)) {
        assert!(
            *a == b,
            "{what} changed {k}:\n{}\n---\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(&b)
        );
    }
}

/// The twine protocol's form for a PyPI file (the name and version it claims are the file's).
fn twine_fields(c: &Case) -> Vec<(&'static str, String)> {
    let stem = c.filename.trim_end_matches(".tar.gz");
    let mut parts = stem.splitn(3, '-');
    let name = parts.next().unwrap_or_default().to_owned();
    let version = parts.next().unwrap_or_default().to_owned();
    let filetype = if c.filename.ends_with(".whl") {
        "bdist_wheel"
    } else {
        "sdist"
    };
    let mut f = vec![
        (":action", "file_upload".to_owned()),
        ("protocol_version", "1".to_owned()),
        ("metadata_version", "2.1".to_owned()),
        ("filetype", filetype.to_owned()),
        ("pyversion", "py3".to_owned()),
    ];
    for (k, from_query, from_file) in [("name", "name=", name), ("version", "version=", version)] {
        let v = c
            .query
            .split('&')
            .find_map(|p| p.strip_prefix(from_query))
            .map_or(from_file, str::to_owned);
        f.push((k, v));
    }
    f
}

#[test]
fn every_bad_upload_is_refused_on_every_path_and_changes_nothing() {
    let s = Server::start_with(Options::with_tar().arg("--max-upload-bytes").arg("2000000"));
    // Repos with content, so that "unchanged" covers real indexes.
    let (f, b) = Dist::new("good-pkg", "1.0").wheel();
    assert_eq!(s.addpkg(PYPI, &f, &b).status, 201);
    let (f, b) = Deb::new("good-tool", "1.0", "amd64").build();
    assert_eq!(s.addpkg(APT, &f, &b).status, 201);
    assert_eq!(
        s.addpkg(TAR, "good-1.0.tgz", &fake_gzip(b"good")).status,
        201
    );
    let before = snapshot(&s);
    let dir = s.scratch("corpus");
    let cases = corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut checked = 0;
    for (i, c) in cases.iter().enumerate() {
        let label = format!(
            "case {i} ({}): {}",
            c.rule,
            c.filename.chars().take(60).collect::<String>()
        );
        // /addpkg
        let r = s.addpkg(&c.query, &c.filename, &c.bytes);
        assert_eq!(r.status, c.status, "{label} via /addpkg: {}", r.text());
        assert!(
            r.error().contains(c.says),
            "{label} via /addpkg says {:?}, not {:?}",
            r.error(),
            c.says
        );
        assert!(!r.error().contains('\n'), "{label}: one sentence");
        assert_unchanged(&s, &before, &label);
        checked += 1;
        // The twine protocol, for PyPI files.
        if c.query.starts_with("provider=pypi&reponame=hard") {
            let fields = twine_fields(c);
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = s.post_multipart(
                "/repo/pypi/hard/legacy/",
                &fields,
                "content",
                &c.filename,
                &c.bytes,
            );
            assert_eq!(r.status, c.status, "{label} via twine: {}", r.text());
            assert!(
                r.error().contains(c.says),
                "{label} via twine says {:?}",
                r.error()
            );
            assert_unchanged(&s, &before, &label);
            checked += 1;
        }
        // rpcli, for files it can send (its file name must be a valid local file name).
        if !c.filename.contains(['/', '\u{7}']) && c.filename.len() < 200 {
            let path = dir.join(&c.filename);
            std::fs::write(&path, &c.bytes).expect("write case");
            let mut args: Vec<String> = Vec::new();
            for kv in c.query.split('&') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                let v = v.replace("%C3%A9", "é");
                match k {
                    "provider" => args.extend(["-y".into(), v]),
                    "reponame" => args.extend(["-r".into(), v]),
                    "name" => args.extend(["-p".into(), v]),
                    "version" => args.extend(["-i".into(), v]),
                    _ => args.extend(["-a".into(), format!("{k}={v}")]),
                }
            }
            let (ok, out) = try_run(
                Command::new(bin("rpcli"))
                    .arg("-s")
                    .arg(s.url(""))
                    .env("ARTIFACTD_TOKEN", &s.token)
                    .arg("upload")
                    .args(&args)
                    .arg("-f")
                    .arg(&path),
            );
            let _ = std::fs::remove_file(&path);
            assert!(!ok, "{label} via rpcli succeeded: {out}");
            if out.contains(&format!(": {} ", c.status)) {
                assert!(out.contains(c.says), "{label} via rpcli: {out}");
                checked += 1;
            } else {
                // rpcli refuses some inputs itself before sending (e.g. an invalid repo name is
                // still sent; an unknown provider is not); it must say why in one line.
                assert_eq!(out.trim().lines().count(), 1, "{label} via rpcli: {out}");
            }
            assert_unchanged(&s, &before, &label);
        }
    }
    eprintln!("{} bad inputs, {checked} refusals checked", cases.len());
    assert!(!s.log().contains("ERROR"), "{}", s.log());
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn slow_clients_are_cut_off_and_leave_nothing_behind() {
    let s = Server::start_with(Options::with_tar().arg("--read-timeout-secs").arg("1"));
    let addr = s.addr.clone();
    // Headers that never finish: the connection is closed.
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    slow.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "not cut off"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // Many idle connections do not keep others from being served.
    let idle: Vec<_> = (0..64)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    assert_eq!(s.get("/healthz").status, 200);
    drop(idle);

    // An upload body that stalls: 408 with its sentence, and no temporary file is left.
    let mut up = std::net::TcpStream::connect(&addr).expect("connect");
    let body_head =
        "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"slow-1.0.tgz\"\r\n\r\nslow";
    let req = format!(
        "POST /addpkg?provider=tar&reponame=slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n{body_head}",
        s.token
    );
    up.write_all(req.as_bytes()).expect("write");
    up.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("The upload stalled"), "{resp}");
    assert!(s.stored_files().is_empty());
    let tmp = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary files left behind");
    assert_eq!(s.get("/repo/tar/slow/").status, 404);
}

/// Open file descriptors of the server process.
fn fds(s: &Server) -> usize {
    let pid = s.pid();
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn sixty_seconds_of_reads_and_uploads_without_5xx_or_leaks() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let s = Server::start_with(Options::with_tar());
    for v in 0..20 {
        let (f, b) = Dist::new("load-pkg", &format!("1.{v}")).wheel();
        assert_eq!(s.addpkg("provider=pypi&reponame=load", &f, &b).status, 201);
        let (f, b) = Deb::new("load-tool", &format!("1.{v}"), "amd64").build();
        assert_eq!(
            s.addpkg("provider=apt&reponame=load&dist=stable", &f, &b)
                .status,
            201
        );
    }
    let _ = s.get("/");
    let (fds_before, (rss_before, _)) = (fds(&s), s.rss_kib());
    let stop = AtomicBool::new(false);
    let requests = AtomicU64::new(0);
    let uploads = AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let reads = [
        "/repo/pypi/load/",
        "/repo/pypi/load/load-pkg/",
        "/repo/pypi/load/files/load_pkg-1.0-py3-none-any.whl",
        "/repo/apt/load/dists/stable/InRelease",
        "/repo/apt/load/dists/stable/main/binary-amd64/Packages.gz",
        "/repo/apt/load/pool/main/l/load-tool/load-tool_1.0_amd64.deb",
        "/ui/pypi/load/load-pkg/",
        "/api/v1/repos/pypi/load/packages",
        "/repo/pypi/load/no-such-project/",
    ];
    let duration = std::time::Duration::from_secs(60);
    let (mut rss_mid, mut fds_mid) = (0, 0);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (s, stop, requests, failures) = (&s, &stop, &requests, &failures);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let path = reads[i % reads.len()];
                    let r = if i % 2 == 0 {
                        s.get(path)
                    } else {
                        s.get_with(path, &[("Accept", "application/vnd.pypi.simple.v1+json")])
                    };
                    if r.status >= 500 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("GET {path}: {}", r.status));
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        for t in 0..2 {
            let (s, stop, uploads, failures) = (&s, &stop, &uploads, &failures);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let version = format!("2.{t}.{n}");
                    let (query, (f, b)) = if n % 2 == 0 {
                        (
                            "provider=pypi&reponame=load",
                            Dist::new("load-pkg", &version).wheel(),
                        )
                    } else {
                        (
                            "provider=apt&reponame=load&dist=stable",
                            Deb::new("load-tool", &version, "amd64").build(),
                        )
                    };
                    let r = s.addpkg(query, &f, &b);
                    if r.status != 201 {
                        failures.lock().unwrap().push(format!(
                            "upload {f}: {} {}",
                            r.status,
                            r.text()
                        ));
                    }
                    // And a refused one now and then.
                    let r = s.addpkg(query, &f.replace("2.", "9."), b"garbage");
                    if r.status >= 500 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("bad upload: {}", r.status));
                    }
                    uploads.fetch_add(2, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        std::thread::sleep(duration / 2);
        (rss_mid, fds_mid) = (s.rss_kib().0, fds(&s));
        std::thread::sleep(duration / 2);
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Connections close; nothing stays open or behind.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (fds_after, (rss_after, peak)) = (fds(&s), s.rss_kib());
    let total = requests.load(Ordering::Relaxed);
    eprintln!(
        "load: {total} reads ({:.0}/s) and {} uploads in 60 s; fds {fds_before} -> {fds_mid} at 30 s -> {fds_after}; RSS {} -> {} (30 s: {}) MiB, peak {} MiB",
        total as f64 / duration.as_secs_f64(),
        uploads.load(Ordering::Relaxed),
        rss_before / 1024,
        rss_after / 1024,
        rss_mid / 1024,
        peak / 1024
    );
    // The database pool and the client's kept-alive connections grow to their bounds in the
    // first half; a leak would keep growing in the second.
    assert!(
        fds_after <= fds_mid + 8,
        "file descriptors leaked: {fds_before} at the start, {fds_mid} at 30 s, {fds_after} at the end"
    );
    let tmp = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary files left behind");
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    assert!(
        rss_after < rss_mid + 64 * 1024,
        "RSS keeps growing: {rss_mid} KiB at 30 s, {rss_after} KiB at 60 s"
    );
    assert!(!s.log().contains("panicked"));
}
