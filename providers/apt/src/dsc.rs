//! Reading a `.dsc`: its OpenPGP armor taken off, its paragraph parsed with deb822-lossless and
//! checked (names, version, the three checksum lists agreeing), and the digests a listed file
//! is checked by.

use std::io::Read as _;
use std::path::Path;

use artifactd_plugin_api::{Error, UploadedFile};
use sha2::Digest as _;

use crate::deb::{valid_package_name, valid_version};

/// The largest `.dsc` read.
const MAX_DSC_BYTES: u64 = 1 << 20;

fn bad(rule: impl Into<String>) -> Error {
    Error::invalid(rule)
}

/// One file a `.dsc` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its file name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Lower-case hex digests as the `.dsc` gives them (`Files`, `Checksums-Sha1`,
    /// `Checksums-Sha256`).
    pub md5: String,
    pub sha1: Option<String>,
    pub sha256: String,
}

/// A parsed `.dsc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsc {
    /// `Source`.
    pub source: String,
    /// `Version`.
    pub version: String,
    /// `Binary`, split at commas.
    pub binaries: Vec<String>,
    /// The files it lists.
    pub files: Vec<Listed>,
    /// Its fields verbatim, one entry per field with its continuation lines, checksum fields
    /// left out (the `Sources` stanza recomputes them with the `.dsc` itself added).
    pub fields: Vec<(String, String)>,
}

/// The text of a `.dsc`, without the OpenPGP cleartext armor when it is signed.
///
/// # Errors
/// A signed message that is cut short.
pub fn unsigned_text(text: &str) -> Result<String, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Ok(text.to_owned());
    }
    let mut lines = text.lines();
    // Armor headers (`Hash: SHA512`) end at the first empty line.
    lines.by_ref().take_while(|l| !l.trim().is_empty()).count();
    let mut body = String::new();
    let mut signed = false;
    for line in lines.by_ref() {
        if line.starts_with("-----BEGIN PGP SIGNATURE-----") {
            signed = true;
            break;
        }
        body.push_str(line.strip_prefix("- ").unwrap_or(line));
        body.push('\n');
    }
    if !signed || !lines.any(|l| l.starts_with("-----END PGP SIGNATURE-----")) {
        return Err(bad(
            "The .dsc starts an OpenPGP signed message but has no complete signature.",
        ));
    }
    Ok(body)
}

fn valid_file_name(name: &str, source: &str) -> bool {
    name.len() <= 255
        && name.starts_with(&format!("{source}_"))
        && !name.ends_with(".dsc")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'~' | b'_' | b'-'))
}

/// The lines of a checksum field of the `doc` (".dsc", ".changes"): `(digest, size, name)`.
pub(crate) fn checksum_lines(
    value: &str,
    field: &str,
    doc: &str,
) -> Result<Vec<(String, u64, String)>, Error> {
    let mut out = Vec::new();
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [digest, size, name] = parts.as_slice() else {
            return Err(bad(format!(
                "The {doc}'s {field} has a line that is not \"digest size name\": {:?}.",
                line.chars().take(80).collect::<String>()
            )));
        };
        let size = size.parse::<u64>().map_err(|_| {
            bad(format!(
                "The {doc}'s {field} gives a size that is not a number."
            ))
        })?;
        if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "The {doc}'s {field} gives a digest that is not hexadecimal."
            )));
        }
        out.push((digest.to_ascii_lowercase(), size, (*name).to_owned()));
    }
    Ok(out)
}

/// The one Debian control paragraph a document must be (`doc` names it in errors: ".dsc",
/// ".changes").
///
/// # Errors
/// [`Error::InvalidInput`] when it does not parse or holds another number of paragraphs.
pub(crate) fn one_paragraph(text: &str, doc: &str) -> Result<deb822_lossless::Paragraph, Error> {
    let parsed = deb822_lossless::Deb822::parse(text);
    if !parsed.ok() {
        return Err(bad(format!(
            "The {doc} does not parse as a Debian control paragraph."
        )));
    }
    let mut paragraphs = parsed.tree().paragraphs();
    match (paragraphs.next(), paragraphs.next()) {
        (Some(para), None) => Ok(para),
        _ => Err(bad(format!("The {doc} must hold exactly one paragraph."))),
    }
}

