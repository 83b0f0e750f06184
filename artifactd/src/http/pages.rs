//! The web UI: server-rendered pages for every provider (home, search, a repo with its set-up
//! instructions, a package with its versions and files, a scope such as an APT dist), and the
//! form posts behind their delete and yank buttons.
//!
//! Every value is escaped by the templates (auto-escaping is on for `.html`); package
//! descriptions are Markdown whose raw HTML goes through an allow-list (see `markdown`);
//! the pages load no inline script (the Content-Security-Policy forbids it) and work without
//! JavaScript, which only adds copy buttons.

use std::collections::BTreeMap;

use artifactd_plugin_api::html::url_segment;
use artifactd_plugin_api::{DynProvider, ListQuery, RepoContext};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, body::Body};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use super::extract::{Path, Query};
use super::{ApiError, AppState, browse, validate_repo_name};
use crate::auth::{Auth, Scope};
use crate::db::entities::repo;
use crate::db::settings_of;

/// The page templates, embedded in the binary.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("home.html", include_str!("../../templates/home.html")),
    (
        "providers.html",
        include_str!("../../templates/providers.html"),
    ),
    (
        "provider.html",
        include_str!("../../templates/provider.html"),
    ),
    (
        "repo_table.html",
        include_str!("../../templates/repo_table.html"),
    ),
    ("repo.html", include_str!("../../templates/repo.html")),
    ("package.html", include_str!("../../templates/package.html")),
    (
        "listed_package.html",
        include_str!("../../templates/listed_package.html"),
    ),
    ("scope.html", include_str!("../../templates/scope.html")),
    ("search.html", include_str!("../../templates/search.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("snippet.html", include_str!("../../templates/snippet.html")),
];

/// Scripts only from this server, no plugins, no framing, forms only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

impl Pages {
    /// Loads the templates; they are checked by the tests, so failure here is a build bug.
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "Template does not compile.");
            }
        }
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        Self { env }
    }

    pub(super) fn render(&self, name: &str, ctx: Value) -> Result<Response, ApiError> {
        let html = self
            .env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ApiError::internal("page rendering failed", e))?;
        Ok(html_response(StatusCode::OK, html))
    }

    /// An error as an HTML page, with the status and headers (such as the Basic challenge) of
    /// its JSON form.
    pub fn error(&self, e: ApiError) -> Response {
        let status = e.status();
        let ctx = context! { title => status.canonical_reason().unwrap_or("Error"), message => e.public_message() };
        let html = self
            .env
            .get_template("message.html")
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|_| e.public_message().to_owned());
        let mut resp = e.into_response();
        let fresh = html_response(status, html);
        *resp.body_mut() = fresh.into_body();
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp.headers_mut().remove(http::header::CONTENT_LENGTH);
        for h in ["content-security-policy", "x-content-type-options"] {
            if let Some(v) = html_headers().get(h) {
                resp.headers_mut().insert(h, v.clone());
            }
        }
        resp
    }
}

fn html_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = Response::new(Body::from(html));
    *resp.status_mut() = status;
    *resp.headers_mut() = html_headers();
    resp
}

/// Renders a page handler's result, errors included, as HTML.
pub(super) fn page(st: &AppState, r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| st.inner.pages.error(e))
}

/// `1536` → `"1.5 KiB"`.
pub fn human_size(bytes: i64) -> String {
    let mut v = bytes.max(0) as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{bytes} B")
}

