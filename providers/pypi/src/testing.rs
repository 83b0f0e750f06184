//! Fixture builders: small, valid wheels and sdists made in code, for tests.

use std::io::Write as _;

use sha2::Digest as _;
use zip::write::SimpleFileOptions;

/// What goes into a fixture's metadata.
#[derive(Debug, Clone)]
pub struct Dist {
    /// Project name as written in METADATA.
    pub name: String,
    /// Version.
    pub version: String,
    /// `Requires-Dist` lines.
    pub requires: Vec<String>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Summary`.
    pub summary: String,
    /// Extra bytes in the module, to make files differ.
    pub salt: String,
    /// The Markdown description (the body of the metadata); `None`: a short default.
    pub description: Option<String>,
}

impl Dist {
    /// A dist with defaults.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            requires: Vec::new(),
            requires_python: None,
            summary: format!("The {name} test package"),
            salt: String::new(),
            description: None,
        }
    }

    /// Sets the Markdown description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Adds a requirement.
    pub fn requires(mut self, req: &str) -> Self {
        self.requires.push(req.to_owned());
        self
    }

    /// Sets `Requires-Python`.
    pub fn requires_python(mut self, spec: &str) -> Self {
        self.requires_python = Some(spec.to_owned());
        self
    }

    /// Makes the bytes differ without changing the metadata.
    pub fn salt(mut self, salt: &str) -> Self {
        self.salt = salt.to_owned();
        self
    }

    /// Sets the summary.
    pub fn summary(mut self, s: &str) -> Self {
        self.summary = s.to_owned();
        self
    }

    fn module(&self) -> String {
        self.name.to_ascii_lowercase().replace(['-', '.'], "_")
    }

    /// The core metadata text.
    pub fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: {}\n",
            self.name, self.version, self.summary
        );
        if let Some(rp) = &self.requires_python {
            m.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for r in &self.requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m.push_str("Description-Content-Type: text/markdown\n\n");
        match &self.description {
            Some(d) => m.push_str(d),
            None => {
                m.push_str("# ");
                m.push_str(&self.name);
                m.push_str("\n\nA package made by the test suite.\n");
            }
        }
        m
    }

    /// `name-version-py3-none-any.whl` and its bytes.
    pub fn wheel(&self) -> (String, Vec<u8>) {
        (self.wheel_name(), zip_of(&self.wheel_members()))
    }

    /// The wheel's file name.
    pub fn wheel_name(&self) -> String {
        format!("{}-{}-py3-none-any.whl", self.module(), self.version)
    }

    /// The wheel's members (module, METADATA, WHEEL, RECORD), to build variants from.
    pub fn wheel_members(&self) -> Vec<(String, Vec<u8>)> {
        let module = self.module();
        let dist_info = format!("{module}-{}.dist-info", self.version);
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (
                format!("{module}/__init__.py"),
                format!("__version__ = {:?}\n# {}\n", self.version, self.salt).into_bytes(),
            ),
            (format!("{dist_info}/METADATA"), self.metadata().into_bytes()),
            (
                format!("{dist_info}/WHEEL"),
                b"Wheel-Version: 1.0\nGenerator: artifactd-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
            ),
        ];
        let mut record = String::new();
        for (n, b) in &files {
            record.push_str(&format!(
                "{n},sha256={},{}\n",
                b64url(&sha2::Sha256::digest(b)),
                b.len()
            ));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        files.push((format!("{dist_info}/RECORD"), record.into_bytes()));
        files
    }

    /// `name-version.tar.gz` with `PKG-INFO`, the module and a `pyproject.toml` whose in-tree
    /// build backend (standard library only, no build requirements) makes the wheel, so pip,
    /// uv, poetry and pdm can install it from an index that has nothing else; and its bytes.
    pub fn sdist(&self) -> (String, Vec<u8>) {
        let module = self.module();
        let top = format!("{module}-{}", self.version);
        let mut tar = tar::Builder::new(Vec::new());
        // No [project] table: the metadata is PKG-INFO's, which the backend puts in the wheel.
        let pyproject = format!(
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n# {} {} {}\n",
            self.name, self.version, self.salt
        );
        for (n, b) in [
            (format!("{top}/PKG-INFO"), self.metadata().into_bytes()),
            (format!("{top}/pyproject.toml"), pyproject.into_bytes()),
            (format!("{top}/backend.py"), BACKEND.as_bytes().to_vec()),
            (
                format!("{top}/{module}/__init__.py"),
                format!("__version__ = {:?}\n# {}\n", self.version, self.salt).into_bytes(),
            ),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(b.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            tar.append_data(&mut h, n, b.as_slice()).expect("tar entry");
        }
        let raw = tar.into_inner().expect("tar finish");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).expect("gzip");
        (format!("{top}.tar.gz"), gz.finish().expect("gzip finish"))
    }
}

/// The PEP 517 backend inside fixture sdists: the wheel holds the package folder and the
/// sdist's PKG-INFO as METADATA.
const BACKEND: &str = r#"import base64, email.parser, hashlib, os, re, zipfile

def _meta():
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    name = re.sub(r"[-_.]+", "_", msg["Name"]).lower()
    return text, name, msg["Version"]

WHEEL = "Wheel-Version: 1.0\nGenerator: artifactd-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"

def get_requires_for_build_wheel(config_settings=None):
    return []

def get_requires_for_build_sdist(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    text, name, version = _meta()
    info = f"{name}-{version}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(metadata_directory, info, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(WHEEL)
    return info

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    text, name, version = _meta()
    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": text.encode(), f"{info}/WHEEL": WHEEL.encode()}
    for root, _, names in os.walk(name):
        for n in names:
            path = os.path.join(root, n)
            with open(path, "rb") as f:
                files[path.replace(os.sep, "/")] = f.read()
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel
"#;

/// A zip archive of `members`, deflated.
pub fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    zip_with(members, zip::CompressionMethod::Deflated)
}

/// A zip archive of `members`, stored uncompressed (fast to build for large members).
pub fn zip_stored(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    zip_with(members, zip::CompressionMethod::Stored)
}

fn zip_with(members: &[(String, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(method)
        .large_file(
            members
                .iter()
                .any(|(_, b)| b.len() as u64 >= u32::MAX as u64),
        );
    for (n, b) in members {
        w.start_file(n.as_str(), opts).expect("zip entry");
        w.write_all(b).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// URL-safe base64 without padding (wheel RECORD hashes).
pub fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

impl Dist {
    /// `name-version-py3.11.egg` and its bytes.
    pub fn egg(&self) -> (String, Vec<u8>) {
        let module = self.module();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default();
        for (n, b) in [
            ("EGG-INFO/PKG-INFO".to_owned(), self.metadata().into_bytes()),
            (
                format!("{module}/__init__.py"),
                format!("# {}\n", self.salt).into_bytes(),
            ),
        ] {
            w.start_file(n.as_str(), opts).expect("zip entry");
            w.write_all(&b).expect("zip write");
        }
        let bytes = w.finish().expect("zip finish").into_inner();
        (format!("{module}-{}-py3.11.egg", self.version), bytes)
    }
}
