//! Sign-in and the form posts behind the package pages' delete and yank buttons, accepted only
//! from this server's own pages.

use artifactd_plugin_api::{DynProvider, FileRecord, ListQuery, RepoContext};
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::extract::{Form, Path, Query};
use super::pages::{open_repo, package_href, page, repo_href};
use super::{ApiError, AppState};
use crate::auth::{Auth, Scope};
use crate::db::entities::repo;
use crate::db::settings_of;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /login`: asks the browser for credentials (any user name, a token as the password), then
/// goes back to `next`.
pub async fn login(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    n: Result<Query<Next>, ApiError>,
) -> Response {
    let n = match n {
        Ok(Query(n)) => n,
        Err(e) => return st.inner.pages.error(e),
    };
    if auth.scope.is_none() {
        return st.inner.pages.error(ApiError::unauthorized(
            "Sign in with any user name and an artifactd token as the password.",
        ));
    }
    let next = n
        .next
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    see_other(&next)
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// Form posts are accepted only from this server's own pages: the browser's `Origin` (or
/// `Sec-Fetch-Site`) must say so, which stops other sites from posting with a signed-in
/// browser's credentials.
fn same_origin(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let base = st.base_url(headers);
    let origin_ok = headers
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(|o| base.trim_end_matches('/').starts_with(o) && !o.is_empty());
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match (origin_ok, fetch_site) {
        (Some(true), _) | (None, Some("same-origin")) => Ok(()),
        _ => Err(ApiError::forbidden(
            "Form posts are accepted only from this server's own pages.",
        )),
    }
}

/// The repo a form post acts on: the post must come from this server's pages and the caller
/// needs `need` on the repo.
async fn form_target(
    st: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    kind: &str,
    name: &str,
    need: Scope,
) -> Result<(DynProvider, repo::Model, RepoContext), ApiError> {
    same_origin(st, headers)?;
    let (provider, row, cx) = open_repo(st, auth, headers, kind, name).await?;
    st.authorize(auth, Some((kind, name)), settings_of(&row).private, need)?;
    Ok((provider, row, cx))
}

#[derive(Deserialize)]
pub struct PackageForm {
    /// Empty or absent: every version.
    version: Option<String>,
    /// `yank` or `unyank` for the yank form.
    action: Option<String>,
    reason: Option<String>,
}

/// `POST /ui/<kind>/<repo>/<package>/delete`: deletes a version (or the package), then shows
/// the package page (or the repo page when nothing is left).
pub async fn delete_post(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
    Path((kind, name, package)): Path<(String, String, String)>,
    form: Result<Form<PackageForm>, ApiError>,
) -> Response {
    let r = async {
        let Form(form) = form?;
        let (provider, row, cx) =
            form_target(&st, &auth, &headers, &kind, &name, Scope::Admin).await?;
        let version = form.version.filter(|v| !v.is_empty());
        let records: Vec<FileRecord> = cx
            .catalog
            .list(ListQuery::key(provider.package_key(&package)))
            .await?
            .into_iter()
            .filter(|r| version.as_deref().is_none_or(|v| r.version == v))
            .collect();
        if records.is_empty() {
            return Err(ApiError::not_found(format!(
                "There is nothing of {package:?} to delete in {kind}/{name}."
            )));
        }
        st.delete_records(&auth, &provider, &row, &cx, records)
            .await?;
        let left = !cx
            .catalog
            .list(ListQuery::key(provider.package_key(&package)))
            .await?
            .is_empty();
        Ok(if left {
            see_other(&package_href(&kind, &name, &provider.package_key(&package)))
        } else if st.inner.db.repo(&kind, &name).await?.is_some() {
            see_other(&repo_href(&kind, &name))
        } else {
            see_other("/")
        })
    }
    .await;
    page(&st, r)
}

/// `POST /ui/<kind>/<repo>/<package>/yank`: yanks or un-yanks every file of a version.
pub async fn yank_post(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
    Path((kind, name, package)): Path<(String, String, String)>,
    form: Result<Form<PackageForm>, ApiError>,
) -> Response {
    let r = async {
        let Form(form) = form?;
        let (provider, row, cx) =
            form_target(&st, &auth, &headers, &kind, &name, Scope::Write).await?;
        if !provider.repo_view(&cx).await?.yank {
            return Err(ApiError::bad_request(format!(
                "{kind} repos do not support yanking."
            )));
        }
        let Some(version) = form.version.filter(|v| !v.is_empty()) else {
            return Err(ApiError::bad_request("Name the version to yank."));
        };
        let yank = match form.action.as_deref() {
            Some("yank") | None => true,
            Some("unyank") => false,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Unknown action {other:?}: use yank or unyank."
                )));
            }
        };
        let reason = form.reason.unwrap_or_default();
        if reason.len() > 512 || reason.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "The yank reason must be one line of at most 512 characters.",
            ));
        }
        let key = provider.package_key(&package);
        let mut changed = Vec::new();
        for f in cx.catalog.list(ListQuery::key(&key)).await? {
            if f.version == version
                && cx
                    .catalog
                    .set_yanked(&f.scope, &f.path, yank.then(|| reason.clone()))
                    .await?
            {
                changed.push(f.path);
            }
        }
        if changed.is_empty() {
            return Err(ApiError::not_found(format!(
                "There is no version {version:?} of {package:?} in {kind}/{name}."
            )));
        }
        st.reindex(
            &provider,
            row.id,
            &cx,
            artifactd_plugin_api::IndexScope::All,
        )
        .await?;
        st.audit(
            &auth,
            if yank { "yank" } else { "unyank" },
            Some((&kind, &name)),
            serde_json::json!({ "paths": changed, "reason": reason }),
        )
        .await;
        Ok(see_other(&package_href(&kind, &name, &key)))
    }
    .await;
    page(&st, r)
}