/// Milliseconds since the epoch → `2026-12-02 16:40 UTC`, or `—` for never.
pub fn human_time(ms: i64) -> String {
    if ms <= 0 {
        return "—".to_owned();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

fn repo_rows(repos: &[repo::Model], packages: &std::collections::HashMap<i64, i64>) -> Vec<Value> {
    repos
        .iter()
        .map(|r| {
            context! {
                href => repo_href(&r.provider, &r.name),
                packages => packages.get(&r.id).copied().unwrap_or(0),
                provider => &r.provider,
                name => &r.name,
                files => r.file_count,
                size => human_size(r.total_size),
                last_upload => human_time(r.last_upload),
            }
        })
        .collect()
}

fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:8080")
        .to_owned()
}

async fn provider_list(st: &AppState, auth: &Auth) -> Result<Vec<Value>, ApiError> {
    let repos: Vec<repo::Model> = st
        .inner
        .db
        .all_repos()
        .await?
        .into_iter()
        .filter(|r| st.can_read(auth, r))
        .collect();
    Ok(st
        .inner
        .registry
        .providers()
        .map(|p| {
            let n = repos.iter().filter(|r| r.provider == p.kind()).count();
            context! { kind => p.kind(), description => p.description(), repos => n }
        })
        .collect())
}

/// `GET /`.
pub async fn home(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        let repos: Vec<repo::Model> = st
            .inner
            .db
            .all_repos()
            .await?
            .into_iter()
            .filter(|r| st.can_read(&auth, r))
            .collect();
        let providers = provider_list(&st, &auth).await?;
        st.inner.pages.render(
            "home.html",
            context! {
                providers,
                repos => repo_rows(&repos, &st.inner.db.package_counts(None).await?),
                host => host_of(&headers),
                user => signed_in(&auth),
            },
        )
    }
    .await;
    page(&st, r)
}

/// `GET /repo/`.
pub async fn providers(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
) -> Result<Response, ApiError> {
    let providers = provider_list(&st, &auth).await?;
    st.inner
        .pages
        .render("providers.html", context! { providers })
}

/// `GET /repo/<kind>/`.
pub async fn provider_repos(
    st: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    provider: &DynProvider,
) -> Result<Response, ApiError> {
    let repos: Vec<repo::Model> = st
        .inner
        .db
        .repos(provider.kind())
        .await?
        .into_iter()
        .filter(|r| st.can_read(auth, r))
        .collect();
    st.inner.pages.render(
        "provider.html",
        context! {
            kind => provider.kind(),
            description => provider.description(),
            repos => repo_rows(&repos, &st.inner.db.package_counts(None).await?),
            host => host_of(headers),
        },
    )
}

/// `/ui/<kind>/<repo>/`: the repo page's URL.
pub fn repo_href(kind: &str, repo: &str) -> String {
    format!("/ui/{}/{}/", url_segment(kind), url_segment(repo))
}

/// The package page's URL.
pub(super) fn package_href(kind: &str, repo: &str, key: &str) -> String {
    format!("{}{}/", repo_href(kind, repo), url_segment(key))
}

/// The download URL of a file below `/repo/`.
pub(super) fn file_href(kind: &str, repo: &str, path: &str) -> String {
    let path: Vec<String> = path.split('/').map(url_segment).collect();
    format!(
        "/repo/{}/{}/{}",
        url_segment(kind),
        url_segment(repo),
        path.join("/")
    )
}

/// What `auth` may do on a repo, for showing buttons (the posts check again).
pub(super) fn rights(st: &AppState, auth: &Auth, row: &repo::Model) -> (bool, bool) {
    let private = settings_of(row).private;
    let target = Some((row.provider.as_str(), row.name.as_str()));
    (
        st.authorize(auth, target, private, Scope::Write).is_ok(),
        st.authorize(auth, target, private, Scope::Admin).is_ok(),
    )
}

/// The provider, repo row and hook context of a readable repo.
pub(super) async fn open_repo(
    st: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    kind: &str,
    name: &str,
) -> Result<(DynProvider, repo::Model, RepoContext), ApiError> {
    let provider = st.inner.registry.get(kind)?.clone();
    validate_repo_name(name)?;
    let row = st.repo_for(auth, kind, name, Scope::Read).await?;
    let cx = st.context(
        kind,
        name,
        Some(&row),
        auth.principal.clone(),
        &st.base_url(headers),
    );
    Ok((provider, row, cx))
}

