//! The APT provider: signed Debian/Ubuntu repositories that `apt-get` trusts.
//!
//! URLs below `/repo/apt/<repo>/` (the repo root is the `deb` line's URI):
//! - `dists/<dist>/InRelease`, `Release`, `Release.gpg`: signed with the repo's own key;
//! - `dists/<dist>/<component>/binary-<arch>/Packages[.gz]` and their `by-hash/SHA256/…`;
//! - `pool/<component>/<prefix>/<source>/<file>.deb`: the packages;
//! - `pubkey` (armored), `pubkey.gpg` (binary keyring), `dists/<dist>/install` (set-up script);
//! - `` and `dists/<dist>/`: HTML listings.

mod deb;
mod index;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::html::{escape, url_segment};
use artifactd_plugin_api::http::HeaderValue;
use artifactd_plugin_api::http::header::CACHE_CONTROL;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::serde_json::{Value, json};
use artifactd_plugin_api::ui::{Description, FileView, RepoView, Snippet, meta_str};
use artifactd_plugin_api::{
    BlobRef, Error, FileRecord, IndexScope, ListQuery, NewRecord, Provider, ProviderFactory,
    RepoContext, Result, ServeRequest, ServeResponse, UploadOutcome, UploadRequest, async_trait,
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
    plain: index::PlainCache,
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

fn pool_prefix(source: &str) -> &str {
    if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..1]
    }
}

impl AptProvider {
    async fn state(&self, cx: &RepoContext, dist: &str) -> Result<Arc<index::State>> {
        let generation = cx.catalog.generation().await?;
        let key = (cx.repo.clone(), dist.to_owned());
        if let Some((g, s)) = self
            .cache
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && *g == generation
        {
            return Ok(s.clone());
        }
        let state = index::load_state(cx, dist)
            .await?
            .ok_or_else(|| Error::not_found(format!("There is no dist {dist:?} in this repo.")))?;
        let state = Arc::new(state);
        let mut states = self
            .cache
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if states.len() > 1024 {
            states.clear();
        }
        states.insert(key, (generation, state.clone()));
        Ok(state)
    }

