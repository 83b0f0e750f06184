//! `/repo/<provider>/<repo>/…`: reads go to the provider's serve hook, multipart posts to the
//! upload flow, deletes to the catalog, other writes to the provider's API.

use artifactd_plugin_api::{DynProvider, IndexScope, ListQuery, RepoContext, ServeRequest};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::{
    ApiError, AppState, Flow, auth_of, incoming, ingest, members, pages, respond,
    validate_repo_name,
};
use crate::auth::{Auth, Scope};
use crate::db::entities::repo;

/// The decoded segments of a `/repo/...` path.
#[derive(Debug)]
struct RepoPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

fn parse_repo_path(raw: &str) -> Result<RepoPath, ApiError> {
    let trailing_slash = raw.ends_with('/');
    let mut segments = Vec::new();
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("The URL path is not valid UTF-8."))?;
        if decoded == "." || decoded == ".." {
            return Err(ApiError::bad_request(
                "The URL path may not contain '.' or '..' segments.",
            ));
        }
        if decoded
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        {
            return Err(ApiError::bad_request(
                "The URL path may not contain encoded slashes, backslashes or control characters.",
            ));
        }
        segments.push(decoded.into_owned());
    }
    Ok(RepoPath {
        segments,
        trailing_slash,
    })
}

/// A request for one repo, as the branches of [`repo_dispatch`] take it.
struct Target {
    provider: DynProvider,
    auth: Auth,
    base: String,
    kind: String,
    name: String,
    /// The path below the repo, with its trailing slash.
    rest: String,
}

impl Target {
    /// The repo's row, if `need` is allowed, and its context for the provider.
    async fn open(
        &self,
        st: &AppState,
        need: Scope,
    ) -> Result<(repo::Model, RepoContext), ApiError> {
        let row = st
            .repo_for(&self.auth, &self.kind, &self.name, need)
            .await?;
        let cx = st.context(
            &self.kind,
            &self.name,
            Some(&row),
            self.auth.principal.clone(),
            &self.base,
        );
        Ok((row, cx))
    }
}

/// Routes a `/repo/...` request by its path and method. Each branch runs as a future of its
/// own, allocated when it starts: a request in flight holds the memory of its branch, not of
/// the largest one (a reader waiting for the database would otherwise hold an upload's).
pub(super) async fn repo_dispatch(
    State(st): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let raw = req
        .uri()
        .path()
        .strip_prefix("/repo/")
        .unwrap_or_default()
        .to_owned();
    let path = parse_repo_path(&raw)?;
    let auth = auth_of(&req);
    let base = st.base_url(req.headers());
    let (kind, name, rest) = match path.segments.as_slice() {
        [] => return Box::pin(pages::providers(State(st), axum::Extension(auth))).await,
        [kind] => {
            let provider = st.inner.registry.get(kind)?.clone();
            return Box::pin(pages::provider_repos(&st, &auth, req.headers(), &provider)).await;
        }
        [kind, name, rest @ ..] => (kind.clone(), name.clone(), rest.join("/")),
    };
    let provider = st.inner.registry.get(&kind)?.clone();
    validate_repo_name(&name)?;
    let rest = if path.trailing_slash && !rest.is_empty() {
        format!("{rest}/")
    } else {
        rest
    };
    let target = Target {
        provider,
        auth,
        base,
        kind,
        name,
        rest,
    };
    match req.method().clone() {
        Method::GET | Method::HEAD => {
            if target.rest.is_empty() && !path.trailing_slash {
                return Ok(to_repo_root(&target, req.uri().query()));
            }
            Box::pin(read(&st, target, req)).await
        }
        Method::PUT
            if target
                .provider
                .staging()
                .is_some_and(|s| target.rest.starts_with(s.prefix))
                && !is_multipart(req.headers()) =>
        {
            Box::pin(put_incoming(&st, target, req)).await
        }
        Method::POST | Method::PUT if is_multipart(req.headers()) => {
            Box::pin(upload_form(&st, target, req)).await
        }
        Method::DELETE => Box::pin(delete(&st, target)).await,
        Method::POST | Method::PUT | Method::PATCH => Box::pin(api_call(&st, target, req)).await,
        method => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("The method {method} is not allowed here."),
        )),
    }
}