pub(super) fn signed_in(auth: &Auth) -> Option<String> {
    auth.scope.map(|_| auth.principal.label())
}

#[derive(Deserialize)]
pub struct Filter {
    q: Option<String>,
}

/// `GET /ui/<kind>/<repo>/`.
pub async fn repo_page(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
    Path((kind, name)): Path<(String, String)>,
    f: Result<Query<Filter>, ApiError>,
) -> Response {
    let r = async {
        let Query(f) = f?;
        let (provider, row, cx) = open_repo(&st, &auth, &headers, &kind, &name).await?;
        let q = f.q.unwrap_or_default();
        // One read of the catalog serves the scope list and the package list.
        let files = cx.catalog.list(ListQuery::all()).await?;
        let mut scopes: BTreeMap<String, usize> = BTreeMap::new();
        for r in files.iter().filter(|r| !r.scope.is_empty()) {
            *scopes.entry(r.scope.clone()).or_default() += 1;
        }
        let packages: Vec<Value> = browse::packages(files, &q.trim().to_ascii_lowercase())
            .into_iter()
            .map(|p| {
                context! {
                    href => package_href(&kind, &name, &p.key),
                    name => p.name,
                    latest => p.latest,
                    versions => p.versions,
                    size => human_size(i64::try_from(p.size).unwrap_or(i64::MAX)),
                    last_upload => human_time(p.last_upload),
                    summary => p.summary,
                }
            })
            .collect();
        let view = match provider.repo_view(&cx).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(provider = %kind, repo = %name, error = %e, "No set-up instructions.");
                Default::default()
            }
        };
        let scopes: Vec<Value> = scopes
            .into_iter()
            .map(|(s, n)| context! { href => format!("{}-/{}/", repo_href(&kind, &name), url_segment(&s)), name => s, files => n })
            .collect();
        let (_, can_admin) = rights(&st, &auth, &row);
        let members = (row.kind == crate::proxy::VIRTUAL)
            .then(|| crate::proxy::RepoConfig::of(&row).members);
        let proxy = crate::proxy::summary(&st.inner.db, &row).await?.map(|p| {
            context! { upstream => p.upstream, files => p.files, size => human_size(p.size), projects => p.projects, documents => p.documents }
        });
        st.inner.pages.render(
            "repo.html",
            context! {
                kind, name, q, packages, scopes, can_admin, proxy, members,
                repo_kind => row.kind.clone(),
                scope_label => view.scope_label,
                setup => Value::from(minijinja::value::Serde(&view.setup)),
                url => cx.base_url,
                private => settings_of(&row).private,
                files => row.file_count,
                size => human_size(row.total_size),
                last_upload => human_time(row.last_upload),
                user => signed_in(&auth),
            },
        )
    }
    .await;
    page(&st, r)
}

/// `GET /search?q=`.
pub async fn search_page(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    f: Result<Query<Filter>, ApiError>,
) -> Response {
    let r = async {
        let Query(f) = f?;
        let q = f.q.unwrap_or_default();
        let hits: Vec<Value> = if q.trim().is_empty() {
            Vec::new()
        } else {
            browse::search(&st, &auth, &q)
                .await?
                .into_iter()
                .map(|h| {
                    context! {
                        href => package_href(&h.provider, &h.repo, &h.key),
                        repo_href => repo_href(&h.provider, &h.repo),
                        provider => h.provider, repo => h.repo, name => h.name,
                        version => h.version, summary => h.summary,
                    }
                })
                .collect()
        };
        st.inner.pages.render(
            "search.html",
            context! { q, hits, user => signed_in(&auth) },
        )
    }
    .await;
    page(&st, r)
}

/// `GET /static/style.css`.
pub async fn style() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
}

/// `GET /static/ui.js`: copy buttons and delete confirmations.
pub async fn script() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../static/ui.js"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile() {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src).unwrap();
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
