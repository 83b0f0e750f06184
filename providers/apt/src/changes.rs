//! `.changes` uploads (Debian's `dput`, `method = http`): the host stages each file `PUT` below
//! `incoming/` and hands the `.changes` over with every staged file. Every file the `.changes`
//! lists must be there with its size and checksums; then its binary packages, its source package
//! and its `.buildinfo` become records of the dist its `Distribution` field names, together, or
//! the upload is refused and nothing is stored.

use artifactd_plugin_api::serde_json::json;
use artifactd_plugin_api::{
    Error, NewRecord, RepoContext, Result, UploadOutcome, UploadRequest, UploadedFile,
};

use crate::dsc::check_listed;
use crate::source::{self, checksum_lines};
use crate::{AptProvider, binary_record, check_filename, pooled, valid_segment, with_contents};

/// The staging folder below the repo mount (dput's `incoming`).
pub const INCOMING: &str = "incoming/";

/// The largest `.changes` read.
const MAX_CHANGES_BYTES: u64 = 1 << 20;

/// The meta `kind` of a `.buildinfo` record.
const BUILDINFO: &str = "buildinfo";

fn bad(rule: impl Into<String>) -> Error {
    Error::invalid(rule)
}

/// One file a `.changes` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    name: String,
    size: u64,
    md5: String,
    sha1: Option<String>,
    sha256: String,
    /// `Section` from the `Files` line; its part before `/` names the component.
    section: String,
}

/// A parsed `.changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Changes {
    distribution: String,
    source: String,
    files: Vec<Listed>,
}

/// The component of a section: `contrib/net` is in `contrib`, `net` in `main`.
fn component_of(section: &str) -> &str {
    section.split_once('/').map_or("main", |(c, _)| c)
}

/// Parses a `.changes` (its text without the signature armor).
fn parse(text: &str) -> Result<Changes> {
    let para = crate::dsc::one_paragraph(text, ".changes")?;
    let field = |name: &str| crate::dsc::field(&para, name);
    let distribution =
        field("Distribution").ok_or_else(|| bad("The .changes has no Distribution field."))?;
    let distribution = match distribution
        .split_whitespace()
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => (*one).to_owned(),
        _ => {
            return Err(bad(
                "The .changes names several distributions; upload to one dist at a time.",
            ));
        }
    };
    if !valid_segment(&distribution) {
        return Err(bad(format!(
            "The .changes' Distribution {:?} is not a dist name: 1 to 64 ASCII letters, digits, '.', '_' or '-'.",
            distribution.chars().take(80).collect::<String>()
        )));
    }
    let source = field("Source").ok_or_else(|| bad("The .changes has no Source field."))?;
    // `Source: name (version)` when the binaries' version differs from the source's.
    let source = source
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let sha256 = checksum_lines(
        &field("Checksums-Sha256")
            .ok_or_else(|| bad("The .changes has no Checksums-Sha256 field."))?,
        "Checksums-Sha256",
        ".changes",
    )?;
    let sha1 = match field("Checksums-Sha1") {
        Some(v) => checksum_lines(&v, "Checksums-Sha1", ".changes")?,
        None => Vec::new(),
    };
    let mut files_md5 = Vec::new();
    for line in field("Files")
        .ok_or_else(|| bad("The .changes has no Files field."))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [md5, size, section, _priority, name] = parts.as_slice() else {
            return Err(bad(format!(
                "The .changes' Files has a line that is not \"md5 size section priority name\": {:?}.",
                line.chars().take(80).collect::<String>()
            )));
        };
        files_md5.push((
            md5.to_ascii_lowercase(),
            size.parse::<u64>().ok(),
            (*section).to_owned(),
            (*name).to_owned(),
        ));
    }
    if sha256.is_empty() {
        return Err(bad("The .changes lists no files."));
    }
    if files_md5.len() != sha256.len() || (!sha1.is_empty() && sha1.len() != sha256.len()) {
        return Err(bad(
            "The .changes' Files, Checksums-Sha1 and Checksums-Sha256 do not list the same files.",
        ));
    }
    let mut files: Vec<Listed> = Vec::new();
    for (digest, size, name) in sha256 {
        if files.iter().any(|f| f.name == name) {
            return Err(bad(format!("The .changes lists {name:?} twice.")));
        }
        let Some((md5, _, section, _)) = files_md5
            .iter()
            .find(|(_, s, _, n)| *n == name && *s == Some(size))
        else {
            return Err(bad(format!(
                "The .changes lists {name:?} in Checksums-Sha256 but not with the same size in Files."
            )));
        };
        let sha1 = match sha1.iter().find(|(_, _, n)| *n == name) {
            Some((d, s, _)) if *s == size => Some(d.clone()),
            None if sha1.is_empty() => None,
            _ => {
                return Err(bad(format!(
                    "The .changes lists {name:?} in Checksums-Sha256 but not with the same size in Checksums-Sha1."
                )));
            }
        };
        let component = component_of(section);
        if !valid_segment(component) {
            return Err(bad(format!(
                "The .changes gives {name:?} the section {section:?}, whose component is not a component name."
            )));
        }
        files.push(Listed {
            md5: md5.clone(),
            section: section.clone(),
            name,
            size,
            sha1,
            sha256: digest,
        });
    }
    Ok(Changes {
        distribution,
        source,
        files,
    })
}

