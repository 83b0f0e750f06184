//! The PyPI provider: Python package repositories that pip, uv and twine use unchanged.
//!
//! URLs below `/repo/pypi/<repo>/` (the index URL is the repo root, `simple/` is an alias):
//! - `` and `simple/`: the project list; `<project>/` and `simple/<project>/`: a project page,
//!   in PEP 503 HTML or PEP 691 JSON by `Accept` negotiation;
//! - `files/<filename>`: a distribution file; `files/<filename>.metadata`: its core metadata
//!   (PEP 658), for wheels;
//! - `POST` `` or `legacy/`: the upload protocol of twine and uv (handled by the upload hook);
//! - `POST -/yank`: yank or un-yank files (JSON);
//! - `snapshots/<name>/`: a frozen copy of the index (`POST snapshots`, `POST
//!   snapshots/remove`, `GET snapshots/`).

mod archive;
mod cache;
mod inspect;
mod metadata;
mod names;
mod negotiate;
mod proxy;
mod simple;
mod snapshot;
#[cfg(feature = "testing")]
pub mod testing;
mod version;
mod view;
mod yank;

use std::sync::Arc;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::http::header::{ACCEPT, CACHE_CONTROL, ETAG, VARY};
use artifactd_plugin_api::http::{HeaderValue, Method};
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::serde_json::{Value, json};
use artifactd_plugin_api::ui::{FileView, RepoView};
use artifactd_plugin_api::{
    BlobRef, CheckReport, Error, FileRecord, IndexScope, ListQuery, NewRecord, Problem, Provider,
    ProviderFactory, ProxyFormat, RepoContext, Result, ServeRequest, ServeResponse, UploadOutcome,
    UploadRequest, async_trait,
};
use sha2::Digest as _;

pub use names::{normalize, parse_filename};
pub use negotiate::{Format, negotiate};
pub use simple::{PageFile, project as render_project_page, root as render_root_page};
pub use version::{Version, canonical as canonical_version};

use cache::PageCache;
use names::DistKind;

/// The URL segment and `provider=` value.
pub const KIND: &str = "pypi";

/// The provider's factory.
pub fn factory() -> ProviderFactory {
    ProviderFactory::new(KIND, || Ok(Arc::new(PypiProvider::default())))
}

/// Python package repositories.
#[derive(Debug, Default)]
pub struct PypiProvider {
    cache: PageCache,
    snapshots: snapshot::SnapshotCache,
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn metadata_blob(sha256: &str) -> BlobPath {
    BlobPath::from(format!("metadata/{sha256}"))
}

impl PypiProvider {
    /// The root page (`page` `None`) or a project's page, rendered from the catalog.
    async fn render_page(
        cx: &RepoContext,
        source: &Source,
        format: Format,
        page: Option<&str>,
        files_prefix: &str,
    ) -> Result<Vec<u8>> {
        let Some(project) = page else {
            return Ok(simple::root(format, &source.keys(cx).await?));
        };
        let mut files = source.project(cx, project).await?;
        if files.is_empty() {
            return Err(Error::not_found(format!(
                "There is no project {project:?} in this repo."
            )));
        }
        let status = cx.settings.status_of(project);
        if status.is_some_and(|s| s.status.hides_files()) {
            files.clear();
        }
        simple::sort_files(&mut files);
        let files: Vec<simple::PageFile<'_>> = files.iter().map(simple::PageFile::from).collect();
        let meta = simple::ProjectMeta {
            status,
            ..Default::default()
        };
        Ok(simple::project_with(
            format,
            project,
            &files,
            files_prefix,
            meta,
        ))
    }

