//! Rendering the simple repository API: PEP 503 HTML and PEP 691 JSON (api-version 1.4, with
//! PEP 700 `versions`/`size`/`upload-time`, PEP 592 yanks, PEP 658/714 core metadata, PEP 708
//! `tracks`/`alternate-locations` and PEP 792 project status).

use std::fmt::Write as _;

use artifactd_plugin_api::html::{escape, url_segment};
use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::{FileRecord, ProjectStatus, Status, time};

use crate::negotiate::Format;
use crate::version::Version;

/// The API version this index speaks.
pub const API_VERSION: &str = "1.4";

/// The root page: every project.
pub fn root(format: Format, projects: &[(String, String)]) -> Vec<u8> {
    match format {
        Format::Json => {
            let list: Vec<Value> = projects
                .iter()
                .map(|(_, name)| json!({ "name": name }))
                .collect();
            json_bytes(&json!({ "meta": { "api-version": API_VERSION }, "projects": list }))
        }
        Format::Html | Format::TextHtml => {
            let mut h = String::with_capacity(64 * projects.len() + 256);
            h.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.4\">\n<title>Simple index</title>\n</head>\n<body>\n<h1>Simple index</h1>\n");
            for (key, name) in projects {
                let _ = writeln!(
                    h,
                    "<a href=\"{}/\">{}</a><br>",
                    url_segment(key),
                    escape(name)
                );
            }
            h.push_str("</body>\n</html>\n");
            h.into_bytes()
        }
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn meta_str<'a>(r: &'a FileRecord, key: &str) -> Option<&'a str> {
    r.meta
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One file of a project page, whichever repo it comes from.
#[derive(Debug, Clone, Copy)]
pub struct PageFile<'a> {
    /// The file name.
    pub filename: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Lower-case hex SHA-256.
    pub sha256: &'a str,
    /// Size in bytes (PEP 700), when known.
    pub size: Option<u64>,
    /// Upload time in ms (PEP 700), when known.
    pub uploaded_at: Option<i64>,
    /// `Requires-Python`.
    pub requires_python: Option<&'a str>,
    /// PEP 592: the reason, `""` for none.
    pub yanked: Option<&'a str>,
    /// PEP 658: the SHA-256 of the served core metadata.
    pub core_metadata: Option<&'a str>,
}

impl<'a> From<&'a FileRecord> for PageFile<'a> {
    fn from(f: &'a FileRecord) -> Self {
        Self {
            filename: f.path.rsplit('/').next().unwrap_or(&f.path),
            version: &f.version,
            sha256: &f.sha256,
            size: Some(f.size),
            uploaded_at: Some(f.uploaded_at),
            requires_python: meta_str(f, "requires_python"),
            yanked: f.yanked.as_deref(),
            core_metadata: meta_str(f, "metadata_sha256"),
        }
    }
}

/// Files sorted by version (PEP 440), then file name.
pub fn sort_files(files: &mut [FileRecord]) {
    files.sort_by(|a, b| {
        let va = Version::parse(&a.version);
        let vb = Version::parse(&b.version);
        va.cmp(&vb).then_with(|| a.path.cmp(&b.path))
    });
}

/// [`sort_files`] for page files.
pub fn sort_page_files(files: &mut [PageFile<'_>]) {
    files.sort_by(|a, b| {
        Version::parse(a.version)
            .cmp(&Version::parse(b.version))
            .then_with(|| a.filename.cmp(b.filename))
    });
}

/// Project-level facts a page may carry: PEP 708 `tracks` and `alternate-locations` (URLs), PEP
/// 792 status.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjectMeta<'a> {
    /// PEP 792: the project's status (`None`: active).
    pub status: Option<&'a ProjectStatus>,
    /// PEP 708: the repositories this project's page tracks.
    pub tracks: &'a [String],
    /// PEP 708: the other places the same project is served from on purpose.
    pub alternate_locations: &'a [String],
}

