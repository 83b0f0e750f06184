//! Rendering the simple repository API: PEP 503 HTML and PEP 691 JSON (api-version 1.1, with
//! PEP 700 `versions`/`size`/`upload-time`, PEP 592 yanks and PEP 658/714 core metadata).

use std::fmt::Write as _;

use artifactd_plugin_api::html::{escape, url_segment};
use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::{FileRecord, time};

use crate::negotiate::Format;
use crate::version::Version;

/// The API version this index speaks.
pub const API_VERSION: &str = "1.1";

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
            h.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Simple index</title>\n</head>\n<body>\n<h1>Simple index</h1>\n");
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

/// Files sorted by version (PEP 440), then file name.
pub fn sort_files(files: &mut [FileRecord]) {
    files.sort_by(|a, b| {
        let va = Version::parse(&a.version);
        let vb = Version::parse(&b.version);
        va.cmp(&vb).then_with(|| a.path.cmp(&b.path))
    });
}

/// A project page; `files_prefix` is the relative path from the page to the `files/` folder.
pub fn project(format: Format, name: &str, files: &[FileRecord], files_prefix: &str) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut versions: Vec<&str> = Vec::new();
            for f in files {
                if !versions.contains(&f.version.as_str()) {
                    versions.push(&f.version);
                }
            }
            let list: Vec<Value> = files
                .iter()
                .map(|f| {
                    let filename = f.path.rsplit('/').next().unwrap_or(&f.path);
                    let mut o = json!({
                        "filename": filename,
                        "url": format!("{files_prefix}{}", url_segment(filename)),
                        "hashes": { "sha256": f.sha256 },
                        "size": f.size,
                        "upload-time": time::rfc3339_millis(f.uploaded_at),
                        "yanked": match &f.yanked { None => Value::Bool(false), Some(r) if r.is_empty() => Value::Bool(true), Some(r) => Value::String(r.clone()) },
                    });
                    if let Some(rp) = meta_str(f, "requires_python") {
                        o["requires-python"] = json!(rp);
                    }
                    // PEP 714: `core-metadata` only. pip 22.3 to 23.1 read the old
                    // `dist-info-metadata` key and crash on an object there.
                    o["core-metadata"] = match meta_str(f, "metadata_sha256") {
                        Some(h) => json!({ "sha256": h }),
                        None => Value::Bool(false),
                    };
                    o
                })
                .collect();
            json_bytes(&json!({
                "meta": { "api-version": API_VERSION },
                "name": name,
                "versions": versions,
                "files": list,
            }))
        }
        Format::Html | Format::TextHtml => {
            let mut h = String::with_capacity(256 * files.len() + 256);
            let _ = write!(
                h,
                "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Links for {n}</title>\n</head>\n<body>\n<h1>Links for {n}</h1>\n",
                n = escape(name)
            );
            for f in files {
                let filename = f.path.rsplit('/').next().unwrap_or(&f.path);
                let _ = write!(
                    h,
                    "<a href=\"{files_prefix}{}#sha256={}\"",
                    url_segment(filename),
                    escape(&f.sha256)
                );
                if let Some(rp) = meta_str(f, "requires_python") {
                    let _ = write!(h, " data-requires-python=\"{}\"", escape(rp));
                }
                if let Some(reason) = &f.yanked {
                    let _ = write!(h, " data-yanked=\"{}\"", escape(reason));
                }
                if let Some(mh) = meta_str(f, "metadata_sha256") {
                    let _ = write!(
                        h,
                        " data-dist-info-metadata=\"sha256={0}\" data-core-metadata=\"sha256={0}\"",
                        escape(mh)
                    );
                }
                let _ = writeln!(h, ">{}</a><br>", escape(filename));
            }
            h.push_str("</body>\n</html>\n");
            h.into_bytes()
        }
    }
}
