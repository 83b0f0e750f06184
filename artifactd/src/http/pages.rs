//! Server-rendered HTML pages of the host (home, providers, a provider's repos).

use artifactd_plugin_api::DynProvider;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use minijinja::{Environment, Value, context};

use super::{ApiError, AppState};
use crate::auth::Auth;
use crate::db::entities::repo;

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
];

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

    fn render(&self, name: &str, ctx: Value) -> Result<Response, ApiError> {
        let html = self
            .env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ApiError::internal("page rendering failed", e))?;
        Ok((
            [
                (CONTENT_TYPE, "text/html; charset=utf-8"),
                (CACHE_CONTROL, "no-cache"),
            ],
            html,
        )
            .into_response())
    }
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

fn repo_rows(repos: &[repo::Model]) -> Vec<Value> {
    repos
        .iter()
        .map(|r| {
            context! {
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
) -> Result<Response, ApiError> {
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
        context! { providers, repos => repo_rows(&repos), host => host_of(&headers) },
    )
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
            repos => repo_rows(&repos),
            host => host_of(headers),
        },
    )
}

/// `GET /static/style.css`.
pub async fn style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
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
