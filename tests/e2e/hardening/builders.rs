//! Builders for bad inputs: wheels, sdists and .debs with one thing changed.

use artifactd_apt::testing::{Deb, ar, gzip, tar_of};
use artifactd_pypi::testing::{Dist, zip_of};

/// Offsets of zip local headers and central directory entries naming `name`.
pub fn zip_headers(zip: &[u8], name: &str) -> (usize, usize) {
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
pub fn wheel_with(f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> (String, Vec<u8>) {
    let d = Dist::new("hard-pkg", "2.0");
    let mut members = d.wheel_members();
    f(&mut members);
    (d.wheel_name(), zip_of(&members))
}

/// A wheel whose bytes are changed by `f` (given the offsets of the `__init__.py` headers).
pub fn wheel_patched(f: impl FnOnce(&mut Vec<u8>, usize, usize)) -> (String, Vec<u8>) {
    let (name, mut bytes) = Dist::new("hard-pkg", "2.0").wheel();
    let (local, central) = zip_headers(&bytes, "hard_pkg/__init__.py");
    f(&mut bytes, local, central);
    (name, bytes)
}

pub fn metadata_with(text: &str) -> (String, Vec<u8>) {
    let text = text.to_owned();
    wheel_with(move |m| m[1].1 = text.into_bytes())
}

pub const GOOD_META: &str = "Metadata-Version: 2.1\nName: hard-pkg\nVersion: 2.0\n";

/// A gzip-compressed tar (an sdist named hard_pkg-2.0.tar.gz) built by `f`.
pub fn sdist_with(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (String, Vec<u8>) {
    sdist_in("hard_pkg-2.0", f)
}

/// [`sdist_with`] with its `PKG-INFO` in the folder `top`.
pub fn sdist_in(top: &str, f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (String, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let meta = format!("{GOOD_META}Summary: s\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(meta.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, format!("{top}/PKG-INFO"), meta.as_bytes())
        .expect("tar");
    f(&mut b);
    let tar = b.into_inner().expect("tar");
    ("hard_pkg-2.0.tar.gz".to_owned(), gzip(&tar))
}

/// A raw tar header for `name` with `kind`, written without the tar crate's path checks.
pub fn raw_entry(
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
pub fn deb_control(control: &str) -> (String, Vec<u8>) {
    Deb::new("hard-tool", "1.0", "amd64").build_with_control(control)
}

pub fn deb_members(members: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    ("hard-tool_1.0_amd64.deb".to_owned(), ar(members))
}

pub const CONTROL: &str = "Package: hard-tool\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\nDescription: d\n";

/// A .deb whose control.tar holds `./control` and what `f` adds.
pub fn deb_with_control_entry(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (String, Vec<u8>) {
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

pub fn control_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    gzip(&tar_of(files))
}
