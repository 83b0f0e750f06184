//! Core metadata (`METADATA`, `PKG-INFO`) read from the distribution file itself, with bounded
//! reads, and its email-header format.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use artifactd_plugin_api::{Error, Result};

use crate::names::{DistKind, normalize};

/// Largest metadata file accepted.
pub const MAX_METADATA_BYTES: u64 = 4 << 20;
/// Tar members looked at before giving up on finding `PKG-INFO`.
const MAX_TAR_MEMBERS: usize = 100_000;

/// Parsed core metadata: header fields in order, and the body (the long description).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    fields: Vec<(String, String)>,
    body: Option<String>,
}

impl Metadata {
    /// Parses the email-header format of core metadata.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a line that is not `Name: value` or a continuation.
    pub fn parse(text: &str) -> Result<Self> {
        let mut m = Self::default();
        let mut lines = text.split('\n');
        while let Some(raw) = lines.next() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                let rest: Vec<&str> = lines.collect();
                let body = rest.join("\n");
                if !body.trim().is_empty() {
                    m.body = Some(body);
                }
                break;
            }
            if line.starts_with([' ', '\t']) {
                let Some((_, v)) = m.fields.last_mut() else {
                    return Err(Error::invalid(
                        "The package metadata starts with a continuation line.",
                    ));
                };
                v.push('\n');
                v.push_str(line.trim_start_matches([' ', '\t']).trim_start_matches('|'));
                continue;
            }
            let (k, v) = line.split_once(':').ok_or_else(|| {
                Error::invalid(format!(
                    "The package metadata has a line that is not \"Name: value\": {:?}.",
                    line.chars().take(60).collect::<String>()
                ))
            })?;
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(Error::invalid(format!(
                    "The package metadata has an invalid field name {k:?}."
                )));
            }
            m.fields.push((k.to_owned(), v.trim().to_owned()));
        }
        Ok(m)
    }

    /// The first value of a field (names compare case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of a field.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The long description: the `Description` field, or the body.
    pub fn description(&self) -> Option<&str> {
        self.body.as_deref().or_else(|| self.get("Description"))
    }
}

fn bad_archive(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("The file is not a valid {what} ({e})."))
}

fn read_bounded(r: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad_archive("archive", e))?;
    if buf.len() as u64 > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "The {what} file is larger than {MAX_METADATA_BYTES} bytes."
        )));
    }
    Ok(buf)
}

fn zip_member(archive: &mut zip::ZipArchive<File>, name: &str, what: &str) -> Result<Vec<u8>> {
    let entry = archive
        .by_name(name)
        .map_err(|e| bad_archive("zip archive", e))?;
    if entry.encrypted() {
        return Err(Error::invalid(format!(
            "The {what} member {name} is encrypted."
        )));
    }
    if entry.size() > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "The {what} file is larger than {MAX_METADATA_BYTES} bytes."
        )));
    }
    read_bounded(entry, what)
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>> {
    zip::ZipArchive::new(File::open(path)?).map_err(|e| bad_archive("zip archive", e))
}

fn zip_names(archive: &zip::ZipArchive<File>) -> Result<Vec<String>> {
    archive
        .file_names()
        .map(|n| {
            n.map(|n| n.into_owned())
                .map_err(|e| bad_archive("zip archive", e))
        })
        .collect()
}

