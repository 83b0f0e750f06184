//! What an upload must satisfy before anything is stored: the file name, the digests the client
//! sent, and the core metadata read from the file itself.

use std::io::Read as _;

use artifactd_plugin_api::serde_json::{Value, json};
use artifactd_plugin_api::{Error, Result, UploadRequest};

use crate::metadata::{self, Metadata};
use crate::names::{self, DistName, normalize, parse_filename};
use crate::version;

/// Hex digest of a file by any RustCrypto hasher.
fn file_digest<D: sha2::Digest>(path: &std::path::Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn check_digests(req: &UploadRequest) -> Result<()> {
    if let Some(d) = req.param("sha256_digest")
        && !d.eq_ignore_ascii_case(&req.file.sha256)
    {
        return Err(Error::invalid(
            "The sha256_digest does not match the uploaded file's SHA-256.",
        ));
    }
    if let Some(d) = req.param("md5_digest")
        && !d.eq_ignore_ascii_case(&file_digest::<md5::Md5>(&req.file.path)?)
    {
        return Err(Error::invalid(
            "The md5_digest does not match the uploaded file's MD5.",
        ));
    }
    if let Some(d) = req.param("blake2_256_digest")
        && !d.eq_ignore_ascii_case(
            &file_digest::<blake2::Blake2b<blake2::digest::consts::U32>>(&req.file.path)?,
        )
    {
        return Err(Error::invalid(
            "The blake2_256_digest does not match the uploaded file's BLAKE2b-256.",
        ));
    }
    Ok(())
}

fn single_line(m: &Metadata, field: &str, max: usize) -> Result<Option<String>> {
    let Some(v) = m.get(field) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(Error::invalid(format!(
            "The metadata field {field} is longer than {max} characters."
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "The metadata field {field} contains line breaks or control characters."
        )));
    }
    Ok(Some(v.to_owned()))
}

/// Whether a `Metadata-Version` is one of the specifications': `MAJOR.MINOR` with a major
/// version tools know (1 or 2). The specifications ask tools to refuse a greater major version
/// and to accept newer minor ones (2.5 came after this list was written).
fn known_metadata_version(v: &str) -> bool {
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor) && matches!(major, "1" | "2")
}

/// Only http(s) URLs are kept for links; anything else (e.g. `javascript:`) is refused.
fn check_url(field: &str, url: &str) -> Result<()> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "The metadata field {field} has the URL {:?}; only http:// and https:// URLs are accepted.",
            url.chars().take(80).collect::<String>()
        )))
    }
}

/// Checks one upload; returns what its name says, the raw core metadata and the record's meta.
///
/// # Errors
/// [`Error::InvalidInput`] naming the broken rule.
pub(crate) fn inspect(req: &UploadRequest) -> Result<(DistName, Vec<u8>, Value)> {
    let filename = req.file.filename.as_str();
    let dist = parse_filename(filename)?;
    if let Some(ft) = req.param("filetype")
        && ft != dist.kind.filetype()
    {
        return Err(Error::invalid(format!(
            "The filetype {ft:?} does not match the file {filename:?}, which is a {}.",
            dist.kind.filetype()
        )));
    }
    check_digests(req)?;
    let raw = metadata::extract(&req.file.path, dist.kind, &dist.name, &dist.version)?;
    let text = std::str::from_utf8(&raw)
        .map_err(|_| Error::invalid("The package metadata is not valid UTF-8."))?;
    let m = Metadata::parse(text)?;
    let mversion = m
        .get("Metadata-Version")
        .ok_or_else(|| Error::invalid("The package metadata has no Metadata-Version."))?;
    if !known_metadata_version(mversion) {
        return Err(Error::invalid(format!(
            "The Metadata-Version {:?} is not one the core metadata specifications define (1.0 to 2.x).",
            mversion.chars().take(40).collect::<String>()
        )));
    }
    let name = single_line(&m, "Name", 128)?
        .ok_or_else(|| Error::invalid("The package metadata has no Name."))?;
    let version = single_line(&m, "Version", 128)?
        .ok_or_else(|| Error::invalid("The package metadata has no Version."))?;
    if !names::valid_project_name(&name) {
        return Err(Error::invalid(format!(
            "The metadata Name {name:?} is not a valid project name."
        )));
    }
    let canonical = version::canonical(&version).ok_or_else(|| {
        Error::invalid(format!(
            "The metadata Version {version:?} is not a PEP 440 version."
        ))
    })?;
    if normalize(&name) != normalize(&dist.name) {
        return Err(Error::invalid(format!(
            "The file name says the project is {:?} but its metadata says {name:?}.",
            dist.name
        )));
    }
    if version::canonical(&dist.version).as_deref() != Some(canonical.as_str()) {
        return Err(Error::invalid(format!(
            "The file name says the version is {:?} but its metadata says {version:?}.",
            dist.version
        )));
    }
    if let Some(p) = req.param("name")
        && normalize(p) != normalize(&name)
    {
        return Err(Error::invalid(format!(
            "The name parameter {p:?} does not match the package name {name:?} in the file's metadata."
        )));
    }
    if let Some(p) = req.param("version")
        && version::canonical(p).as_deref() != Some(canonical.as_str())
    {
        return Err(Error::invalid(format!(
            "The version parameter {p:?} does not match the version {version:?} in the file's metadata."
        )));
    }
    let summary = single_line(&m, "Summary", 512)?;
    let requires_python = single_line(&m, "Requires-Python", 256)?;
    let home_page = single_line(&m, "Home-page", 1024)?;
    if let Some(u) = &home_page {
        check_url("Home-page", u)?;
    }
    let mut project_urls = Vec::new();
    for pu in m.get_all("Project-URL") {
        let (label, url) = pu.split_once(',').unwrap_or(("", pu.as_str()));
        check_url("Project-URL", url.trim())?;
        project_urls.push(json!({ "label": label.trim(), "url": url.trim() }));
    }
    let meta = json!({
        "name": name,
        "filetype": dist.kind.filetype(),
        "metadata_version": mversion,
        "version_canonical": canonical,
        "summary": summary,
        "requires_python": requires_python,
        "requires_dist": m.get_all("Requires-Dist"),
        "home_page": home_page,
        "project_urls": project_urls,
        "license": m.get("License"),
        "author": m.get("Author"),
        "author_email": m.get("Author-email"),
        "description_content_type": m.get("Description-Content-Type"),
        "description": m.description(),
    });
    Ok((dist, raw, meta))
}