/// A project page; `files_prefix` is the relative path from the page to the `files/` folder.
pub fn project(format: Format, name: &str, files: &[PageFile<'_>], files_prefix: &str) -> Vec<u8> {
    project_with(format, name, files, files_prefix, ProjectMeta::default())
}

/// [`project`] with project-level facts.
pub fn project_with(
    format: Format,
    name: &str,
    files: &[PageFile<'_>],
    files_prefix: &str,
    meta: ProjectMeta<'_>,
) -> Vec<u8> {
    let pep708 = !meta.tracks.is_empty() || !meta.alternate_locations.is_empty();
    let status = meta.status.filter(|s| s.status != Status::Active);
    match format {
        Format::Json => {
            let mut versions: Vec<&str> = Vec::new();
            for f in files {
                if !versions.contains(&f.version) {
                    versions.push(f.version);
                }
            }
            let list: Vec<Value> = files
                .iter()
                .map(|f| {
                    let mut o = json!({
                        "filename": f.filename,
                        "url": format!("{files_prefix}{}", url_segment(f.filename)),
                        "hashes": { "sha256": f.sha256 },
                        "yanked": match f.yanked { None => Value::Bool(false), Some("") => Value::Bool(true), Some(r) => Value::String(r.to_owned()) },
                    });
                    if let Some(size) = f.size {
                        o["size"] = json!(size);
                    }
                    if let Some(at) = f.uploaded_at {
                        o["upload-time"] = json!(time::rfc3339_millis(at));
                    }
                    if let Some(rp) = f.requires_python {
                        o["requires-python"] = json!(rp);
                    }
                    // PEP 714: `core-metadata` only. pip 22.3 to 23.1 read the old
                    // `dist-info-metadata` key and crash on an object there.
                    o["core-metadata"] = match f.core_metadata {
                        Some(h) => json!({ "sha256": h }),
                        None => Value::Bool(false),
                    };
                    o
                })
                .collect();
            let mut page = json!({
                "meta": { "api-version": API_VERSION },
                "name": name,
                "versions": versions,
                "files": list,
            });
            if pep708 {
                page["tracks"] = json!(meta.tracks);
                page["alternate-locations"] = json!(meta.alternate_locations);
            }
            if let Some(s) = status {
                page["project-status"] = match &s.reason {
                    Some(r) => json!({ "status": s.status.as_str(), "reason": r }),
                    None => json!({ "status": s.status.as_str() }),
                };
            }
            json_bytes(&page)
        }
        Format::Html | Format::TextHtml => {
            let mut h = String::with_capacity(256 * files.len() + 256);
            let _ = write!(
                h,
                "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n"
            );
            if let Some(s) = status {
                let _ = writeln!(
                    h,
                    "<meta name=\"pypi:project-status\" content=\"{}\">",
                    s.status.as_str()
                );
                if let Some(r) = &s.reason {
                    let _ = writeln!(
                        h,
                        "<meta name=\"pypi:project-status-reason\" content=\"{}\">",
                        escape(r)
                    );
                }
            }
            for (tag, urls) in [
                ("pypi:tracks", meta.tracks),
                ("pypi:alternate-locations", meta.alternate_locations),
            ] {
                for u in urls {
                    let _ = writeln!(h, "<meta name=\"{tag}\" content=\"{}\">", escape(u));
                }
            }
            let _ = write!(
                h,
                "<title>Links for {n}</title>\n</head>\n<body>\n<h1>Links for {n}</h1>\n",
                n = escape(name)
            );
            for f in files {
                let _ = write!(
                    h,
                    "<a href=\"{files_prefix}{}#sha256={}\"",
                    url_segment(f.filename),
                    escape(f.sha256)
                );
                if let Some(rp) = f.requires_python {
                    let _ = write!(h, " data-requires-python=\"{}\"", escape(rp));
                }
                if let Some(reason) = f.yanked {
                    let _ = write!(h, " data-yanked=\"{}\"", escape(reason));
                }
                if let Some(mh) = f.core_metadata {
                    let _ = write!(
                        h,
                        " data-dist-info-metadata=\"sha256={0}\" data-core-metadata=\"sha256={0}\"",
                        escape(mh)
                    );
                }
                let _ = writeln!(h, ">{}</a><br>", escape(f.filename));
            }
            h.push_str("</body>\n</html>\n");
            h.into_bytes()
        }
    }
}