/// The raw core metadata of a distribution file; `name` and `version` are what its file name
/// says.
///
/// # Errors
/// [`Error::InvalidInput`] when the archive is malformed or the metadata is missing.
pub fn extract(path: &Path, kind: DistKind, name: &str, version: &str) -> Result<Vec<u8>> {
    let top = &format!("{name}-{version}");
    match kind {
        DistKind::SdistTarGz => crate::archive::check_tar_gz(path)?,
        _ => crate::archive::check_zip(path)?,
    }
    match kind {
        DistKind::Wheel => {
            let mut z = open_zip(path)?;
            let names = zip_names(&z)?;
            let infos: Vec<&String> = names
                .iter()
                .filter(|n| {
                    n.split_once('/').is_some_and(|(dir, file)| {
                        dir.ends_with(".dist-info") && file == "METADATA"
                    })
                })
                .collect();
            let [meta] = infos.as_slice() else {
                return Err(Error::invalid(if infos.is_empty() {
                    "The wheel has no NAME-VERSION.dist-info/METADATA file.".to_owned()
                } else {
                    "The wheel has more than one .dist-info/METADATA file.".to_owned()
                }));
            };
            let dir = meta.trim_end_matches("/METADATA");
            let dist = dir.trim_end_matches(".dist-info");
            let dist_name = dist.split('-').next().unwrap_or(dist);
            if normalize(dist_name) != normalize(name) {
                return Err(Error::invalid(format!(
                    "The wheel's metadata folder {dir:?} does not belong to the project {name:?} of its file name."
                )));
            }
            let wheel_file = format!("{dir}/WHEEL");
            if !names.contains(&wheel_file) {
                return Err(Error::invalid(format!(
                    "The wheel has no {wheel_file} file."
                )));
            }
            let wheel = zip_member(&mut z, &wheel_file, "WHEEL")?;
            let wheel = Metadata::parse(&String::from_utf8_lossy(&wheel))?;
            match wheel.get("Wheel-Version") {
                Some(v) if v.starts_with("1.") => {}
                Some(v) => {
                    return Err(Error::invalid(format!(
                        "The wheel's Wheel-Version {v:?} is not supported (1.x is)."
                    )));
                }
                None => {
                    return Err(Error::invalid(
                        "The wheel's WHEEL file has no Wheel-Version.",
                    ));
                }
            }
            zip_member(&mut z, meta, "METADATA")
        }
        DistKind::SdistZip => {
            let mut z = open_zip(path)?;
            let names = zip_names(&z)?;
            for n in &names {
                check_sdist_member(n, top)?;
            }
            let pkg_info = format!("{top}/PKG-INFO");
            if !names.contains(&pkg_info) {
                return Err(no_pkg_info(top));
            }
            zip_member(&mut z, &pkg_info, "PKG-INFO")
        }
        DistKind::Egg => {
            let mut z = open_zip(path)?;
            let names = zip_names(&z)?;
            if !names.iter().any(|n| n == "EGG-INFO/PKG-INFO") {
                return Err(Error::invalid("The egg has no EGG-INFO/PKG-INFO file."));
            }
            zip_member(&mut z, "EGG-INFO/PKG-INFO", "PKG-INFO")
        }
        DistKind::SdistTarGz => {
            let gz = flate2::read::GzDecoder::new(File::open(path)?);
            let mut archive = tar::Archive::new(gz);
            let entries = archive
                .entries()
                .map_err(|e| bad_archive("gzip-compressed tar archive", e))?;
            let mut pkg_info = None;
            for (n, entry) in entries.enumerate() {
                if n >= MAX_TAR_MEMBERS {
                    break;
                }
                let entry = entry.map_err(|e| bad_archive("gzip-compressed tar archive", e))?;
                let kind = entry.header().entry_type();
                if kind.is_pax_global_extensions() {
                    continue;
                }
                let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let member = member.trim_start_matches("./");
                check_sdist_member(member, top)?;
                if member.strip_prefix(top) == Some("/PKG-INFO") && kind.is_file() {
                    pkg_info = Some(read_bounded(entry, "PKG-INFO")?);
                }
            }
            pkg_info.ok_or_else(|| no_pkg_info(top))
        }
    }
}

/// An sdist unpacks into one folder named like the file (`NAME-VERSION`), as pip, uv and
/// Warehouse expect; `member` is one of its member names.
fn check_sdist_member(member: &str, top: &str) -> Result<()> {
    let first = member
        .trim_start_matches("./")
        .split('/')
        .next()
        .unwrap_or_default();
    if first == top || first.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "The sdist must hold exactly one top-level folder, named {top:?} like the file; it also has {:?}.",
        first.chars().take(80).collect::<String>()
    )))
}

fn no_pkg_info(top: &str) -> Error {
    Error::invalid(format!("The sdist has no {top}/PKG-INFO file."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_and_body() {
        let m = Metadata::parse(
            "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: a\nRequires-Dist: b>1\nLicense: line one\n        line two\n\nThe *long* description.\n",
        )
        .unwrap();
        assert_eq!(m.get("name"), Some("demo"));
        assert_eq!(m.get_all("Requires-Dist"), ["a", "b>1"]);
        assert_eq!(m.get("License"), Some("line one\nline two"));
        assert_eq!(m.description(), Some("The *long* description.\n"));
        assert!(Metadata::parse("garbage without colon\n").is_err());
        assert!(Metadata::parse(" continuation first\n").is_err());
    }
}
