//! The PyPI provider: Python package repositories that pip, uv and twine use unchanged.
//!
//! URLs below `/repo/pypi/<repo>/` (the index URL is the repo root, `simple/` is an alias):
//! - `` and `simple/`: the project list; `<project>/` and `simple/<project>/`: a project page,
//!   in PEP 503 HTML or PEP 691 JSON by `Accept` negotiation;
//! - `files/<filename>`: a distribution file; `files/<filename>.metadata`: its core metadata
//!   (PEP 658), for wheels;
//! - `POST` `` or `legacy/`: the upload protocol of twine and uv (handled by the upload hook);
//! - `POST -/yank`: yank or un-yank files (JSON).

mod archive;
mod metadata;
mod names;
mod negotiate;
mod simple;
#[cfg(feature = "testing")]
pub mod testing;
mod version;

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::http::header::{ACCEPT, CACHE_CONTROL, ETAG, VARY};
use artifactd_plugin_api::http::{HeaderValue, Method, StatusCode};
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::ui::{Description, FileView, RepoView, Snippet, meta_str};
use artifactd_plugin_api::{
    BlobRef, Error, FileRecord, IndexScope, ListQuery, NewRecord, Provider, ProviderFactory,
    RepoContext, Result, ServeRequest, ServeResponse, UploadOutcome, UploadRequest, async_trait,
};
use sha2::Digest as _;

pub use names::{normalize, parse_filename};
pub use negotiate::{Format, negotiate};
pub use simple::{project as render_project_page, root as render_root_page};
pub use version::{Version, canonical as canonical_version};

use metadata::Metadata;
use names::DistKind;

/// The URL segment and `provider=` value.
pub const KIND: &str = "pypi";

/// The provider's factory.
pub fn factory() -> ProviderFactory {
    ProviderFactory::new(KIND, || Ok(Arc::new(PypiProvider::default())))
}

/// (repo, page, format tag).
type PageKey = (String, String, &'static str);

/// Rendered pages, valid while the repo's generation is unchanged.
#[derive(Debug, Default)]
struct PageCache {
    pages: Mutex<HashMap<PageKey, (u64, Bytes)>>,
}

const CACHE_ENTRIES: usize = 4096;

impl PageCache {
    fn get(&self, key: &PageKey, generation: u64) -> Option<Bytes> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages
            .get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, key: PageKey, generation: u64, body: Bytes) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pages.len() >= CACHE_ENTRIES {
            pages.clear();
        }
        pages.insert(key, (generation, body));
    }

    fn forget_repo(&self, repo: &str) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.retain(|(r, _, _), _| r != repo);
    }
}

/// Python package repositories.
#[derive(Debug, Default)]
pub struct PypiProvider {
    cache: PageCache,
}

fn metadata_blob(sha256: &str) -> BlobPath {
    BlobPath::from(format!("metadata/{sha256}"))
}

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

