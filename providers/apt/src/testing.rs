//! Fixture builders: `.deb` files made in code, with every control compression dpkg reads.

use std::io::Write as _;

/// How the control archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `control.tar`
    None,
    /// `control.tar.gz`
    Gzip,
    /// `control.tar.xz`
    Xz,
}

/// A package to build.
#[derive(Debug, Clone)]
pub struct Deb {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub arch: String,
    /// Extra control lines (e.g. `Depends: other`).
    pub extra: Vec<String>,
    /// Control compression.
    pub compression: Compression,
    /// Payload bytes, to make packages differ.
    pub payload: Vec<u8>,
}

impl Deb {
    /// A package with defaults.
    pub fn new(package: &str, version: &str, arch: &str) -> Self {
        Self {
            package: package.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            extra: Vec::new(),
            compression: Compression::Gzip,
            payload: format!("{package} {version} {arch}\n").into_bytes(),
        }
    }

    /// Adds a control line.
    pub fn line(mut self, l: &str) -> Self {
        self.extra.push(l.to_owned());
        self
    }

    /// Sets the control compression.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }

    /// The control paragraph.
    pub fn control(&self) -> String {
        let mut c = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: artifactd tests <tests@example.invalid>\nInstalled-Size: 1\n",
            self.package, self.version, self.arch
        );
        for l in &self.extra {
            c.push_str(l);
            c.push('\n');
        }
        c.push_str(&format!(
            "Description: the {} test package\n Built by the test suite.\n",
            self.package
        ));
        c
    }

    /// The canonical file name and the bytes.
    pub fn build(&self) -> (String, Vec<u8>) {
        self.build_with_control(&self.control())
    }

    /// A package with an arbitrary control file (for refusal tests).
    pub fn build_with_control(&self, control: &str) -> (String, Vec<u8>) {
        let control_tar = tar_of(&[("./control", control.as_bytes())]);
        let (control_name, control_bytes) = match self.compression {
            Compression::None => ("control.tar", control_tar),
            Compression::Gzip => ("control.tar.gz", gzip(&control_tar)),
            Compression::Xz => ("control.tar.xz", xz(&control_tar)),
        };
        let data = gzip(&tar_of(&[(
            &format!("./usr/share/doc/{}/payload", self.package),
            &self.payload,
        )]));
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            (control_name, &control_bytes),
            ("data.tar.gz", &data),
        ]);
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        (
            format!("{}_{}_{}.deb", self.package, version, self.arch),
            deb,
        )
    }
}

/// A tar archive of regular files.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        t.append_data(&mut h, name, *data).expect("tar entry");
    }
    t.into_inner().expect("tar")
}

/// gzip.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// xz.
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).expect("xz");
    e.finish().expect("xz")
}

/// An ar archive (the .deb container).
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend_from_slice(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100_644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}
