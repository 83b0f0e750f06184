//! Proxying another simple index (pypi.org, another artifactd): which paths ask for what, the
//! upstream's PEP 691 JSON or PEP 503 HTML read into a [`Listing`], and listings rendered like
//! hosted pages.

use artifactd_plugin_api::http::HeaderValue;
use artifactd_plugin_api::http::header::{ACCEPT, CACHE_CONTROL, VARY};
use artifactd_plugin_api::serde_json::{Map, Value};
use artifactd_plugin_api::{
    Error, FileRecord, ListedFile, Listing, ProjectStatus, ProxyFormat, ProxyPath, Result,
    ServeRequest, ServeResponse, Status, time,
};

use crate::names::{self, normalize, parse_filename};
use crate::negotiate::negotiate;
use crate::simple::{self, PageFile};

/// What the proxy asks an upstream for: JSON first, HTML when that is all it has.
const ACCEPT_UPSTREAM: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

/// The suffix of PEP 658 core metadata.
pub const METADATA: &str = ".metadata";

/// The PyPI format as a proxy sees it.
#[derive(Debug, Default)]
pub struct PypiProxy;

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Joins a possibly relative `href` to the page's URL; `None` for anything but http(s).
fn absolute(page_url: &str, href: &str) -> Option<String> {
    let base = url::Url::parse(page_url).ok()?;
    let mut u = base.join(href).ok()?;
    u.set_fragment(None);
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// One upstream file, checked like an upload's name: `None` when it is not a distribution of
/// `project` this index may list.
fn listed(
    project: &str,
    filename: &str,
    url: Option<String>,
    sha256: Option<String>,
) -> Option<ListedFile> {
    let dist = parse_filename(filename).ok()?;
    if normalize(&dist.name) != project {
        return None;
    }
    let mut f = ListedFile::new(filename, dist.version, url?);
    f.sha256 = sha256
        .map(|s| s.to_ascii_lowercase())
        .filter(|s| is_sha256(s));
    Some(f)
}

fn yanked_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Bool(true)) => Some(String::new()),
        Some(Value::String(r)) => Some(r.chars().take(512).collect()),
        _ => None,
    }
}

/// A `core-metadata` value: `{"sha256": …}` (or `true` without a hash, which a proxy cannot
/// check and so does not serve).
fn metadata_hash(v: Option<&Value>) -> Option<String> {
    v?.get("sha256")?
        .as_str()
        .map(str::to_ascii_lowercase)
        .filter(|s| is_sha256(s))
}

fn parse_json(project: &str, page_url: &str, body: &[u8]) -> Result<Listing> {
    let page: Value = artifactd_plugin_api::serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("The upstream's JSON page is not JSON ({e}).")))?;
    let name = page
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| names::valid_project_name(n) && normalize(n) == project)
        .unwrap_or(project)
        .to_owned();
    let files = page
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("The upstream's JSON page has no files list."))?;
    let mut out = Vec::new();
    for f in files {
        let (Some(filename), Some(href)) = (
            f.get("filename").and_then(Value::as_str),
            f.get("url").and_then(Value::as_str),
        ) else {
            continue;
        };
        let sha = f
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(mut file) = listed(project, filename, absolute(page_url, href), sha) else {
            continue;
        };
        file.size = f.get("size").and_then(Value::as_u64);
        file.uploaded_at = f
            .get("upload-time")
            .and_then(Value::as_str)
            .and_then(time::parse_rfc3339);
        file.yanked = yanked_of(f.get("yanked"));
        let core = f
            .get("core-metadata")
            .or_else(|| f.get("dist-info-metadata"));
        if let Some(h) = metadata_hash(core) {
            file.companions.push((METADATA.to_owned(), h));
        }
        let mut meta = Map::new();
        if let Some(rp) = f.get("requires-python").and_then(Value::as_str) {
            meta.insert("requires-python".into(), Value::String(rp.into()));
        }
        file.meta = Value::Object(meta);
        out.push(file);
    }
    let mut listing = Listing::new(name, out);
    listing.status = status_of(page.get("project-status"));
    let mut meta = Map::new();
    for key in ["tracks", "alternate-locations"] {
        if let Some(v) = page.get(key) {
            meta.insert(key.into(), v.clone());
        }
    }
    listing.meta = Value::Object(meta);
    Ok(listing)
}

/// Decodes the character references an index's HTML uses in attributes and text.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of one start tag's inside (`a href="x" data-y='z'`).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = unescape(&tag[vs..i.min(b.len())]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&tag[vs..i]);
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