    async fn serve_dist(&self, cx: &RepoContext, dist: &str, rest: &str) -> Result<ServeResponse> {
        if rest.is_empty() {
            return dist_page(cx, dist).await;
        }
        if rest == "install" {
            let state = self.state(cx, dist).await?;
            return Ok(ServeResponse::bytes(
                "text/x-shellscript; charset=utf-8",
                install_script(cx, dist, &state),
            ));
        }
        if rest.contains("/by-hash/SHA256/") {
            let hexpart = rest.rsplit('/').next().unwrap_or_default();
            if hexpart.len() != 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::not_found("There is no such index file."));
            }
            // Compressed indexes are stored under their hash; the plain `Packages` (which apt
            // does not fetch when `.gz` is listed) under a name of its publish.
            let rel = format!(
                "{}Packages",
                rest.split("by-hash/").next().unwrap_or_default()
            );
            if let Ok(state) = self.state(cx, dist).await
                && state.files.get(&rel).is_some_and(|f| f.sha256 == hexpart)
            {
                return Ok(ServeResponse::bytes(
                    "application/octet-stream",
                    self.plain.plain(cx, &state, &rel).await?,
                ));
            }
            return Ok(ServeResponse::blob(
                "application/octet-stream",
                BlobRef::Derived(BlobPath::from(format!("dists/{dist}/{rest}"))),
            )
            .with_header(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ));
        }
        let state = self.state(cx, dist).await?;
        let no_cache = HeaderValue::from_static("no-cache");
        match rest {
            "InRelease" => Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                state.inrelease.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            "Release" => Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                state.release.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            "Release.gpg" => Ok(ServeResponse::bytes(
                "application/pgp-signature",
                state.release_gpg.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            _ => {
                let blob = &state
                    .files
                    .get(rest)
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "There is no index file {rest:?} in dist {dist:?}."
                        ))
                    })?
                    .blob;
                if blob.is_empty() {
                    return Ok(ServeResponse::bytes(
                        "text/plain; charset=utf-8",
                        self.plain.plain(cx, &state, rest).await?,
                    )
                    .with_header(CACHE_CONTROL, no_cache));
                }
                let ct = if rest.ends_with(".gz") {
                    "application/gzip"
                } else if rest.ends_with(".xz") {
                    "application/x-xz"
                } else {
                    "text/plain; charset=utf-8"
                };
                Ok(
                    ServeResponse::blob(ct, BlobRef::Derived(BlobPath::from(blob.as_str())))
                        .with_header(CACHE_CONTROL, no_cache),
                )
            }
        }
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
        let mut dists: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in cx.catalog.list(ListQuery::all()).await? {
            let comp = index::component(&r).to_owned();
            dists.entry(r.scope).or_default().insert(comp);
        }
        let base = &cx.base_url;
        let repo = &cx.repo;
        let keyring = format!("/etc/apt/keyrings/artifactd-{repo}.gpg");
        let auth = if cx.settings.private {
            " -u \"token:$ARTIFACTD_TOKEN\""
        } else {
            ""
        };
        let mut setup = vec![Snippet::new(
            "Signing key",
            format!(
                "sudo install -d -m 0755 /etc/apt/keyrings\nsudo curl -fsSL{auth} {base}pubkey.gpg -o {keyring}"
            ),
        )];
        if cx.settings.private {
            setup.push(Snippet::new(
                format!("/etc/apt/auth.conf.d/artifactd-{repo}.conf"),
                format!("machine {base} login token password YOUR_TOKEN"),
            ));
        }
        for (dist, comps) in dists.iter().take(8) {
            let comps: Vec<&str> = comps.iter().map(String::as_str).collect();
            setup.push(Snippet::new(
                format!("/etc/apt/sources.list.d/artifactd-{repo}-{dist}.sources"),
                sources_file(cx, dist, &comps, &keyring),
            ));
            setup.push(Snippet::new(
                format!("One-line style ({dist})"),
                format!(
                    "deb [signed-by={keyring}] {base} {dist} {}",
                    comps.join(" ")
                ),
            ));
            setup.push(Snippet::new(
                format!("Install script ({dist})"),
                format!("curl -fsSL{auth} {base}dists/{dist}/install | sudo sh"),
            ));
        }
        Ok(RepoView::new("Dist", setup))
    }

    fn file_view(&self, record: &FileRecord) -> FileView {
        let mut view = FileView::from_meta(record);
        let stanza = meta_str(record, "stanza").unwrap_or_default();
        if let Some(text) = long_description(stanza) {
            view.description = Some(Description {
                text,
                markdown: false,
            });
        }
        let field = |name: &str| deb::field(stanza, name);
        view = view
            .fact("Dist", Some(&record.scope))
            .fact("Architecture", meta_str(record, "arch"))
            .fact("Component", meta_str(record, "component"))
            .fact("Source", meta_str(record, "source"))
            .fact("Depends", meta_str(record, "depends"))
            .fact("Recommends", field("Recommends").as_deref())
            .fact("Section", field("Section").as_deref())
            .fact("Maintainer", field("Maintainer").as_deref());
        if let Some(home) = field("Homepage") {
            view.links.push(("Homepage".to_owned(), home));
        }
        view.group = Some(format!(
            "{} / {}",
            index::component(record),
            index::arch(record)
        ));
        view
    }

    async fn upload(&self, cx: &RepoContext, req: UploadRequest) -> Result<UploadOutcome> {
        if req.native_path.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::not_found(
                "Upload .deb files to /addpkg or the repo root.",
            ));
        }
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
        let control = parse_control(&control_text(&req.file.path)?)?;
        for (param, value) in [
            ("name", &control.package),
            ("version", &control.version),
            ("arch", &control.architecture),
        ] {
            if let Some(given) = req.param(param)
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
        // The pool is shared by the dists of a repo: one path, one content.
        for other in cx.catalog.list(ListQuery::path(&path)).await? {
            if other.sha256 != req.file.sha256 && other.scope != dist {
                return Err(Error::Conflict(format!(
                    "File already exists: {path} is in dist {:?} with different content.",
                    other.scope
                )));
            }
        }
        let meta = json!({
            "component": component,
            "arch": control.architecture,
            "source": control.source,
            "summary": control.summary,
            "depends": control.depends,
            "stanza": control.stanza,
        });
        Ok(UploadOutcome::one(
            NewRecord::for_upload(
                &req.file,
                path,
                &control.package,
                &control.package,
                &control.version,
            )
            .with_scope(dist)
            .with_meta(meta),
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
            let _how = index::publish(cx, &dist, full, &self.plain).await?;
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
            return Err(Error::not_found("There is no such API call."));
        }
        let path = req.path.as_str();
        match path {
            "" => return root_page(cx).await,
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
                    "application/vnd.debian.binary-package",
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><header class=\"top\"><a class=\"brand\" href=\"/\">artifactd</a><nav><a href=\"/repo/\">Providers</a></nav></header><main>\n{body}</main></body></html>\n",
        t = escape(title)
    )
}

async fn root_page(cx: &RepoContext) -> Result<ServeResponse> {
    let records = cx.catalog.list(ListQuery::all()).await?;
    let mut dists: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *dists.entry(r.scope.as_str()).or_default() += 1;
    }
    let mut b = format!("<h1>APT repository {}</h1>\n", escape(&cx.repo));
    let _ = write!(
        b,
        "<p>Signing key: <a href=\"pubkey\">pubkey</a> (armored), <a href=\"pubkey.gpg\">pubkey.gpg</a> (keyring for <code>signed-by</code>).</p>\n<table><thead><tr><th>Dist</th><th class=\"num\">Packages</th><th>Files</th></tr></thead><tbody>\n"
    );
    for (d, n) in &dists {
        let d = url_segment(d);
        let _ = writeln!(
            b,
            "<tr><td><a href=\"dists/{d}/\">{d}</a></td><td class=\"num\">{n}</td><td><a href=\"dists/{d}/InRelease\">InRelease</a> · <a href=\"dists/{d}/Release\">Release</a> · <a href=\"dists/{d}/Release.gpg\">Release.gpg</a> · <a href=\"dists/{d}/install\">install script</a></td></tr>"
        );
    }
    b.push_str("</tbody></table>\n");
    Ok(ServeResponse::bytes(
        "text/html; charset=utf-8",
        page(&cx.repo, &b),
    ))
}

