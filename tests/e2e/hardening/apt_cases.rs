//! Bad Debian packages, and bad requests of the generic upload (providers, repo names, sizes).

use artifactd_apt::testing::{gzip, tar_of};
use artifactd_tests::fake_gzip;

use super::builders::*;
use super::{APT, Case, TAR, case};

/// The cases.
pub fn cases() -> Vec<Case> {
    let data = gzip(&tar_of(&[("./usr/share/doc/x", b"x")]));
    let ctl = control_tar(&[("./control", CONTROL.as_bytes())]);
    vec![
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
        case(
            "a space in a .deb file name",
            APT,
            ("hard tool_1.0_amd64.deb".into(), deb_control(CONTROL).1),
            400,
            "a .deb file name uses",
        ),
        case(
            "a quote in a .deb file name",
            APT,
            ("hard'tool_1.0_amd64.deb".into(), deb_control(CONTROL).1),
            400,
            "a .deb file name uses",
        ),
        case(
            "a percent escape in a .deb file name",
            APT,
            ("hard%2Dtool_1.0_amd64.deb".into(), deb_control(CONTROL).1),
            400,
            "a .deb file name uses",
        ),
        case(
            "a control character in a .deb file name",
            APT,
            (
                "hard\u{1b}tool_1.0_amd64.deb".into(),
                deb_control(CONTROL).1,
            ),
            400,
            "malformed",
        ),
        case(
            "a .deb named otherwise",
            APT,
            ("hard-tool.tar.gz".into(), deb_control(CONTROL).1),
            400,
            "a .deb file name uses",
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
    ]
}