/// The uploaded file a `.changes` line lists, checked against the line.
fn uploaded<'a>(req: &'a UploadRequest, listed: &Listed) -> Result<&'a UploadedFile> {
    let Some(f) = req.companions.iter().find(|f| f.filename == listed.name) else {
        return Err(bad(format!(
            "The .changes lists {:?}, which was not uploaded to incoming/ first; send every file it lists, the .changes last.",
            listed.name
        )));
    };
    check_listed(
        f,
        &listed.name,
        listed.size,
        (&listed.md5, listed.sha1.as_deref(), &listed.sha256),
        ".changes",
    )?;
    Ok(f)
}

impl AptProvider {
    /// A `.changes` and the staged files it lists, as one upload.
    pub(crate) async fn upload_changes(
        &self,
        cx: &RepoContext,
        req: &UploadRequest,
    ) -> Result<UploadOutcome> {
        let changes = &req.file;
        if !changes.filename.ends_with(".changes") {
            return Err(bad(
                "Complete a dput upload with its .changes; the other files go to incoming/ first.",
            ));
        }
        if changes.size > MAX_CHANGES_BYTES {
            return Err(bad(format!(
                "The .changes is larger than {MAX_CHANGES_BYTES} bytes."
            )));
        }
        let raw = String::from_utf8(std::fs::read(&changes.path)?)
            .map_err(|_| bad("The .changes is not UTF-8 text."))?;
        let text = source::unsigned_text(&raw).map_err(|_| {
            bad("The .changes starts an OpenPGP signed message but has no complete signature.")
        })?;
        let parsed = parse(&text)?;
        let dist = parsed.distribution.as_str();
        let mut checked = Vec::new();
        for listed in &parsed.files {
            checked.push((listed, uploaded(req, listed)?));
        }
        let mut records: Vec<NewRecord> = Vec::new();
        let mut contents = Vec::new();
        for (listed, f) in &checked {
            let component = component_of(&listed.section);
            let name = listed.name.as_str();
            if name.ends_with(".deb") {
                check_filename(name)?;
                let (record, lines) = binary_record(cx, f, None, dist, component).await?;
                records.push(record);
                contents.push(lines);
            } else if name.ends_with(".dsc") {
                let dsc = source::read(f)?;
                // The source package: its .dsc and the files of the upload it lists.
                let files: Vec<&UploadedFile> = checked
                    .iter()
                    .map(|(_, g)| *g)
                    .filter(|g| {
                        g.filename == name || dsc.files.iter().any(|l| l.name == g.filename)
                    })
                    .collect();
                let pooled = pooled(cx, f, &files, component).await?;
                records.extend(source::records(f, &files, &pooled, dist, component)?);
            } else if name.ends_with(".buildinfo") {
                records.push(buildinfo_record(f, &parsed.source, dist, component)?);
            } else if name.ends_with(".udeb") {
                return Err(bad(format!(
                    "The .changes lists the installer package {name:?}; this repo takes .deb packages, not .udeb."
                )));
            }
        }
        // Every other file must belong to the source package.
        let stored: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
        if let Some((l, _)) = checked
            .iter()
            .find(|(_, f)| !stored.contains(&f.sha256.as_str()))
        {
            return Err(bad(format!(
                "The .changes lists {:?}, which is neither a .deb, a .buildinfo nor a file its .dsc lists.",
                l.name
            )));
        }
        Ok(contents
            .into_iter()
            .fold(UploadOutcome::many(records), |o, c| {
                with_contents(&self.node, o, c)
            }))
    }
}

