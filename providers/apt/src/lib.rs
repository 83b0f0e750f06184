//! The APT provider: signed Debian/Ubuntu repositories that `apt-get` trusts.
//!
//! URLs below `/repo/apt/<repo>/` (the repo root is the `deb` line's URI):
//! - `dists/<dist>/InRelease`, `Release`, `Release.gpg`: signed with the repo's own key;
//! - `dists/<dist>/<component>/binary-<arch>/Packages[.gz]`, `<component>/source/Sources[.gz]`,
//!   `<component>/Contents-<arch>[.gz]` and their `by-hash/SHA256/…`;
//! - `pool/<component>/<prefix>/<source>/<file>.deb`: the packages;
//! - `pubkey` (armored), `pubkey.gpg` (binary keyring), `dists/<dist>/install` (set-up script);
//! - `snapshots/<name>/dists/<dist>/…` and `snapshots/<name>/pool/…`: frozen dists;
//! - `` and `dists/<dist>/`: HTML listings.
//!
//! API calls (JSON `POST`s, write access): `snapshots` (take one), `snapshots/remove` and
//! `promote`.

mod bounded;
mod changes;
mod check;
mod contents;
mod deb;
mod draft;
mod dsc;
mod index;
mod plain;
mod promote;
pub mod proxy;
mod retire;
mod serve;
mod snapshot;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::serde_json::json;
use artifactd_plugin_api::ui::{FileView, RepoView};
use artifactd_plugin_api::{
    BlobRef, CheckReport, Error, FileRecord, IndexScope, ListQuery, NewRecord, Provider,
    ProviderFactory, ProxyFormat, RepoContext, Result, RetentionUnit, ServeRequest, ServeResponse,
    Staging, UploadOutcome, UploadRequest, UploadedFile, async_trait,
};

pub use deb::{Control, control_text, parse_control, valid_package_name, valid_version};
pub use index::stanza;

/// The URL segment and `provider=` value.
pub const KIND: &str = "apt";

/// The provider's factory.
pub fn factory() -> ProviderFactory {
    ProviderFactory::new(KIND, || Ok(Arc::new(AptProvider::default())))
}

/// A published dist's state with the repo generation it was read at. The host bumps the
/// generation when the catalog changes and again after each publish, so a state cached under the
/// current generation is the current one, on every node.
type CachedState = (u64, Arc<index::State>);

/// Published dist states by (repo, dist).
#[derive(Debug, Default)]
struct StateCache {
    states: Mutex<HashMap<(String, String), CachedState>>,
}

/// Debian repositories.
#[derive(Debug, Default)]
pub struct AptProvider {
    cache: StateCache,
    node: index::Node,
    snapshots: snapshot::SnapshotCache,
    /// How each publish went, for tests of the incremental path.
    #[cfg(test)]
    published: Mutex<Vec<index::Published>>,
}

/// Dist and component names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !s.contains("..")
}