/// `/repo/<provider>/<repo>` without its slash: a redirect to the repo's root.
fn to_repo_root(t: &Target, query: Option<&str>) -> Response {
    let mut location = format!("/repo/{}/{}/", t.kind, t.name);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// GET and HEAD: the provider's serve hook, or the proxy of a proxy or virtual repo.
async fn read(st: &AppState, t: Target, req: Request) -> Result<Response, ApiError> {
    let (row, cx) = t.open(st, Scope::Read).await?;
    let method = req.method().clone();
    let mut sreq = ServeRequest::get(t.rest.clone());
    sreq.method = method.clone();
    sreq.query = req.uri().query().map(str::to_owned);
    sreq.headers = req.headers().clone();
    if row.kind != "hosted"
        && let Some(format) = t.provider.proxy()
    {
        return Box::pin(proxied_read(st, &t, &row, &cx, format, &sreq)).await;
    }
    let resp = t.provider.serve(&cx, sreq).await?;
    let mut resp = Box::pin(respond::render(
        &method,
        req.headers(),
        resp,
        st.inner.blobs.store().as_ref(),
        respond::Derived {
            store: cx.blobs.as_ref(),
            memo: Some((&st.inner.memo, row.id, row.generation)),
        },
    ))
    .await?;
    if cx.settings.private {
        respond::keep_private(&mut resp);
    }
    Ok(resp)
}

/// A read of a proxy or virtual repo.
async fn proxied_read(
    st: &AppState,
    t: &Target,
    row: &repo::Model,
    cx: &RepoContext,
    format: &dyn artifactd_plugin_api::ProxyFormat,
    sreq: &ServeRequest,
) -> Result<Response, ApiError> {
    let env = st.proxy_env();
    let served = if row.kind == crate::proxy::VIRTUAL {
        let hosted = members::HostedRepos {
            st,
            provider: t.provider.clone(),
            base: t.base.clone(),
        };
        st.inner
            .proxies
            .serve_virtual(env, &hosted, row, format, &cx.base_url, sreq)
            .await?
    } else {
        st.inner
            .proxies
            .serve(env, row, format, &cx.base_url, sreq)
            .await?
    };
    let content = st.inner.blobs.store();
    let mut resp = match served {
        crate::proxy::Served::Stream(resp) if sreq.method == Method::HEAD => {
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, axum::body::Body::empty())
        }
        crate::proxy::Served::Stream(resp) => resp,
        crate::proxy::Served::Render(resp) => {
            let derived = respond::Derived {
                store: cx.blobs.as_ref(),
                memo: None,
            };
            respond::render(&sreq.method, &sreq.headers, resp, content.as_ref(), derived).await?
        }
        crate::proxy::Served::Member(resp, member) => {
            let store = st.inner.blobs.derived(&t.kind, &member);
            let derived = respond::Derived {
                store: store.as_ref(),
                memo: None,
            };
            respond::render(&sreq.method, &sreq.headers, resp, content.as_ref(), derived).await?
        }
    };
    if cx.settings.private {
        respond::keep_private(&mut resp);
    }
    Ok(resp)
}

/// A PUT into the provider's staging folder (dput's files before their `.changes`).
async fn put_incoming(st: &AppState, t: Target, req: Request) -> Result<Response, ApiError> {
    let staging = t
        .provider
        .staging()
        .ok_or_else(|| ApiError::not_found("There is no staging folder here."))?;
    let (parts, body) = req.into_parts();
    incoming::put(
        st,
        &t.auth,
        &t.base,
        &t.provider,
        staging,
        &t.name,
        &t.rest,
        &parts.headers,
        body,
    )
    .await
}

/// A multipart upload to a repo's URL (twine's POST).
async fn upload_form(st: &AppState, t: Target, req: Request) -> Result<Response, ApiError> {
    st.authorize(&t.auth, Some((&t.kind, &t.name)), false, Scope::Write)?;
    let query = query_pairs(req.uri().query());
    let (parts, body) = req.into_parts();
    let spooled = st.spool_form(&parts.headers, body, None, 1).await?;
    let mut params = query;
    params.extend(spooled.fields);
    let done = ingest(
        st,
        &t.auth,
        &t.base,
        &t.provider,
        &t.name,
        Some(t.rest),
        params,
        spooled.files,
        Flow::Form,
    )
    .await?;
    Ok(done.response)
}

/// DELETE of a file's records.
async fn delete(st: &AppState, t: Target) -> Result<Response, ApiError> {
    let (row, cx) = t.open(st, Scope::Admin).await?;
    let records = cx.catalog.list(ListQuery::path(t.rest.clone())).await?;
    if records.is_empty() {
        return Err(ApiError::not_found(format!(
            "There is no file {:?} in {}/{}.",
            t.rest, t.kind, t.name
        )));
    }
    let deleted = st
        .delete_records(&t.auth, &t.provider, &row, &cx, records)
        .await?;
    Ok(axum::Json(json!({ "deleted": deleted })).into_response())
}

/// Other writes: the provider's JSON API, re-indexed and audited when it changed the catalog.
async fn api_call(st: &AppState, t: Target, req: Request) -> Result<Response, ApiError> {
    let (row, cx) = t.open(st, Scope::Write).await?;
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_JSON_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {MAX_JSON_BODY} bytes; uploads are multipart/form-data."),
        )
    })?;
    let before = cx.catalog.generation().await?;
    let mut sreq = ServeRequest::json(method.clone(), t.rest.clone(), body);
    sreq.query = query;
    sreq.headers = parts.headers.clone();
    let resp = t.provider.serve(&cx, sreq).await?;
    let resp = respond::render(
        &method,
        &parts.headers,
        resp,
        st.inner.blobs.store().as_ref(),
        respond::Derived {
            store: cx.blobs.as_ref(),
            memo: None,
        },
    )
    .await?;
    if resp.status().is_success() {
        if let Some(scope) = changed_by_call(&cx, before).await? {
            st.reindex(&t.provider, row.id, &cx, scope).await?;
        }
        st.audit(
            &t.auth,
            "api-call",
            Some((&t.kind, &t.name)),
            json!({ "method": method.as_str(), "path": t.rest }),
        )
        .await;
    }
    Ok(resp)
}

/// What a provider's API call changed in the catalog: nothing (a snapshot taken), the scopes
/// of the records it wrote (a promotion, a yank), or everything when it only removed records.
async fn changed_by_call(
    cx: &artifactd_plugin_api::RepoContext,
    before: u64,
) -> Result<Option<IndexScope>, ApiError> {
    if cx.catalog.generation().await? == before {
        return Ok(None);
    }
    let scopes = cx.catalog.changed_scopes(before).await?;
    Ok(Some(if scopes.is_empty() {
        IndexScope::All
    } else {
        IndexScope::Scopes(scopes.into_iter().collect())
    }))
}

/// Bodies of provider API calls (JSON) are small.
const MAX_JSON_BODY: usize = 1 << 20;

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}