/// The record of a `.buildinfo`, kept next to its source package's files.
fn buildinfo_record(
    f: &UploadedFile,
    source: &str,
    dist: &str,
    component: &str,
) -> Result<NewRecord> {
    let name = f.filename.as_str();
    let version = name
        .strip_prefix(&format!("{source}_"))
        .and_then(|rest| rest.split('_').next())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "The .buildinfo {:?} is not named {source}_VERSION_ARCH.buildinfo.",
                name.chars().take(80).collect::<String>()
            ))
        })?;
    if !crate::deb::valid_version(version)
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'~' | b'_' | b'-'))
    {
        return Err(bad(format!(
            "The .buildinfo {:?} is not named {source}_VERSION_ARCH.buildinfo.",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(NewRecord::for_upload(
        f,
        format!("{}/{name}", source::pool_dir(component, source)),
        source,
        source,
        version,
    )
    .with_scope(dist)
    .with_meta(json!({
        "component": component,
        "arch": source::SOURCE_ARCH,
        "kind": BUILDINFO,
        "source": source,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGES: &str = "Format: 1.8
Date: Mon, 07 Dec 2026 06:00:00 +0000
Source: hello
Binary: hello
Architecture: source amd64
Version: 1.0-1
Distribution: stable
Maintainer: A <a@example.org>
Description:
 hello - greets
Changes:
 hello (1.0-1) stable; urgency=medium
 .
   * First.
Checksums-Sha1:
 1111111111111111111111111111111111111111 10 hello_1.0-1.dsc
 2222222222222222222222222222222222222222 20 hello_1.0-1_amd64.deb
Checksums-Sha256:
 aa 10 hello_1.0-1.dsc
 bb 20 hello_1.0-1_amd64.deb
Files:
 cc 10 contrib/devel optional hello_1.0-1.dsc
 dd 20 devel optional hello_1.0-1_amd64.deb
";

    #[test]
    fn parses_the_files_and_their_components() -> Result<()> {
        let c = parse(CHANGES)?;
        assert_eq!(c.distribution, "stable");
        assert_eq!(c.source, "hello");
        assert_eq!(c.files.len(), 2);
        assert_eq!(component_of(&c.files[0].section), "contrib");
        assert_eq!(component_of(&c.files[1].section), "main");
        assert_eq!(c.files[1].md5, "dd");
        assert_eq!(
            c.files[1].sha1.as_deref(),
            Some("2222222222222222222222222222222222222222")
        );
        Ok(())
    }

    #[test]
    fn refuses_lists_that_disagree() {
        let text = CHANGES.replace(" dd 20 devel", " dd 21 devel");
        assert!(parse(&text).is_err());
        let text = CHANGES.replace("Distribution: stable", "Distribution: stable unstable");
        assert!(parse(&text).is_err());
        let text = CHANGES.replace("Distribution: stable", "Distribution: ../x");
        assert!(parse(&text).is_err());
    }
}
