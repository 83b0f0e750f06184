//! `/repo/<provider>/<repo>/…`: reads go to the provider's serve hook, multipart posts to the
//! upload flow, deletes to the catalog, other writes to the provider's API.

use artifactd_plugin_api::{IndexScope, ListQuery, ServeRequest};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::upload::{self, Limits};
use super::{
    ApiError, AppState, Flow, auth_of, incoming, ingest, members, pages, respond,
    validate_repo_name,
};
use crate::auth::Scope;

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
    let principal = auth.principal.clone();
    let base = st.base_url(req.headers());
    let (kind, name, rest) = match path.segments.as_slice() {
        [] => return pages::providers(State(st), axum::Extension(auth)).await,
        [kind] => {
            let provider = st.inner.registry.get(kind)?.clone();
            return pages::provider_repos(&st, &auth, req.headers(), &provider).await;
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
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            if rest.is_empty() && !path.trailing_slash {
                let mut location = format!("/repo/{kind}/{name}/");
                if let Some(q) = req.uri().query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                return Ok(resp);
            }
            let row = st.repo_for(&auth, &kind, &name, Scope::Read).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let mut sreq = ServeRequest::get(rest);
            sreq.method = method.clone();
            sreq.query = req.uri().query().map(str::to_owned);
            sreq.headers = req.headers().clone();
            if row.kind != "hosted"
                && let Some(format) = provider.proxy()
            {
                let env = st.proxy_env();
                let served = if row.kind == crate::proxy::VIRTUAL {
                    let hosted = members::HostedRepos {
                        st: &st,
                        provider: provider.clone(),
                        base: base.clone(),
                    };
                    st.inner
                        .proxies
                        .serve_virtual(env, &hosted, &row, format, &cx.base_url, &sreq)
                        .await?
                } else {
                    st.inner
                        .proxies
                        .serve(env, &row, format, &cx.base_url, &sreq)
                        .await?
                };
                let mut resp = match served {
                    crate::proxy::Served::Stream(resp) if method == Method::HEAD => {
                        let (parts, _) = resp.into_parts();
                        axum::response::Response::from_parts(parts, axum::body::Body::empty())
                    }
                    crate::proxy::Served::Stream(resp) => resp,
                    crate::proxy::Served::Render(resp) => {
                        respond::render(
                            &method,
                            req.headers(),
                            resp,
                            st.inner.blobs.store().as_ref(),
                            respond::Derived {
                                store: cx.blobs.as_ref(),
                                memo: None,
                            },
                        )
                        .await?
                    }
                    crate::proxy::Served::Member(resp, member) => {
                        let store = st.inner.blobs.derived(&kind, &member);
                        respond::render(
                            &method,
                            req.headers(),
                            resp,
                            st.inner.blobs.store().as_ref(),
                            respond::Derived {
                                store: store.as_ref(),
                                memo: None,
                            },
                        )
                        .await?
                    }
                };
                if cx.settings.private {
                    respond::keep_private(&mut resp);
                }
                return Ok(resp);
            }
            let resp = provider.serve(&cx, sreq).await?;
            let mut resp = respond::render(
                &method,
                req.headers(),
                resp,
                st.inner.blobs.store().as_ref(),
                respond::Derived {
                    store: cx.blobs.as_ref(),
                    memo: Some((&st.inner.memo, row.id, row.generation)),
                },
            )
            .await?;
            if cx.settings.private {
                respond::keep_private(&mut resp);
            }
            Ok(resp)
        }
        Method::PUT
            if provider
                .staging()
                .is_some_and(|s| rest.starts_with(s.prefix))
                && !is_multipart(req.headers()) =>
        {
            let staging = provider
                .staging()
                .ok_or_else(|| ApiError::not_found("There is no staging folder here."))?;
            let (parts, body) = req.into_parts();
            incoming::put(
                &st,
                &auth,
                &base,
                &provider,
                staging,
                &name,
                &rest,
                &parts.headers,
                body,
            )
            .await
        }
        Method::POST | Method::PUT if is_multipart(req.headers()) => {
            st.authorize(&auth, Some((&kind, &name)), false, Scope::Write)?;
            let query = query_pairs(req.uri().query());
            let (parts, body) = req.into_parts();
            let spooled = upload::spool(
                &parts.headers,
                body,
                &st.inner.tmp_dir,
                Limits {
                    max_bytes: st.inner.config.max_upload_bytes,
                    file_field: None,
                    max_files: 1,
                },
            )
            .await?;
            let mut params = query;
            params.extend(spooled.fields);
            let done = ingest(
                &st,
                &auth,
                &base,
                &provider,
                &name,
                Some(rest),
                params,
                spooled.files,
                Flow::Form,
            )
            .await?;
            Ok(done.response)
        }
        Method::DELETE => {
            let row = st.repo_for(&auth, &kind, &name, Scope::Admin).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let records = cx.catalog.list(ListQuery::path(rest.clone())).await?;
            if records.is_empty() {
                return Err(ApiError::not_found(format!(
                    "There is no file {rest:?} in {kind}/{name}."
                )));
            }
            let deleted = st
                .delete_records(&auth, &provider, &row, &cx, records)
                .await?;
            Ok(axum::Json(json!({ "deleted": deleted })).into_response())
        }
        Method::POST | Method::PUT | Method::PATCH => {
            let row = st.repo_for(&auth, &kind, &name, Scope::Write).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let query = req.uri().query().map(str::to_owned);
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, MAX_JSON_BODY).await.map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body is larger than {MAX_JSON_BODY} bytes; uploads are multipart/form-data."),
                )
            })?;
            let rest_for_audit = rest.clone();
            let before = cx.catalog.generation().await?;
            let mut sreq = ServeRequest::json(method.clone(), rest, body);
            sreq.query = query;
            sreq.headers = parts.headers.clone();
            let resp = provider.serve(&cx, sreq).await?;
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
                    st.reindex(&provider, row.id, &cx, scope).await?;
                }
                st.audit(
                    &auth,
                    "api-call",
                    Some((&kind, &name)),
                    json!({ "method": method.as_str(), "path": rest_for_audit }),
                )
                .await;
            }
            Ok(resp)
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("The method {method} is not allowed here."),
        )),
    }
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