async fn dist_page(cx: &RepoContext, dist: &str) -> Result<ServeResponse> {
    let records = cx.catalog.list(ListQuery::all().in_scope(dist)).await?;
    if records.is_empty() {
        return Err(Error::not_found(format!(
            "There is no dist {dist:?} in this repo."
        )));
    }
    let mut groups: BTreeMap<(String, String), Vec<&FileRecord>> = BTreeMap::new();
    for r in &records {
        let comp = r
            .meta
            .get("component")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        let arch = r
            .meta
            .get("arch")
            .and_then(Value::as_str)
            .unwrap_or("all")
            .to_owned();
        groups.entry((comp, arch)).or_default().push(r);
    }
    let mut b = format!("<h1>{} · {}</h1>\n", escape(&cx.repo), escape(dist));
    for ((comp, arch), rs) in &groups {
        let _ = writeln!(
            b,
            "<h2>{} / {}</h2>\n<table><thead><tr><th>Package</th><th>Version</th><th>Description</th><th class=\"num\">Size</th></tr></thead><tbody>",
            escape(comp),
            escape(arch)
        );
        for r in rs {
            let summary = r
                .meta
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let _ = writeln!(
                b,
                "<tr><td><a href=\"../../{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                r.path
                    .split('/')
                    .map(url_segment)
                    .collect::<Vec<_>>()
                    .join("/"),
                escape(&r.name),
                escape(&r.version),
                escape(summary),
                r.size
            );
        }
        b.push_str("</tbody></table>\n");
    }
    Ok(ServeResponse::bytes(
        "text/html; charset=utf-8",
        page(dist, &b),
    ))
}