/// The file name a client sends must be one a Debian package can have: letters, digits and
/// `+ . ~ _ -` (and apt's `%3a` for an epoch's colon), ending in `.deb`. The pool name comes from
/// the control file; a name outside that grammar is refused rather than silently renamed.
fn check_filename(name: &str) -> Result<()> {
    let unescaped = name.replace("%3a", "").replace("%3A", "");
    let ok = name.len() <= 255
        && name.ends_with(".deb")
        && name.len() > 4
        && unescaped
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'~' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid package file name {:?}: a .deb file name uses ASCII letters, digits and '+', '.', '~', '_', '-' only and ends in \".deb\".",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// The `dist` and `component` parameters of an upload, checked.
fn dist_and_component(req: &UploadRequest) -> Result<(&str, &str)> {
    let dist = req.param("dist").ok_or_else(|| {
        Error::invalid("Missing the parameter \"dist\" (the distribution, e.g. dist=bookworm).")
    })?;
    let component = req.param("component").unwrap_or("main");
    for (what, v) in [("dist", dist), ("component", component)] {
        if !valid_segment(v) {
            return Err(Error::invalid(format!(
                "Invalid {what} {v:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit."
            )));
        }
    }
    Ok((dist, component))
}

impl AptProvider {
    /// A source package: its `.dsc` and the files it lists, one record each.
    async fn upload_source(
        &self,
        cx: &RepoContext,
        req: &UploadRequest,
        dsc: &UploadedFile,
        files: &[&UploadedFile],
        dist: &str,
        component: &str,
    ) -> Result<UploadOutcome> {
        let pooled = pooled(cx, dsc, files, component).await?;
        let records = source::records(dsc, files, &pooled, dist, component)?;
        let first = &records[0];
        for (param, value) in [("name", &first.name), ("version", &first.version)] {
            if let Some(given) = req.param(param)
                && given != value
            {
                return Err(Error::invalid(format!(
                    "The {param} parameter {given:?} does not match {value:?} in the .dsc."
                )));
            }
        }
        for r in &records {
            shared_pool_path(cx, &r.path, &r.sha256, dist).await?;
        }
        Ok(UploadOutcome::many(records))
    }
}

/// The files a `.dsc` lists that an upload leaves out because the pool already holds them with
/// the listed content (an upstream tarball that an earlier revision brought).
async fn pooled(
    cx: &RepoContext,
    dsc_file: &UploadedFile,
    files: &[&UploadedFile],
    component: &str,
) -> Result<Vec<String>> {
    let dsc = source::read(dsc_file)?;
    let dir = source::pool_dir(component, &dsc.source);
    let mut out = Vec::new();
    for listed in &dsc.files {
        if files.iter().any(|f| f.filename == listed.name) {
            continue;
        }
        let path = format!("{dir}/{}", listed.name);
        let held = cx.catalog.list(ListQuery::path(path)).await?;
        if held
            .iter()
            .any(|r| r.sha256 == listed.sha256 && r.size == listed.size)
        {
            out.push(listed.name.clone());
        }
    }
    Ok(out)
}

/// A binary package's Contents lines, as a derived blob.
type ContentsBlob = Option<(BlobPath, String)>;

/// Adds a binary package's Contents lines to its outcome, and keeps them for this node's
/// next publish.
fn with_contents(
    node: &index::Node,
    outcome: UploadOutcome,
    contents: ContentsBlob,
) -> UploadOutcome {
    match contents {
        Some((path, text)) => {
            node.lists.insert(path.as_ref(), &text);
            outcome.with_derived(path, text)
        }
        None => outcome,
    }
}

/// The record of one binary package for `component` of `dist`, and its Contents lines; its
/// pool name comes from its control file, which must match the request's `name`, `version`
/// and `arch` when given.
async fn binary_record(
    cx: &RepoContext,
    file: &UploadedFile,
    req: Option<&UploadRequest>,
    dist: &str,
    component: &str,
) -> Result<(NewRecord, ContentsBlob)> {
    let control = parse_control(&control_text(&file.path)?)?;
    let files = contents::data_files(&file.path)?;
    for (param, value) in [
        ("name", &control.package),
        ("version", &control.version),
        ("arch", &control.architecture),
    ] {
        if let Some(given) = req.and_then(|r| r.param(param))
            && given != value
        {
            return Err(Error::invalid(format!(
                "The {param} parameter {given:?} does not match {value:?} in the package's control file."
            )));
        }
    }
    let version_no_epoch = control
        .version
        .split_once(':')
        .map_or(control.version.as_str(), |(_, v)| v);
    let filename = format!(
        "{}_{}_{}.deb",
        control.package, version_no_epoch, control.architecture
    );
    let path = format!(
        "pool/{component}/{}/{}/{filename}",
        pool_prefix(&control.source),
        control.source
    );
    shared_pool_path(cx, &path, &file.sha256, dist).await?;
    let mut meta = json!({
        "component": component,
        "arch": control.architecture,
        "source": control.source,
        "summary": control.summary,
        "depends": control.depends,
        "stanza": control.stanza,
    });
    let contents = files.map(|files| {
        meta["contents"] = json!(files.len());
        let section = deb::field(&control.stanza, "Section");
        let location = contents::location(section.as_deref(), &control.package);
        (
            contents::blob(&file.sha256),
            contents::lines(&files, &location),
        )
    });
    let record = NewRecord::for_upload(
        file,
        path,
        &control.package,
        &control.package,
        &control.version,
    )
    .with_scope(dist)
    .with_meta(meta);
    Ok((record, contents))
}

/// The pool is shared by the dists of a repo: one path, one content.
async fn shared_pool_path(cx: &RepoContext, path: &str, sha256: &str, dist: &str) -> Result<()> {
    for other in cx.catalog.list(ListQuery::path(path)).await? {
        if other.sha256 != sha256 && other.scope != dist {
            return Err(Error::Conflict(format!(
                "File already exists: {path} is in dist {:?} with different content.",
                other.scope
            )));
        }
    }
    Ok(())
}

/// The content type of a pool file.
fn pool_content_type(path: &str) -> &'static str {
    if path.ends_with(".deb") {
        "application/vnd.debian.binary-package"
    } else if path.ends_with(".dsc") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn pool_prefix(source: &str) -> &str {
    if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..1]
    }
}

