//! Bad Python distributions: zip and tar archives, metadata, names.

use artifactd_apt::testing::gzip;
use artifactd_pypi::testing::Dist;

use super::builders::*;
use super::{Case, PYPI, case};

/// The cases.
pub fn cases() -> Vec<Case> {
    let good_wheel = Dist::new("hard-pkg", "2.0").wheel();
    vec![
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
        // What Warehouse refuses.
        case(
            "double underscore in a wheel's name",
            PYPI,
            Dist::new("hard__pkg", "2.0").wheel(),
            400,
            "no \"__\"",
        ),
        case(
            "undefined Metadata-Version",
            PYPI,
            metadata_with("Metadata-Version: 99.0\nName: hard-pkg\nVersion: 2.0\n"),
            400,
            "Metadata-Version \"99.0\" is not one",
        ),
        case(
            "sdist with two top-level entries",
            PYPI,
            sdist_with(|b| {
                let mut h = tar::Header::new_gnu();
                h.set_size(2);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, "setup.py", &b"x\n"[..]).expect("tar");
            }),
            400,
            "exactly one top-level folder",
        ),
        case(
            "sdist folder not named like the file",
            PYPI,
            sdist_in("other-2.0", |_| {}),
            400,
            "named \"hard_pkg-2.0\" like the file",
        ),
        case(
            "a space in the file name",
            PYPI,
            ("hard pkg-2.0-py3-none-any.whl".into(), good_wheel.1.clone()),
            400,
            "Invalid distribution file name",
        ),
        case(
            "a percent sign in the file name",
            PYPI,
            (
                "hard%5Fpkg-2.0-py3-none-any.whl".into(),
                good_wheel.1.clone(),
            ),
            400,
            "Invalid distribution file name",
        ),
        case(
            "a quote in the file name",
            PYPI,
            ("hard'pkg-2.0-py3-none-any.whl".into(), good_wheel.1.clone()),
            400,
            "Invalid distribution file name",
        ),
        case(
            "a control character in the file name",
            PYPI,
            (
                "hard\u{1b}pkg-2.0-py3-none-any.whl".into(),
                good_wheel.1.clone(),
            ),
            400,
            "malformed",
        ),
        case(
            "a stored file name with other bytes (its metadata must not stay behind)",
            PYPI,
            Dist::new("good-pkg", "1.0").salt("other bytes").wheel(),
            409,
            "File already exists",
        ),
    ]
}