/// The long part of a stanza's `Description` (continuation lines, ` .` as an empty line).
fn long_description(stanza: &str) -> Option<String> {
    let mut lines = stanza
        .lines()
        .skip_while(|l| !l.starts_with("Description:"));
    lines.next()?;
    let text: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') || l.starts_with('\t'))
        .map(|l| {
            let l = &l[1..];
            if l == "." { "" } else { l }
        })
        .collect();
    let text = text.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// A deb822 `.sources` file for `dist`.
fn sources_file(cx: &RepoContext, dist: &str, comps: &[&str], keyring: &str) -> String {
    format!(
        "Types: deb\nURIs: {}\nSuites: {dist}\nComponents: {}\nSigned-By: {keyring}\n",
        cx.base_url.trim_end_matches('/'),
        comps.join(" ")
    )
}

fn install_script(cx: &RepoContext, dist: &str, state: &index::State) -> String {
    let base = cx.base_url.trim_end_matches('/');
    let comps: Vec<&str> = state.components.iter().map(String::as_str).collect();
    let repo = &cx.repo;
    format!(
        "#!/bin/sh\n# Adds the artifactd APT repository {repo} ({dist}) to this machine; run as root.\nset -eu\nkeyring=/etc/apt/keyrings/artifactd-{repo}.gpg\ninstall -d -m 0755 /etc/apt/keyrings\nif command -v curl >/dev/null 2>&1; then\n  curl -fsSL '{base}/pubkey.gpg' -o \"$keyring\"\nelse\n  wget -qO \"$keyring\" '{base}/pubkey.gpg'\nfi\nchmod 0644 \"$keyring\"\ncat > /etc/apt/sources.list.d/artifactd-{repo}-{dist}.sources <<EOF\n{sources}EOF\napt-get update\n",
        sources = sources_file(cx, dist, &comps, "$keyring")
    )
}

#[cfg(test)]
mod tests {
    use artifactd_plugin_api::Catalog as _;
    use artifactd_plugin_api::testing::{Kit, Sample, TestHost, conformance};
    use sha2::Digest as _;

    use super::*;
    use crate::testing::{Compression, Deb};

    fn sample(d: &Deb, params: &[(&str, &str)]) -> Sample {
        let (f, b) = d.build();
        Sample::new(&f, b, params)
    }

    #[tokio::test]
    async fn conforms() {
        conformance(
            Arc::new(AptProvider::default()),
            Kit {
                first: sample(
                    &Deb::new("alpha", "1.0-1", "amd64"),
                    &[("dist", "stable"), ("name", "alpha")],
                ),
                second: sample(&Deb::new("beta", "2.0", "all"), &[("dist", "stable")]),
                first_changed: sample(
                    &Deb::new("alpha", "1.0-1", "amd64").payload(b"other"),
                    &[("dist", "stable")],
                ),
            },
        )
        .await;
    }

    #[tokio::test]
    async fn publishes_packages_and_release() {
        let host = TestHost::new(Arc::new(AptProvider::default()));
        for d in [
            Deb::new("hello", "1.0", "amd64").compression(Compression::Xz),
            Deb::new("hello", "1.0", "arm64").compression(Compression::None),
            Deb::new("docs", "2:1.0-1", "all").line("Depends: hello (>= 1.0)"),
        ] {
            let (f, b) = d.build();
            host.upload("r", &f, &b, &[("dist", "bookworm")])
                .await
                .unwrap();
        }
        let (_, release) = host.get("r", "dists/bookworm/Release").await.unwrap();
        let release = String::from_utf8_lossy(&release).into_owned();
        assert!(
            release.contains("Suite: bookworm\nCodename: bookworm\n"),
            "{release}"
        );
        assert!(
            release.contains("Architectures: amd64 arm64\n"),
            "{release}"
        );
        assert!(
            release.contains("main/binary-amd64/Packages.gz"),
            "{release}"
        );
        let (_, packages) = host
            .get("r", "dists/bookworm/main/binary-amd64/Packages")
            .await
            .unwrap();
        let packages = String::from_utf8_lossy(&packages).into_owned();
        assert!(
            packages.contains("Package: docs\nVersion: 2:1.0-1\nArchitecture: all"),
            "{packages}"
        );
        assert!(
            packages.contains("Filename: pool/main/h/hello/hello_1.0_amd64.deb"),
            "{packages}"
        );
        assert!(!packages.contains("arm64"), "{packages}");
        let (_, inrelease) = host.get("r", "dists/bookworm/InRelease").await.unwrap();
        assert!(String::from_utf8_lossy(&inrelease).contains("BEGIN PGP SIGNED MESSAGE"));
        let e = host
            .upload("r", "x.deb", b"!<arch>\nbroken", &[("dist", "bookworm")])
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        let (f, b) = Deb::new("hello", "1.1", "amd64").build();
        let e = host.upload("r", &f, &b, &[]).await.unwrap_err();
        assert!(e.to_string().contains("dist"), "{e}");
    }

    /// Packages and Packages.gz of `dist`'s `main/binary-<arch>`; the gzip's members read as one
    /// stream must give the plain file.
    async fn packages(host: &TestHost, arch: &str) -> (Vec<u8>, Vec<u8>) {
        use std::io::Read as _;
        let base = format!("dists/stable/main/binary-{arch}/Packages");
        let plain = host.get("r", &base).await.unwrap().1.to_vec();
        let gz = host
            .get("r", &format!("{base}.gz"))
            .await
            .unwrap()
            .1
            .to_vec();
        let mut unpacked = Vec::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice())
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, plain, "Packages.gz holds Packages");
        // Both are served by hash, as Release lists them.
        for body in [&plain, &gz] {
            let digest: String = sha2::Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let dir = format!("dists/stable/main/binary-{arch}/by-hash/SHA256");
            let (_, served) = host.get("r", &format!("{dir}/{digest}")).await.unwrap();
            assert_eq!(&served.to_vec(), body);
        }
        (plain, gz)
    }

    async fn put(host: &TestHost, d: Deb) {
        let (f, b) = d.build();
        host.upload("r", &f, &b, &[("dist", "stable")])
            .await
            .unwrap();
    }

    async fn publish(host: &TestHost) -> index::Published {
        index::publish(&host.context("r"), "stable", false, &Default::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn incremental_publishes_equal_full_ones() {
        let provider = Arc::new(AptProvider::default());
        let host = TestHost::new(provider.clone());
        for i in 0..150 {
            let arch = if i % 3 == 0 { "all" } else { "amd64" };
            put(
                &host,
                Deb::new(&format!("p{}", i / 2), &format!("1.{i}"), arch),
            )
            .await;
        }
        // Lay the dist out in chunks for 150 packages, then change it one upload at a time.
        host.reindex("r").await.unwrap();
        assert_eq!(publish(&host).await, index::Published::Unchanged);
        host.set_overwrite("r", true);
        let changes = [
            Deb::new("new-one", "1.0", "amd64"),
            Deb::new("new-all", "2.0", "all").line("Depends: new-one"),
            Deb::new("p3", "1.7", "amd64").payload(b"replaced bytes"),
            Deb::new("p0", "1.0", "all").payload(b"replaced too"),
        ];
        for d in changes {
            let (f, b) = d.build();
            host.upload("r", &f, &b, &[("dist", "stable")])
                .await
                .unwrap();
            assert_eq!(
                provider.published.lock().unwrap().last(),
                Some(&index::Published::Changes)
            );
            let st = index::load_state(&host.context("r"), "stable")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(st.chunks, 4);
            assert_eq!(
                st.count,
                host.catalog("r")
                    .count(ListQuery::all().in_scope("stable"))
                    .await
                    .unwrap()
            );
        }
        put(&host, Deb::new("last", "1.0", "amd64")).await;
        let (plain, gz) = packages(&host, "amd64").await;
        let text = String::from_utf8_lossy(&plain).into_owned();
        assert_eq!(text.matches("Package: ").count(), 153, "{text}");
        assert!(text.contains("Package: new-all\nVersion: 2.0"));
        assert!(gz.windows(2).filter(|w| w == &[0x1f, 0x8b]).count() >= 4);
        let replaced = sha2::Sha256::digest(
            Deb::new("p3", "1.7", "amd64")
                .payload(b"replaced bytes")
                .build()
                .1,
        );
        assert!(text.contains(&format!(
            "SHA256: {}",
            replaced
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )));
        let release = host.get("r", "dists/stable/Release").await.unwrap().1;
        host.reindex("r").await.unwrap();
        assert_eq!(
            packages(&host, "amd64").await,
            (plain, gz),
            "same bytes as a full publish"
        );
        let again = host.get("r", "dists/stable/Release").await.unwrap().1;
        let files = |r: &[u8]| {
            String::from_utf8_lossy(r)
                .lines()
                .filter(|l| l.starts_with(' '))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(files(&release), files(&again));
    }

    #[tokio::test]
    async fn a_dist_whose_last_package_goes_is_removed_with_its_index_files() {
        let host = TestHost::new(Arc::new(AptProvider::default()));
        // The by-hash name of the amd64 Packages.gz that Release lists.
        let gz_by_hash = async || {
            let release = host.get("r", "dists/stable/Release").await.unwrap().1;
            let sha = String::from_utf8_lossy(&release)
                .lines()
                .find(|l| l.ends_with(" main/binary-amd64/Packages.gz"))
                .and_then(|l| l.split_whitespace().next())
                .unwrap()
                .to_owned();
            format!("dists/stable/main/binary-amd64/by-hash/SHA256/{sha}")
        };
        put(&host, Deb::new("tool", "1.0", "amd64")).await;
        let first = gz_by_hash().await;
        put(&host, Deb::new("tool", "1.1", "amd64")).await;
        let second = gz_by_hash().await;
        assert_ne!(first, second);
        // The first index is retired, not gone yet: clients of the old InRelease read it.
        assert!(host.get("r", &first).await.is_ok());
        put(&host, Deb::new("other", "1.0", "amd64")).await;
        let catalog = host.catalog("r");
        for path in [
            "pool/main/t/tool/tool_1.0_amd64.deb",
            "pool/main/t/tool/tool_1.1_amd64.deb",
        ] {
            assert!(catalog.delete("stable", path).await.unwrap());
        }
        // A dist that still has a package keeps its files.
        assert_eq!(publish(&host).await, index::Published::Full);
        let last = gz_by_hash().await;
        assert!(host.get("r", &last).await.is_ok());
        assert!(
            catalog
                .delete("stable", "pool/main/o/other/other_1.0_amd64.deb")
                .await
                .unwrap()
        );
        assert_eq!(publish(&host).await, index::Published::Full);
        for path in [
            "dists/stable/InRelease",
            "dists/stable/Release",
            "dists/stable/main/binary-amd64/Packages.gz",
            &first,
            &second,
            &last,
        ] {
            assert!(host.get("r", path).await.is_err(), "{path} is still served");
        }
        assert!(
            index::load_state(&host.context("r"), "stable")
                .await
                .unwrap()
                .is_none()
        );
        // An upload brings the dist back.
        put(&host, Deb::new("tool", "2.0", "amd64")).await;
        assert!(
            String::from_utf8_lossy(&packages(&host, "amd64").await.0).contains("Version: 2.0")
        );
    }

    /// A record of `tool` inserted behind the provider's back (no publish follows).
    async fn insert_behind(host: &TestHost, version: &str) {
        let path = format!("pool/main/t/tool/tool_{version}_amd64.deb");
        let stanza = format!("Package: tool\nVersion: {version}\nArchitecture: amd64");
        host.catalog("r")
            .insert(
                NewRecord::new(&path, "tool", "tool", version, 1, "00".repeat(32))
                    .with_scope("stable")
                    .with_meta(json!({"component": "main", "arch": "amd64", "stanza": stanza})),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn publishes_in_full_when_changes_cannot_be_applied() {
        use index::Published::{Changes, Full, Unchanged};
        let host = TestHost::new(Arc::new(AptProvider::default()));
        put(&host, Deb::new("docs", "1.0", "all")).await;
        // Only `all` packages: the default architectures, then the real one.
        assert!(!packages(&host, "i386").await.0.is_empty());
        put(&host, Deb::new("tool", "1.0", "amd64")).await;
        let (_, release) = host.get("r", "dists/stable/Release").await.unwrap();
        assert!(String::from_utf8_lossy(&release).contains("Architectures: amd64\n"));
        assert!(
            host.get("r", "dists/stable/main/binary-i386/Packages")
                .await
                .is_err()
        );
        put(&host, Deb::new("tool", "1.1", "amd64")).await;
        // A deletion and an insert that no publish saw, as after a crash between the two.
        assert!(
            host.catalog("r")
                .delete("stable", "pool/main/t/tool/tool_1.0_amd64.deb")
                .await
                .unwrap()
        );
        insert_behind(&host, "1.4").await;
        assert_eq!(publish(&host).await, Full, "the count shows the deletion");
        let text = String::from_utf8_lossy(&packages(&host, "amd64").await.0).into_owned();
        assert!(
            !text.contains("tool_1.0_amd64") && text.contains("tool_1.4_amd64"),
            "{text}"
        );
        insert_behind(&host, "1.5").await;
        assert_eq!(publish(&host).await, Changes);
        assert!(
            String::from_utf8_lossy(&packages(&host, "amd64").await.0).contains("tool_1.5_amd64")
        );
        assert_eq!(publish(&host).await, Unchanged);
        // A new architecture or component needs new indexes.
        put(&host, Deb::new("tool", "1.3", "arm64")).await;
        assert!(
            packages(&host, "arm64")
                .await
                .0
                .starts_with(b"Package: docs")
        );
        let (f, b) = Deb::new("extra", "1.0", "amd64").build();
        host.upload("r", &f, &b, &[("dist", "stable"), ("component", "contrib")])
            .await
            .unwrap();
        let (_, release) = host.get("r", "dists/stable/Release").await.unwrap();
        assert!(String::from_utf8_lossy(&release).contains("Components: contrib main\n"));
        assert!(
            host.get("r", "dists/stable/contrib/binary-arm64/Packages.gz")
                .await
                .is_ok()
        );
    }
}