    async fn page(
        &self,
        cx: &RepoContext,
        req: &ServeRequest,
        source: &Source,
        page: Option<&str>,
        files_prefix: &str,
    ) -> Result<ServeResponse> {
        let accept = req.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let Some(format) = negotiate(accept) else {
            return Ok(crate::negotiate::not_acceptable());
        };
        let (generation, mount) = match source {
            Source::Live => (cx.catalog.generation().await?, String::new()),
            // A snapshot never changes: its time tells its pages apart from a namesake's.
            Source::Frozen(f) => (
                u64::try_from(f.created_at).unwrap_or_default(),
                format!("snapshots/{}/", f.name),
            ),
        };
        // The relative file links depend on where the page is served.
        let key = (
            cx.repo.clone(),
            format!("{mount}{files_prefix}{}", page.unwrap_or("")),
            format.tag(),
        );
        let mut waited = None;
        let (generation, body) = loop {
            if let Some(kept) = self.cache.get_since(&key, generation, waited) {
                break kept;
            }
            let since = std::time::Instant::now();
            if let Some(_rendering) = self.cache.renders.join(&key).await {
                let body =
                    Bytes::from(Self::render_page(cx, source, format, page, files_prefix).await?);
                self.cache.put(key, generation, body.clone());
                break (generation, body);
            }
            waited = Some(since);
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

    /// PEP 440 order; a version that does not parse sorts by upload.
    fn compare_versions(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        Some(version::Version::parse(a)?.cmp(&version::Version::parse(b)?))
    }

    async fn repo_view(&self, cx: &RepoContext) -> Result<RepoView> {
        Ok(RepoView::new("", view::setup_snippets(cx)).with_yank())
    }

    fn file_view(&self, record: &FileRecord) -> FileView {
        view::file_view(record)
    }

    fn proxy(&self) -> Option<&dyn ProxyFormat> {
        Some(&proxy::PypiProxy)
    }

    /// A wheel's core metadata goes with it.
    fn per_file_derived(&self) -> &'static [&'static str] {
        &["metadata"]
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
        let (dist, raw_metadata, mut meta) = inspect::inspect(&req)?;
        let name = meta["name"].as_str().unwrap_or(&dist.name).to_owned();
        let record = |meta| {
            NewRecord::for_upload(
                &req.file,
                format!("files/{}", req.file.filename),
                name.clone(),
                normalize(&name),
                dist.version.clone(),
            )
            .with_meta(meta)
        };
        if dist.kind != DistKind::Wheel {
            return Ok(UploadOutcome::one(record(meta)));
        }
        // PEP 658: the wheel's METADATA is served beside it; the host stores it only once the
        // upload is accepted.
        meta["metadata_sha256"] = json!(hex(&sha2::Sha256::digest(&raw_metadata)));
        Ok(UploadOutcome::one(record(meta))
            .with_derived(metadata_blob(&req.file.sha256), raw_metadata))
    }

    /// Pages are rendered from the catalog on demand and cannot drift from it; what can go is
    /// a wheel's core metadata (PEP 658), which its pages announce by hash.
    async fn check(&self, cx: &RepoContext) -> Result<CheckReport> {
        use artifactd_plugin_api::object_store::ObjectStoreExt as _;
        let mut report = CheckReport::default();
        for r in cx.catalog.list(ListQuery::all()).await? {
            let Some(want) = r.meta.get("metadata_sha256").and_then(Value::as_str) else {
                continue;
            };
            let path = format!("{}.metadata", r.path);
            match cx.blobs.get(&metadata_blob(&r.sha256)).await {
                Ok(got) => {
                    let digest = hex(&sha2::Sha256::digest(got.bytes().await?));
                    if digest != want {
                        report.problems.push(Problem::new(
                            path,
                            format!("The core metadata hashes to {digest}; the page announces {want}: upload the file again."),
                        ));
                    }
                }
                Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => {
                    report.problems.push(Problem::new(
                        path,
                        "The core metadata the page announces is missing: upload the file again.",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
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
                (Method::POST, "-/yank") => yank::yank(cx, &req).await,
                (Method::POST, "snapshots") => snapshot::create(cx, &req.body).await,
                (Method::POST, "snapshots/remove") => {
                    snapshot::remove(cx, &req.body, &self.snapshots).await
                }
                _ => Err(Error::not_found(
                    "There is no such API call: this repo takes POST -/yank, POST snapshots and POST snapshots/remove.",
                )),
            };
        }
        if path == "snapshots" || path == "snapshots/" {
            return snapshot::list(cx).await;
        }
        if let Some(rest) = path.strip_prefix("snapshots/") {
            let (name, sub) = match rest.split_once('/') {
                Some(split) => split,
                None => {
                    return ServeResponse::redirect(
                        &format!("{}snapshots/{rest}/", cx.base_url),
                        true,
                    );
                }
            };
            let Some(frozen) = self.snapshots.load(cx, name).await? else {
                return Err(Error::not_found(format!(
                    "There is no snapshot {:?} of this repo.",
                    name.chars().take(80).collect::<String>()
                )));
            };
            let mount = format!("snapshots/{name}/");
            return self
                .route(cx, &req, sub, &mount, &Source::Frozen(frozen))
                .await;
        }
        self.route(cx, &req, &path, "", &Source::Live).await
    }
}

/// Where the records of a page come from.
enum Source {
    /// The catalog.
    Live,
    /// A snapshot.
    Frozen(Arc<snapshot::Frozen>),
}

impl Source {
    async fn get(&self, cx: &RepoContext, path: &str) -> Result<Option<FileRecord>> {
        match self {
            Self::Live => cx.catalog.get(path).await,
            Self::Frozen(f) => Ok(f.get(path)),
        }
    }

    async fn keys(&self, cx: &RepoContext) -> Result<Vec<(String, String)>> {
        match self {
            Self::Live => cx.catalog.keys().await,
            Self::Frozen(f) => Ok(f.keys()),
        }
    }

    async fn project(&self, cx: &RepoContext, key: &str) -> Result<Vec<FileRecord>> {
        match self {
            Self::Live => cx.catalog.list(ListQuery::key(key)).await,
            Self::Frozen(f) => Ok(f.project(key)),
        }
    }
}

impl PypiProvider {
    /// A read below `mount` (`""` for the repo, `snapshots/NAME/` for a snapshot).
    async fn route(
        &self,
        cx: &RepoContext,
        req: &ServeRequest,
        path: &str,
        mount: &str,
        source: &Source,
    ) -> Result<ServeResponse> {
        let (prefix, rest) = match path.strip_prefix("simple/") {
            Some(rest) => ("simple/", rest),
            None if path == "simple" => ("", "simple"),
            None => ("", path),
        };
        if prefix.is_empty() && rest == "simple" {
            return ServeResponse::redirect(&format!("{}{mount}simple/", cx.base_url), true);
        }
        if let Some(file) = rest.strip_prefix("files/").filter(|_| prefix.is_empty()) {
            if file.contains('/') {
                return Err(Error::not_found("There is no such file."));
            }
            let dist = file.strip_suffix(".metadata");
            let record = source
                .get(cx, &format!("files/{}", dist.unwrap_or(file)))
                .await?;
            if let Some(r) = &record
                && let Some(s) = cx.settings.status_of(&r.key)
                && s.status.hides_files()
            {
                return Err(Error::not_found(format!(
                    "The project {} is quarantined in this repo; its files are withheld.",
                    r.name
                )));
            }
            if let Some(dist) = dist {
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
            return match record {
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
            return self.page(cx, req, source, None, "").await;
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
            return ServeResponse::redirect(
                &format!("{}{mount}{prefix}{norm}/", cx.base_url),
                true,
            );
        }
        let files_prefix = if prefix.is_empty() {
            "../files/"
        } else {
            "../../files/"
        };
        self.page(cx, req, source, Some(&norm), files_prefix).await
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
mod tests;