impl PypiProvider {
    fn inspect(&self, req: &UploadRequest) -> Result<(names::DistName, Vec<u8>, Value)> {
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
        let raw = metadata::extract(&req.file.path, dist.kind, &dist.name)?;
        let text = std::str::from_utf8(&raw)
            .map_err(|_| Error::invalid("The package metadata is not valid UTF-8."))?;
        let m = Metadata::parse(text)?;
        let mversion = m
            .get("Metadata-Version")
            .ok_or_else(|| Error::invalid("The package metadata has no Metadata-Version."))?;
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

    async fn page(
        &self,
        cx: &RepoContext,
        req: &ServeRequest,
        page: Option<&str>,
        files_prefix: &str,
    ) -> Result<ServeResponse> {
        let accept = req.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let Some(format) = negotiate(accept) else {
            return Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                "None of the offered formats is acceptable: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html.\n",
            )
            .with_status(StatusCode::NOT_ACCEPTABLE)
            .with_header(VARY, HeaderValue::from_static("Accept")));
        };
        let generation = cx.catalog.generation().await?;
        // The relative file links depend on where the page is served.
        let key = (
            cx.repo.clone(),
            format!("{files_prefix}{}", page.unwrap_or("")),
            format.tag(),
        );
        let body = match self.cache.get(&key, generation) {
            Some(b) => b,
            None => {
                let body = match page {
                    None => simple::root(format, &cx.catalog.keys().await?),
                    Some(project) => {
                        let mut files = cx.catalog.list(ListQuery::key(project)).await?;
                        if files.is_empty() {
                            return Err(Error::not_found(format!(
                                "There is no project {project:?} in this repo."
                            )));
                        }
                        simple::sort_files(&mut files);
                        simple::project(format, project, &files, files_prefix)
                    }
                };
                let body = Bytes::from(body);
                self.cache.put(key, generation, body.clone());
                body
            }
        };
        let etag = format!("\"g{generation}-{}\"", format.tag());
        let mut resp = ServeResponse::bytes(format.content_type(), body)
            .with_header(VARY, HeaderValue::from_static("Accept"))
            .with_header(
                CACHE_CONTROL,
                HeaderValue::from_static("max-age=10, public"),
            );
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp = resp.with_header(ETAG, v);
        }
        Ok(resp)
    }

    async fn yank(&self, cx: &RepoContext, req: &ServeRequest) -> Result<ServeResponse> {
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::invalid(format!("The body is not JSON ({e}).")))?;
        let project = body
            .get("project")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("Name the \"project\" to yank."))?;
        let version = body.get("version").and_then(Value::as_str);
        let filename = body.get("filename").and_then(Value::as_str);
        if version.is_none() && filename.is_none() {
            return Err(Error::invalid(
                "Name a \"version\" or a \"filename\" to yank.",
            ));
        }
        let yanked = body.get("yanked").and_then(Value::as_bool).unwrap_or(true);
        let reason = body
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if reason.chars().count() > 512 || reason.chars().any(char::is_control) {
            return Err(Error::invalid(
                "The yank reason must be one line of at most 512 characters.",
            ));
        }
        let want_version = version.and_then(version::canonical);
        let files = cx.catalog.list(ListQuery::key(normalize(project))).await?;
        let mut changed = Vec::new();
        for f in files {
            let fname = f.path.rsplit('/').next().unwrap_or(&f.path).to_owned();
            let version_ok = want_version
                .as_deref()
                .is_none_or(|v| version::canonical(&f.version).as_deref() == Some(v));
            let file_ok = filename.is_none_or(|n| n == fname);
            if version_ok && file_ok {
                cx.catalog
                    .set_yanked(&f.scope, &f.path, yanked.then(|| reason.clone()))
                    .await?;
                changed.push(fname);
            }
        }
        if changed.is_empty() {
            return Err(Error::not_found(
                "No file of this repo matches the yank request.",
            ));
        }
        let out = serde_json::to_vec(
            &json!({ "project": normalize(project), "yanked": yanked, "files": changed }),
        )
        .map_err(|e| Error::internal("json", e))?;
        Ok(ServeResponse::bytes("application/json", out))
    }
}

/// pip, uv and twine set-up for the repo page; private repos get the token in the URL.
fn setup_snippets(cx: &RepoContext) -> Vec<Snippet> {
    let url = &cx.base_url;
    let (shell, file) = if cx.settings.private {
        (
            with_user(url, "__token__:$ARTIFACTD_TOKEN"),
            with_user(url, "__token__:YOUR_TOKEN"),
        )
    } else {
        (url.clone(), url.clone())
    };
    let name = &cx.repo;
    vec![
        Snippet::new(
            "pip install",
            format!("pip install --index-url \"{shell}simple/\" PACKAGE"),
        ),
        Snippet::new("pip.conf", format!("[global]\nindex-url = {file}simple/")),
        Snippet::new(
            "uv (pyproject.toml)",
            format!(
                "[[tool.uv.index]]\nname = \"{name}\"\nurl = \"{file}simple/\"\ndefault = true"
            ),
        ),
        Snippet::new(
            "Upload with twine",
            format!(
                "twine upload --repository-url {url} -u __token__ -p \"$ARTIFACTD_TOKEN\" dist/*"
            ),
        ),
        Snippet::new(
            "Upload with uv",
            format!("uv publish --publish-url {url} --token \"$ARTIFACTD_TOKEN\" dist/*"),
        ),
    ]
}

/// `http://host/x` with `user@` after the scheme.
fn with_user(url: &str, user: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{user}@{rest}"),
        None => url.to_owned(),
    }
}