fn parse_html(project: &str, page_url: &str, body: &[u8]) -> Result<Listing> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::invalid("The upstream's HTML page is not UTF-8."))?;
    let lower = text.to_ascii_lowercase();
    let mut files = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a") {
        let open = at + i;
        let after = lower.as_bytes().get(open + 2).copied().unwrap_or(b'>');
        at = open + 2;
        if !(after.is_ascii_whitespace() || after == b'>') {
            continue;
        }
        let Some(close) = lower[open..].find('>').map(|c| open + c) else {
            break;
        };
        let Some(end) = lower[close..].find("</a").map(|c| close + c) else {
            break;
        };
        at = end;
        let attrs = attributes(&text[open + 2..close]);
        let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let Some(href) = attr("href") else {
            continue;
        };
        let filename = unescape(text[close + 1..end].trim());
        let sha = href
            .split_once('#')
            .and_then(|(_, frag)| frag.strip_prefix("sha256="))
            .map(str::to_owned);
        let Some(mut file) = listed(project, &filename, absolute(page_url, href), sha) else {
            continue;
        };
        file.yanked = attr("data-yanked").map(|r| r.chars().take(512).collect());
        let core = attr("data-core-metadata").or_else(|| attr("data-dist-info-metadata"));
        if let Some(h) = core
            .and_then(|v| v.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase)
            .filter(|h| is_sha256(h))
        {
            file.companions.push((METADATA.to_owned(), h));
        }
        let mut meta = Map::new();
        if let Some(rp) = attr("data-requires-python") {
            meta.insert("requires-python".into(), Value::String(rp.to_owned()));
        }
        file.meta = Value::Object(meta);
        files.push(file);
    }
    let mut listing = Listing::new(project, files);
    // Project-level `<meta>` tags: PEP 792 status, PEP 708 URLs.
    let head = &lower[..lower.find("<body").unwrap_or(lower.len())];
    let (mut status, mut reason) = (None, None);
    let (mut tracks, mut alternates) = (Vec::new(), Vec::new());
    let mut at = 0;
    while let Some(i) = head[at..].find("<meta") {
        let open = at + i;
        let Some(close) = head[open..].find('>').map(|c| open + c) else {
            break;
        };
        at = close;
        let attrs = attributes(&text[open + 5..close]);
        let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let (Some(name), Some(content)) = (attr("name"), attr("content")) else {
            continue;
        };
        match name.as_str() {
            "pypi:project-status" => status = Status::parse(content.trim()),
            "pypi:project-status-reason" => reason = Some(content.chars().take(500).collect()),
            "pypi:tracks" => tracks.push(Value::String(content)),
            "pypi:alternate-locations" => alternates.push(Value::String(content)),
            _ => {}
        }
    }
    listing.status = status.map(|s| ProjectStatus::new(s, reason));
    let mut meta = Map::new();
    for (key, urls) in [("tracks", tracks), ("alternate-locations", alternates)] {
        if !urls.is_empty() {
            meta.insert(key.into(), Value::Array(urls));
        }
    }
    listing.meta = Value::Object(meta);
    Ok(listing)
}

/// A PEP 792 `project-status` object: `{"status": …, "reason": …}`.
fn status_of(v: Option<&Value>) -> Option<ProjectStatus> {
    let v = v?;
    let status = Status::parse(v.get("status")?.as_str()?)?;
    let reason = v
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| r.chars().take(500).collect());
    Some(ProjectStatus::new(status, reason))
}

impl ProxyFormat for PypiProxy {
    fn merges(&self) -> bool {
        true
    }

    fn classify(&self, path: &str) -> ProxyPath {
        let (prefix, rest) = match path.strip_prefix("simple/") {
            Some(rest) => ("simple/", rest),
            None if path == "simple" => return ProxyPath::Redirect("simple/".into()),
            None => ("", path),
        };
        if rest.is_empty() {
            return ProxyPath::Root;
        }
        if let Some(file) = rest.strip_prefix("files/").filter(|_| prefix.is_empty()) {
            let dist = file.strip_suffix(METADATA).unwrap_or(file);
            return match parse_filename(dist) {
                Ok(d) if !file.contains('/') => ProxyPath::File {
                    project: normalize(&d.name),
                    filename: file.to_owned(),
                },
                _ => ProxyPath::NotFound,
            };
        }
        let (project, slash) = match rest.strip_suffix('/') {
            Some(p) => (p, true),
            None => (rest, false),
        };
        if project.contains('/') || !names::valid_project_name(project) {
            return ProxyPath::NotFound;
        }
        let norm = normalize(project);
        if norm != project || !slash {
            return ProxyPath::Redirect(format!("{prefix}{norm}/"));
        }
        ProxyPath::Project(norm)
    }