/// A field's value, trimmed; `None` when it is missing or empty.
pub(crate) fn field(para: &deb822_lossless::Paragraph, name: &str) -> Option<String> {
    para.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Parses and checks a `.dsc` (its text without the signature armor).
///
/// # Errors
/// [`Error::InvalidInput`] naming the broken rule.
pub fn parse_dsc(text: &str) -> Result<Dsc, Error> {
    let para = one_paragraph(text, ".dsc")?;
    let field = |name: &str| field(&para, name);
    let source = field("Source").ok_or_else(|| bad("The .dsc has no Source field."))?;
    let version = field("Version").ok_or_else(|| bad("The .dsc has no Version field."))?;
    if !valid_package_name(&source) {
        return Err(bad(format!(
            "The source package name {source:?} breaks Debian policy: 2 or more lower-case letters, digits, '+', '-' or '.', starting with a letter or digit."
        )));
    }
    if !valid_version(&version) {
        return Err(bad(format!(
            "The version {version:?} breaks Debian policy ([epoch:]upstream[-revision])."
        )));
    }
    field("Format").ok_or_else(|| bad("The .dsc has no Format field."))?;
    let sha256 = checksum_lines(
        &field("Checksums-Sha256").ok_or_else(|| {
            bad("The .dsc has no Checksums-Sha256 field; build it with dpkg-source 1.15 or later.")
        })?,
        "Checksums-Sha256",
        ".dsc",
    )?;
    let md5 = checksum_lines(
        &field("Files").ok_or_else(|| bad("The .dsc has no Files field."))?,
        "Files",
        ".dsc",
    )?;
    let sha1 = match field("Checksums-Sha1") {
        Some(v) => checksum_lines(&v, "Checksums-Sha1", ".dsc")?,
        None => Vec::new(),
    };
    if sha256.is_empty() {
        return Err(bad("The .dsc lists no files."));
    }
    let mut files = Vec::new();
    for (digest, size, name) in &sha256 {
        if !valid_file_name(name, &source) {
            return Err(bad(format!(
                "The .dsc lists the file {:?}; a source package's files are named {source}_… with ASCII letters, digits and '+', '.', '~', '_', '-'.",
                name.chars().take(80).collect::<String>()
            )));
        }
        if files.iter().any(|f: &Listed| &f.name == name) {
            return Err(bad(format!("The .dsc lists {name:?} twice.")));
        }
        let Some((md5, _, _)) = md5.iter().find(|(_, s, n)| n == name && s == size) else {
            return Err(bad(format!(
                "The .dsc lists {name:?} in Checksums-Sha256 but not with the same size in Files."
            )));
        };
        let sha1 = match sha1.iter().find(|(_, _, n)| n == name) {
            Some((d, s, _)) if s == size => Some(d.clone()),
            Some(_) => {
                return Err(bad(format!("The .dsc gives {name:?} two different sizes.")));
            }
            None if sha1.is_empty() => None,
            None => {
                return Err(bad(format!(
                    "The .dsc lists {name:?} in Checksums-Sha256 but not in Checksums-Sha1."
                )));
            }
        };
        files.push(Listed {
            name: name.clone(),
            size: *size,
            md5: md5.clone(),
            sha1,
            sha256: digest.clone(),
        });
    }
    if md5.len() != files.len() || (!sha1.is_empty() && sha1.len() != files.len()) {
        return Err(bad(
            "The .dsc's Files, Checksums-Sha1 and Checksums-Sha256 do not list the same files.",
        ));
    }
    Ok(Dsc {
        binaries: field("Binary")
            .unwrap_or_default()
            .split(',')
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect(),
        fields: verbatim_fields(text)?,
        source,
        version,
        files,
    })
}

const CHECKSUM_FIELDS: &[&str] = &[
    "Files",
    "Checksums-Sha1",
    "Checksums-Sha256",
    "Checksums-Sha512",
];

/// The paragraph's fields with their continuation lines, as written; checksum fields left out.
fn verbatim_fields(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.trim().is_empty() {
            continue;
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("The .dsc contains control characters."));
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("The .dsc has a line that is not \"Field: value\"."))?;
        fields.push((k.to_owned(), v.trim_start().to_owned()));
    }
    fields.retain(|(k, _)| !CHECKSUM_FIELDS.iter().any(|c| c.eq_ignore_ascii_case(k)));
    Ok(fields)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 and SHA-1 of a file, read once (the host gives its SHA-256).
pub(crate) fn digests(path: &Path) -> Result<(String, String), Error> {
    let mut f = std::fs::File::open(path)?;
    let (mut md5, mut sha1) = (md5::Md5::new(), sha1::Sha1::new());
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha1.update(&buf[..n]);
    }
    Ok((hex(&md5.finalize()), hex(&sha1.finalize())))
}

/// Checks an uploaded file against the size and checksums a `doc` (".dsc", ".changes")
/// lists for it under `name`.
///
/// # Errors
/// [`Error::InvalidInput`] when they differ; read failures.
pub(crate) fn check_listed(
    f: &UploadedFile,
    name: &str,
    size: u64,
    (md5, sha1, sha256): (&str, Option<&str>, &str),
    doc: &str,
) -> Result<(), Error> {
    let (got_md5, got_sha1) = digests(&f.path)?;
    if f.size != size || f.sha256 != sha256 || got_md5 != md5 || sha1.is_some_and(|s| s != got_sha1)
    {
        return Err(bad(format!(
            "The file {name:?} does not match the size and checksums the {doc} gives for it."
        )));
    }
    Ok(())
}

/// Reads and parses an uploaded `.dsc`.
///
/// # Errors
/// [`Error::InvalidInput`] for a `.dsc` that is too large, not UTF-8 or breaks a rule.
pub fn read(dsc_file: &UploadedFile) -> Result<Dsc, Error> {
    if dsc_file.size > MAX_DSC_BYTES {
        return Err(bad(format!(
            "The .dsc is larger than {MAX_DSC_BYTES} bytes."
        )));
    }
    let raw = std::fs::read(&dsc_file.path)?;
    let raw = String::from_utf8(raw).map_err(|_| bad("The .dsc is not UTF-8 text."))?;
    parse_dsc(&unsigned_text(&raw)?)
}