#[async_trait]
impl Provider for PypiProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn description(&self) -> &'static str {
        "Python packages for pip, uv and twine (PEP 503/691 simple index)."
    }

    fn package_key(&self, name: &str) -> String {
        normalize(name)
    }

    async fn repo_view(&self, cx: &RepoContext) -> Result<RepoView> {
        Ok(RepoView::new("", setup_snippets(cx)).with_yank())
    }

    fn file_view(&self, record: &FileRecord) -> FileView {
        let mut view = FileView::from_meta(record);
        if let Some(text) = meta_str(record, "description").filter(|t| !t.trim().is_empty()) {
            let markdown = meta_str(record, "description_content_type")
                .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("text/markdown"));
            view.description = Some(Description {
                text: text.to_owned(),
                markdown,
            });
        }
        let requires: Vec<&str> = record
            .meta
            .get("requires_dist")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        view = view
            .fact("Requires Python", meta_str(record, "requires_python"))
            .fact("Requires", Some(&requires.join(", ")))
            .fact("License", meta_str(record, "license"))
            .fact("Author", meta_str(record, "author"))
            .fact("Type", meta_str(record, "filetype"));
        if let Some(home) = meta_str(record, "home_page") {
            view.links.push(("Homepage".to_owned(), home.to_owned()));
        }
        for link in record
            .meta
            .get("project_urls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(label), Some(url)) = (
                link.get("label").and_then(Value::as_str),
                link.get("url").and_then(Value::as_str),
            ) {
                view.links.push((label.to_owned(), url.to_owned()));
            }
        }
        view
    }

    async fn upload(&self, cx: &RepoContext, req: UploadRequest) -> Result<UploadOutcome> {
        if let Some(p) = &req.native_path {
            if !matches!(p.as_str(), "" | "legacy/" | "simple/") {
                return Err(Error::not_found(format!(
                    "Uploads go to {} or {}legacy/.",
                    cx.base_url, cx.base_url
                )));
            }
            if let Some(action) = req.param(":action")
                && action != "file_upload"
            {
                return Err(Error::invalid(format!(
                    "The action {action:?} is not supported; use file_upload."
                )));
            }
        }
        let (dist, raw_metadata, meta) = self.inspect(&req)?;
        let mut meta = meta;
        if dist.kind == DistKind::Wheel {
            let digest: String = sha2::Sha256::digest(&raw_metadata)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            cx.blobs
                .put(
                    &metadata_blob(&req.file.sha256),
                    PutPayload::from(raw_metadata),
                )
                .await?;
            meta["metadata_sha256"] = json!(digest);
        }
        let name = meta["name"].as_str().unwrap_or(&dist.name).to_owned();
        let record = NewRecord::for_upload(
            &req.file,
            format!("files/{}", req.file.filename),
            name.clone(),
            normalize(&name),
            dist.version.clone(),
        )
        .with_meta(meta);
        Ok(UploadOutcome::one(record))
    }

    async fn index(&self, cx: &RepoContext, _scope: IndexScope) -> Result<()> {
        // Pages are rendered from the catalog on demand; drop this node's copies now, the
        // generation check covers other nodes.
        self.cache.forget_repo(&cx.repo);
        Ok(())
    }

    async fn serve(&self, cx: &RepoContext, req: ServeRequest) -> Result<ServeResponse> {
        let path = req.path.clone();
        if !req.is_read() {
            return match (req.method.clone(), path.as_str()) {
                (Method::POST, "-/yank") => self.yank(cx, &req).await,
                _ => Err(Error::not_found("There is no such API call.")),
            };
        }
        let (prefix, rest) = match path.strip_prefix("simple/") {
            Some(rest) => ("simple/", rest),
            None if path == "simple" => ("", "simple"),
            None => ("", path.as_str()),
        };
        if prefix.is_empty() && rest == "simple" {
            return ServeResponse::redirect(&format!("{}simple/", cx.base_url), true);
        }
        if let Some(file) = rest.strip_prefix("files/").filter(|_| prefix.is_empty()) {
            if file.contains('/') {
                return Err(Error::not_found("There is no such file."));
            }
            if let Some(dist) = file.strip_suffix(".metadata") {
                let record = cx.catalog.get(&format!("files/{dist}")).await?;
                return match record {
                    Some(r) if r.meta.get("metadata_sha256").is_some_and(Value::is_string) => {
                        Ok(ServeResponse::blob(
                            "text/plain; charset=utf-8",
                            BlobRef::Derived(metadata_blob(&r.sha256)),
                        )
                        .with_header(
                            CACHE_CONTROL,
                            HeaderValue::from_static("public, max-age=31536000, immutable"),
                        ))
                    }
                    _ => Err(Error::not_found(format!(
                        "There is no core metadata for {dist:?}."
                    ))),
                };
            }
            return match cx.catalog.get(&format!("files/{file}")).await? {
                Some(r) => Ok(ServeResponse::blob(
                    content_type(file),
                    BlobRef::Content { sha256: r.sha256 },
                )),
                None => Err(Error::not_found(format!(
                    "There is no file {file:?} in this repo."
                ))),
            };
        }
        if rest.is_empty() {
            return self.page(cx, &req, None, "").await;
        }
        let (project, slash) = match rest.strip_suffix('/') {
            Some(p) => (p, true),
            None => (rest, false),
        };
        if project.contains('/') || !names::valid_project_name(project) {
            return Err(Error::not_found("There is no such project."));
        }
        let norm = normalize(project);
        if norm != project || !slash {
            return ServeResponse::redirect(&format!("{}{prefix}{norm}/", cx.base_url), true);
        }
        let files_prefix = if prefix.is_empty() {
            "../files/"
        } else {
            "../../files/"
        };
        self.page(cx, &req, Some(&norm), files_prefix).await
    }
}