    fn page_url(&self, base: &str, project: &str) -> (String, &'static str) {
        (format!("{base}{project}/"), ACCEPT_UPSTREAM)
    }

    fn parse(
        &self,
        project: &str,
        page_url: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Listing> {
        let ct = content_type.to_ascii_lowercase();
        if ct.starts_with("application/vnd.pypi.simple.v1+json")
            || ct.starts_with("application/json")
        {
            parse_json(project, page_url, body)
        } else if ct.contains("html") {
            parse_html(project, page_url, body)
        } else {
            Err(Error::invalid(format!(
                "The upstream answered with {content_type:?}, not a simple index page."
            )))
        }
    }

    fn render(
        &self,
        req: &ServeRequest,
        listing: Option<&Listing>,
        projects: &[(String, String)],
    ) -> Result<ServeResponse> {
        let accept = req.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let Some(format) = negotiate(accept) else {
            return Ok(crate::negotiate::not_acceptable());
        };
        let prefix = if req.path.starts_with("simple/") {
            "../../files/"
        } else {
            "../files/"
        };
        let body = match listing {
            None => simple::root(format, projects),
            Some(l) => {
                let mut files: Vec<PageFile<'_>> = l
                    .files
                    .iter()
                    .filter_map(|f| {
                        Some(PageFile {
                            filename: &f.filename,
                            version: &f.version,
                            sha256: f.sha256.as_deref()?,
                            size: f.size,
                            uploaded_at: f.uploaded_at,
                            requires_python: f.meta.get("requires-python").and_then(Value::as_str),
                            yanked: f.yanked.as_deref(),
                            core_metadata: f
                                .companions
                                .iter()
                                .find(|(s, _)| s == METADATA)
                                .map(|(_, h)| h.as_str()),
                        })
                    })
                    .collect();
                simple::sort_page_files(&mut files);
                let urls = |key: &str| -> Vec<String> {
                    l.meta
                        .get(key)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (tracks, alternate_locations) = (urls("tracks"), urls("alternate-locations"));
                simple::project_with(
                    format,
                    &l.name,
                    &files,
                    prefix,
                    simple::ProjectMeta {
                        status: l.status.as_ref(),
                        tracks: &tracks,
                        alternate_locations: &alternate_locations,
                    },
                )
            }
        };
        Ok(ServeResponse::bytes(format.content_type(), body)
            .with_header(VARY, HeaderValue::from_static("Accept"))
            .with_header(
                CACHE_CONTROL,
                HeaderValue::from_static("max-age=60, public"),
            ))
    }

    fn content_type(&self, filename: &str) -> &'static str {
        if filename.ends_with(METADATA) {
            "text/plain; charset=utf-8"
        } else {
            crate::content_type(filename)
        }
    }

    fn listing_of(&self, records: &[FileRecord]) -> Option<Listing> {
        let first = records.first()?;
        let files = records
            .iter()
            .map(|r| {
                let filename = r.path.rsplit('/').next().unwrap_or(&r.path);
                let mut f = ListedFile::new(filename, &r.version, &r.path);
                f.sha256 = Some(r.sha256.clone());
                f.size = Some(r.size);
                f.uploaded_at = Some(r.uploaded_at);
                f.yanked.clone_from(&r.yanked);
                if let Some(h) = r.meta.get("metadata_sha256").and_then(Value::as_str) {
                    f.companions.push((METADATA.to_owned(), h.to_owned()));
                }
                let mut meta = Map::new();
                if let Some(rp) = r.meta.get("requires_python").and_then(Value::as_str) {
                    meta.insert("requires-python".into(), Value::String(rp.to_owned()));
                }
                f.meta = Value::Object(meta);
                f
            })
            .collect();
        Some(Listing::new(first.name.clone(), files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

    #[test]
    fn classifies_paths() {
        let p = PypiProxy;
        assert_eq!(p.classify(""), ProxyPath::Root);
        assert_eq!(p.classify("simple/"), ProxyPath::Root);
        assert_eq!(p.classify("simple"), ProxyPath::Redirect("simple/".into()));
        assert_eq!(p.classify("demo/"), ProxyPath::Project("demo".into()));
        assert_eq!(
            p.classify("simple/Demo_Pkg/"),
            ProxyPath::Redirect("simple/demo-pkg/".into())
        );
        assert_eq!(p.classify("demo"), ProxyPath::Redirect("demo/".into()));
        assert_eq!(
            p.classify("files/demo_pkg-1.0-py3-none-any.whl.metadata"),
            ProxyPath::File {
                project: "demo-pkg".into(),
                filename: "demo_pkg-1.0-py3-none-any.whl.metadata".into()
            }
        );
        assert_eq!(p.classify("files/not-a-dist.txt"), ProxyPath::NotFound);
        assert_eq!(p.classify("a/b/"), ProxyPath::NotFound);
    }

    #[test]
    fn reads_json_pages() {
        let body = format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "name": "Demo.Pkg", "project-status": {{"status": "archived"}},
               "files": [
                 {{"filename": "demo_pkg-1.0-py3-none-any.whl", "url": "../../files/demo_pkg-1.0-py3-none-any.whl",
                   "hashes": {{"sha256": "{SHA}"}}, "size": 12, "upload-time": "2026-12-02T16:40:05.123Z",
                   "requires-python": ">=3.8", "yanked": "broken", "core-metadata": {{"sha256": "{SHA}"}}}},
                 {{"filename": "demo_pkg-1.1.tar.gz", "url": "https://files.example.org/d/demo_pkg-1.1.tar.gz", "hashes": {{}}}},
                 {{"filename": "other-1.0.tar.gz", "url": "x", "hashes": {{"sha256": "{SHA}"}}}},
                 {{"filename": "../evil-1.0.tar.gz", "url": "x", "hashes": {{"sha256": "{SHA}"}}}},
                 {{"filename": "demo_pkg-2.0.tar.gz", "url": "javascript:alert(1)", "hashes": {{"sha256": "{SHA}"}}}}
               ]}}"#
        );
        let l = PypiProxy
            .parse(
                "demo-pkg",
                "http://up.example/simple/demo-pkg/",
                "application/vnd.pypi.simple.v1+json",
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(l.name, "Demo.Pkg");
        assert_eq!(l.files.len(), 2, "{:?}", l.files);
        let w = &l.files[0];
        assert_eq!(
            w.url,
            "http://up.example/files/demo_pkg-1.0-py3-none-any.whl"
        );
        assert_eq!(w.sha256.as_deref(), Some(SHA));
        assert_eq!(w.version, "1.0");
        assert_eq!(w.size, Some(12));
        assert_eq!(w.uploaded_at, Some(1_796_229_605_123));
        assert_eq!(w.yanked.as_deref(), Some("broken"));
        assert_eq!(w.companions, [(METADATA.to_owned(), SHA.to_owned())]);
        assert_eq!(w.meta["requires-python"], ">=3.8");
        assert_eq!(l.files[1].sha256, None, "no hash: listed, never served");
        assert_eq!(l.status, Some(ProjectStatus::new(Status::Archived, None)));
    }

    #[test]
    fn reads_html_pages() {
        let body = format!(
            "<!DOCTYPE html><html><head><meta name=\"pypi:project-status\" content=\"quarantined\">\
             <meta name='pypi:project-status-reason' content='under review &amp; more'>\
             <meta name=\"pypi:tracks\" content=\"https://pypi.org/simple/demo-pkg/\"></head><body><h1>Links</h1>\n\
             <a href=\"/packages/demo_pkg-1.0-py3-none-any.whl#sha256={SHA}\" data-requires-python=\"&gt;=3.8\" data-dist-info-metadata=\"sha256={SHA}\">demo_pkg-1.0-py3-none-any.whl</a><br>\n\
             <A HREF='demo_pkg-1.1.tar.gz#sha256={SHA}' data-yanked>demo_pkg-1.1.tar.gz</A>\n\
             <abbr>not a link</abbr><a href=\"x\">other-1.0.tar.gz</a></body></html>"
        );
        let l = PypiProxy
            .parse(
                "demo-pkg",
                "https://up.example/simple/demo-pkg/",
                "text/html; charset=utf-8",
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(l.files.len(), 2, "{:?}", l.files);
        assert_eq!(
            l.files[0].url,
            "https://up.example/packages/demo_pkg-1.0-py3-none-any.whl"
        );
        assert_eq!(l.files[0].meta["requires-python"], ">=3.8");
        assert_eq!(l.files[0].companions.len(), 1);
        assert_eq!(
            l.files[1].url,
            "https://up.example/simple/demo-pkg/demo_pkg-1.1.tar.gz"
        );
        assert_eq!(l.files[1].yanked.as_deref(), Some(""));
        assert_eq!(l.files[1].uploaded_at, None);
        assert_eq!(
            l.status,
            Some(ProjectStatus::new(
                Status::Quarantined,
                Some("under review & more".into())
            ))
        );
        assert_eq!(l.meta["tracks"][0], "https://pypi.org/simple/demo-pkg/");
    }
}
