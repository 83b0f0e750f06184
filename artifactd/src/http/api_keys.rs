//! The JSON API's signing keys: import one, and rotate (add a key that signs next to the current
//! one, retire one). Each change re-signs every dist at once and is audited.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::api::parse;
use super::api_repos::admin_repo;
use super::extract::Path;
use super::{ApiError, AppState};
use crate::auth::Auth;
use crate::db::entities::repo;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyImport {
    armored: String,
    passphrase: Option<String>,
    /// Days the replaced key keeps signing next to the new one (default 7; 0 ends it at once).
    transition_days: Option<u32>,
}

/// `PUT /repos/{provider}/{repo}/key`: replace the repo's signing key and re-sign at once.
pub(super) async fn import_key(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    let req: KeyImport = parse(&body)?;
    if req.transition_days.is_some_and(|d| d > 3650) {
        return Err(ApiError::bad_request(
            "transition_days must be at most 3650 (10 years).",
        ));
    }
    let transition = i64::from(req.transition_days.unwrap_or(7)) * 86_400_000;
    let fingerprint = crate::keys::import_key(
        &st.inner.db,
        &st.inner.keys,
        row.id,
        &req.armored,
        req.passphrase.as_deref(),
        transition,
    )
    .await?;
    let p = st.inner.registry.get(&provider)?.clone();
    let base = st.base_url(&headers);
    let cx = st.context(&provider, &name, Some(&row), a.principal.clone(), &base);
    st.reindex(&p, row.id, &cx, artifactd_plugin_api::IndexScope::All)
        .await?;
    st.audit(
        &a,
        "key-import",
        Some((&provider, &name)),
        json!({ "fingerprint": fingerprint }),
    )
    .await;
    Ok(Json(
        json!({ "fingerprint": fingerprint, "transition_days": req.transition_days.unwrap_or(7) }),
    )
    .into_response())
}

/// Re-signs every dist of `row` and audits `action`.
async fn resign(
    st: &AppState,
    a: &Auth,
    headers: &http::HeaderMap,
    row: &repo::Model,
    action: &str,
    fingerprint: &str,
) -> Result<(), ApiError> {
    let p = st.inner.registry.get(&row.provider)?.clone();
    let base = st.base_url(headers);
    let cx = st.context(
        &row.provider,
        &row.name,
        Some(row),
        a.principal.clone(),
        &base,
    );
    st.reindex(&p, row.id, &cx, artifactd_plugin_api::IndexScope::All)
        .await?;
    st.audit(
        a,
        action,
        Some((&row.provider, &row.name)),
        json!({ "fingerprint": fingerprint }),
    )
    .await;
    Ok(())
}

/// `GET /repos/{provider}/{repo}/keys`: the keys that sign now.
pub(super) async fn list_keys(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    // A repo that never signed gets its key now, as its first publish would.
    let cx = st.context(
        &provider,
        &name,
        Some(&row),
        a.principal.clone(),
        &st.base_url(&headers),
    );
    cx.signer.fingerprints().await?;
    let keys = crate::keys::list_keys(&st.inner.db, row.id).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeyAdd {
    /// An armored secret key to import; without it a key is generated.
    armored: Option<String>,
    passphrase: Option<String>,
}

/// `POST /repos/{provider}/{repo}/keys`: start a rotation with a new key (generated, or
/// imported); both keys sign until one is retired.
pub(super) async fn add_key(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    let req: KeyAdd = if body.iter().all(u8::is_ascii_whitespace) {
        KeyAdd::default()
    } else {
        parse(&body)?
    };
    let cx = st.context(
        &provider,
        &name,
        Some(&row),
        a.principal.clone(),
        &st.base_url(&headers),
    );
    cx.signer.fingerprints().await?;
    let fingerprint = crate::keys::add_key(
        &st.inner.db,
        &st.inner.keys,
        row.id,
        &format!("artifactd {provider}/{name} signing key"),
        req.armored
            .as_deref()
            .map(|k| (k, req.passphrase.as_deref())),
    )
    .await?;
    resign(&st, &a, &headers, &row, "key-add", &fingerprint).await?;
    let keys = crate::keys::list_keys(&st.inner.db, row.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "fingerprint": fingerprint, "keys": keys })),
    )
        .into_response())
}

/// `DELETE /repos/{provider}/{repo}/keys/{fingerprint}`: end a key; the other one signs alone.
pub(super) async fn retire_key(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name, fingerprint)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    crate::keys::retire_key(&st.inner.db, &st.inner.keys, row.id, &fingerprint).await?;
    resign(
        &st,
        &a,
        &headers,
        &row,
        "key-retire",
        &fingerprint.to_ascii_uppercase(),
    )
    .await?;
    let keys = crate::keys::list_keys(&st.inner.db, row.id).await?;
    Ok(Json(json!({ "retired": fingerprint.to_ascii_uppercase(), "keys": keys })).into_response())
}