#[async_trait]
impl Provider for AptProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn description(&self) -> &'static str {
        "Debian and Ubuntu packages for apt-get, signed with a key per repo."
    }

    async fn repo_view(&self, cx: &RepoContext) -> Result<RepoView> {
        view::repo_view(cx).await
    }

    fn file_view(&self, record: &FileRecord) -> FileView {
        view::file_view(record)
    }

    fn proxy(&self) -> Option<&dyn ProxyFormat> {
        Some(&proxy::AptProxy)
    }

    /// A package's Contents lines go with it.
    fn per_file_derived(&self) -> &'static [&'static str] {
        &[contents::FOLDER]
    }

    /// Debian's `dput` (`method = http`) `PUT`s each file to `incoming/`, the `.changes` last.
    fn staging(&self) -> Option<Staging> {
        Some(Staging::new(changes::INCOMING, ".changes"))
    }

    /// Versions count per package, architecture and dist; a source package keeps the files
    /// its `.dsc` lists (an upstream tarball shared by its revisions).
    fn retention_unit(&self, record: &FileRecord) -> RetentionUnit {
        RetentionUnit::new(index::arch(record), source::listed_paths(record))
    }

    fn compare_versions(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        Some(deb::compare_versions(a, b))
    }

    async fn check(&self, cx: &RepoContext) -> Result<CheckReport> {
        check::check(cx, &self.node).await
    }

    async fn upload(&self, cx: &RepoContext, req: UploadRequest) -> Result<UploadOutcome> {
        match req.native_path.as_deref() {
            Some(p) if p.starts_with(changes::INCOMING) => {
                return self.upload_changes(cx, &req).await;
            }
            Some(p) if !p.is_empty() => {
                return Err(Error::not_found(
                    "Upload .deb files to /addpkg or the repo root, or with dput to incoming/.",
                ));
            }
            _ => {}
        }
        let (dist, component) = dist_and_component(&req)?;
        let files: Vec<&UploadedFile> = req.files().collect();
        if let Some(dsc) = source::dsc_of(&files) {
            return self
                .upload_source(cx, &req, dsc, &files, dist, component)
                .await;
        }
        check_filename(&req.file.filename)?;
        let (record, contents) = binary_record(cx, &req.file, Some(&req), dist, component).await?;
        Ok(with_contents(
            &self.node,
            UploadOutcome::one(record),
            contents,
        ))
    }

    async fn index(&self, cx: &RepoContext, scope: IndexScope) -> Result<()> {
        let dists: BTreeSet<String> = match &scope {
            IndexScope::Scopes(s) => s.iter().cloned().collect(),
            _ => cx
                .catalog
                .list(ListQuery::all())
                .await?
                .into_iter()
                .map(|r| r.scope)
                .collect(),
        };
        let full = !matches!(scope, IndexScope::Scopes(_));
        for dist in dists {
            if scope == IndexScope::Rebuild {
                index::rebuild(cx, &dist, &self.node).await?;
                continue;
            }
            let _how = index::publish(cx, &dist, full, &self.node).await?;
            #[cfg(test)]
            self.published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(_how);
        }
        self.cache
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(repo, _), _| repo != &cx.repo);
        Ok(())
    }

    async fn serve(&self, cx: &RepoContext, req: ServeRequest) -> Result<ServeResponse> {
        if !req.is_read() {
            return match (req.method.as_str(), req.path.as_str()) {
                ("POST", "snapshots") => self.call_snapshot(cx, &req.body).await,
                ("POST", "snapshots/remove") => self.call_remove_snapshot(cx, &req.body).await,
                ("POST", "promote") => self.call_promote(cx, &req.body).await,
                _ => Err(Error::not_found(
                    "There is no such API call: this repo takes POST snapshots, POST snapshots/remove and POST promote.",
                )),
            };
        }
        let path = req.path.as_str();
        if path == "snapshots" || path == "snapshots/" {
            return self.serve_snapshot(cx, "").await;
        }
        if let Some(rest) = path.strip_prefix("snapshots/") {
            return self.serve_snapshot(cx, rest).await;
        }
        match path {
            "" => return view::root_page(cx).await,
            "pubkey" | "pubkey.asc" => {
                return Ok(ServeResponse::bytes(
                    "application/pgp-keys",
                    cx.signer.public_key_armored().await?,
                ));
            }
            "pubkey.gpg" => {
                return Ok(ServeResponse::bytes(
                    "application/pgp-keys",
                    cx.signer.public_key_binary().await?,
                ));
            }
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("dists/") {
            let (dist, rest) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_segment(dist) {
                return Err(Error::not_found("There is no such dist."));
            }
            if rest.is_empty() && !path.ends_with('/') {
                return ServeResponse::redirect(&format!("{}dists/{dist}/", cx.base_url), true);
            }
            return self.serve_dist(cx, dist, rest).await;
        }
        if path.starts_with("pool/") {
            return match cx.catalog.get(path).await? {
                Some(r) => Ok(ServeResponse::blob(
                    pool_content_type(path),
                    BlobRef::Content { sha256: r.sha256 },
                )),
                None => Err(Error::not_found(format!(
                    "There is no file {path:?} in this repo."
                ))),
            };
        }
        Err(Error::not_found(
            "There is nothing at this path of the repo.",
        ))
    }
}

#[cfg(test)]
mod tests;