fn content_type(filename: &str) -> &'static str {
    if filename.ends_with(".tar.gz") {
        "application/gzip"
    } else {
        "application/zip"
    }
}

#[cfg(test)]
mod tests {
    use artifactd_plugin_api::Catalog as _;
    use artifactd_plugin_api::testing::{Kit, Sample, TestHost, conformance};

    use super::*;
    use crate::testing::Dist;

    fn sample(d: &Dist, params: &[(&str, &str)]) -> Sample {
        let (f, b) = d.wheel();
        Sample::new(&f, b, params)
    }

    #[tokio::test]
    async fn conforms() {
        conformance(
            Arc::new(PypiProvider::default()),
            Kit {
                first: sample(
                    &Dist::new("alpha", "1.0"),
                    &[("name", "alpha"), ("version", "1.0")],
                ),
                second: sample(&Dist::new("beta", "2.0"), &[]),
                first_changed: sample(&Dist::new("alpha", "1.0").salt("x"), &[]),
            },
        )
        .await;
    }

    #[tokio::test]
    async fn pages_and_metadata() {
        let host = TestHost::new(Arc::new(PypiProvider::default()));
        let (f, b) = Dist::new("Demo.Pkg", "1.0")
            .requires_python(">=3.8")
            .wheel();
        host.upload("r", &f, &b, &[]).await.unwrap();
        let (sf, sb) = Dist::new("Demo.Pkg", "1.1").sdist();
        host.upload("r", &sf, &sb, &[]).await.unwrap();
        let (_, root) = host.get("r", "").await.unwrap();
        assert!(String::from_utf8_lossy(&root).contains("<a href=\"demo-pkg/\">Demo.Pkg</a>"));
        let (resp, _) = host.get("r", "Demo.Pkg/").await.unwrap();
        assert_eq!(resp.status, StatusCode::MOVED_PERMANENTLY);
        let (_, page) = host.get("r", "demo-pkg/").await.unwrap();
        let page = String::from_utf8_lossy(&page).into_owned();
        assert!(page.contains("data-requires-python=\"&gt;=3.8\""), "{page}");
        assert!(
            page.contains("href=\"../files/demo_pkg-1.0-py3-none-any.whl#sha256="),
            "{page}"
        );
        let json_req = ServeRequest::get("simple/demo-pkg/").with_header(
            ACCEPT,
            HeaderValue::from_static("application/vnd.pypi.simple.v1+json"),
        );
        let (resp, body) = host.serve("r", json_req).await.unwrap();
        assert_eq!(
            resp.headers.get("content-type").unwrap(),
            "application/vnd.pypi.simple.v1+json"
        );
        let j: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(j["meta"]["api-version"], "1.1");
        assert_eq!(j["versions"], json!(["1.0", "1.1"]));
        let wheel = &j["files"][0];
        assert_eq!(wheel["url"], "../../files/demo_pkg-1.0-py3-none-any.whl");
        let (_, meta) = host
            .get("r", "files/demo_pkg-1.0-py3-none-any.whl.metadata")
            .await
            .unwrap();
        let digest: String = sha2::Sha256::digest(&meta)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(wheel["core-metadata"]["sha256"], digest);
        assert_eq!(j["files"][1]["core-metadata"], false);
        assert!(matches!(
            host.get("r", "nope/").await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn refuses_mismatches() {
        let host = TestHost::new(Arc::new(PypiProvider::default()));
        let (f, b) = Dist::new("demo", "1.0").wheel();
        let renamed = f.replace("demo-1.0", "other-1.0");
        let e = host.upload("r", &renamed, &b, &[]).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        let e = host
            .upload("r", &f, &b, &[("version", "2.0")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("version parameter"), "{e}");
        let e = host.upload("r", &f, b"not a zip", &[]).await.unwrap_err();
        assert!(e.to_string().contains("zip"), "{e}");
        let e = host
            .upload("r", &f, &b, &[("sha256_digest", "00")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("sha256_digest"), "{e}");
        assert!(
            host.catalog("r")
                .list(ListQuery::all())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
