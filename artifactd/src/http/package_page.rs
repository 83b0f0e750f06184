//! The web UI's pages of a repo's packages: a package with its versions and files (from the
//! catalog for hosted repos; for proxy and virtual repos from the merged listing, with the
//! member each file comes from and why hidden files are hidden), and a scope's files.

use std::collections::BTreeMap;

use artifactd_plugin_api::ui::FileView;
use artifactd_plugin_api::{DynProvider, FileRecord, ListQuery, RepoContext};
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use minijinja::{Value, context};

use super::extract::Path;
use super::pages::{
    file_href, human_size, human_time, open_repo, package_href, page, repo_href, rights, signed_in,
};
use super::{ApiError, AppState, browse};
use crate::auth::Auth;
use crate::db::entities::repo;

fn file_row(kind: &str, repo: &str, f: &FileRecord, view: &FileView) -> Value {
    context! {
        filename => f.path.rsplit('/').next().unwrap_or(&f.path),
        href => file_href(kind, repo, &f.path),
        path => &f.path,
        size => human_size(i64::try_from(f.size).unwrap_or(i64::MAX)),
        bytes => f.size,
        sha256 => &f.sha256,
        uploaded => human_time(f.uploaded_at),
        uploader => &f.uploader,
        yanked => f.yanked.is_some(),
        yank_reason => &f.yanked,
        group => &view.group,
        scope => &f.scope,
    }
}

/// `GET /ui/<kind>/<repo>/<package>/`.
pub async fn package_page(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
    Path((kind, name, package)): Path<(String, String, String)>,
) -> Response {
    let r = async {
        let (provider, row, cx) = open_repo(&st, &auth, &headers, &kind, &name).await?;
        if row.kind != "hosted" {
            return listed_package_page(&st, &auth, &headers, (provider, row, cx), &package).await;
        }
        let status = crate::db::settings_of(&row)
            .status_of(&provider.package_key(&package))
            .map(|s| context! { status => s.status.as_str(), reason => &s.reason });
        let files = cx
            .catalog
            .list(ListQuery::key(provider.package_key(&package)))
            .await?;
        // The latest version, described by all its files: the most described first (a source
        // package's .dsc adds its binaries and build facts to a binary package's description).
        let missing =
            || ApiError::not_found(format!("There is no package {package:?} in {kind}/{name}."));
        let latest = files
            .iter()
            .max_by_key(|f| f.uploaded_at)
            .cloned()
            .ok_or_else(missing)?;
        let mut views: Vec<_> = files
            .iter()
            .filter(|f| f.version == latest.version)
            .map(|f| provider.file_view(f))
            .collect();
        views.sort_by_key(|v| std::cmp::Reverse(v.description.is_some()));
        let mut views = views.into_iter();
        let mut view = views.next().ok_or_else(missing)?;
        for other in views {
            for (label, value) in other.facts {
                if !view.facts.iter().any(|(l, _)| *l == label) {
                    view.facts.push((label, value));
                }
            }
            view.summary = view.summary.or(other.summary);
        }
        let description = view.description.as_ref().map(|d| {
            if d.markdown {
                Value::from_safe_string(super::markdown::markdown(&d.text))
            } else {
                Value::from(d.text.clone())
            }
        });
        let markdown_description = view.description.as_ref().is_some_and(|d| d.markdown);
        let links: Vec<Value> = view
            .links
            .iter()
            .filter(|(_, u)| super::markdown::safe_url(u))
            .map(|(l, u)| context! { label => l, url => u })
            .collect();
        let key = latest.key.clone();
        let versions: Vec<Value> = browse::versions(files)
            .into_iter()
            .map(|(v, fs)| {
                let all_yanked = fs.iter().all(|f| f.yanked.is_some());
                let rows: Vec<Value> = fs
                    .iter()
                    .map(|f| file_row(&kind, &name, f, &provider.file_view(f)))
                    .collect();
                context! { version => v, files => rows, yanked => all_yanked }
            })
            .collect();
        let (can_write, can_admin) = rights(&st, &auth, &row);
        let yank = provider
            .repo_view(&cx)
            .await
            .map(|v| v.yank)
            .unwrap_or(false);
        st.inner.pages.render(
            "package.html",
            context! {
                versions, links, description, markdown_description,
                can_write, can_admin, yank, status,
                kind => &kind, name => &name, key => &key,
                package => latest.name,
                latest => latest.version,
                summary => view.summary,
                facts => Value::from(minijinja::value::Serde(&view.facts)),
                repo_href => repo_href(&kind, &name),
                action => package_href(&kind, &name, &key),
                user => signed_in(&auth),
            },
        )
    }
    .await;
    page(&st, r)
}

/// `GET /ui/<kind>/<repo>/-/<scope>/`: the files of one scope (an APT dist), grouped as the
/// provider says (component / architecture).
pub async fn scope_page(
    State(st): State<AppState>,
    Extension(auth): Extension<Auth>,
    headers: HeaderMap,
    Path((kind, name, scope)): Path<(String, String, String)>,
) -> Response {
    let r = async {
        let (provider, _row, cx) = open_repo(&st, &auth, &headers, &kind, &name).await?;
        let files = cx.catalog.list(ListQuery::all().in_scope(&scope)).await?;
        if files.is_empty() {
            return Err(ApiError::not_found(format!(
                "There is no {scope:?} in {kind}/{name}."
            )));
        }
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for f in &files {
            let view = provider.file_view(f);
            let group = view.group.clone().unwrap_or_default();
            groups.entry(group).or_default().push(context! {
                name => &f.name,
                version => &f.version,
                summary => &view.summary,
                href => package_href(&kind, &name, &f.key),
                file => file_row(&kind, &name, f, &view),
            });
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(label, rows)| context! { label, rows })
            .collect();
        let view = provider.repo_view(&cx).await.unwrap_or_default();
        st.inner.pages.render(
            "scope.html",
            context! {
                scope, groups,
                kind => &kind, name => &name,
                scope_label => view.scope_label,
                repo_href => repo_href(&kind, &name),
                url => cx.base_url,
                user => signed_in(&auth),
            },
        )
    }
    .await;
    page(&st, r)
}

/// The package page of a proxy or virtual repo: what it serves of the project (each file with
/// the member it comes from) and what it leaves out, with the reason.
async fn listed_package_page(
    st: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    (provider, row, cx): (DynProvider, repo::Model, RepoContext),
    package: &str,
) -> Result<Response, ApiError> {
    let (kind, name) = (row.provider.as_str(), row.name.as_str());
    let format = provider
        .proxy()
        .ok_or_else(|| ApiError::not_found("This provider has no proxy or virtual repos."))?;
    let key = provider.package_key(package);
    let hosted = super::members::HostedRepos {
        st,
        provider: provider.clone(),
        base: st.base_url(headers),
    };
    let explained = st
        .inner
        .proxies
        .explain(st.proxy_env(), &hosted, &row, format, &cx.base_url, &key)
        .await?;
    let Some((listing, hidden)) = explained else {
        return Err(ApiError::not_found(format!(
            "{kind}/{name} has no package {package:?}."
        )));
    };
    // Versions newest first (by their newest file), files in the listing's order.
    let mut versions: Vec<(String, i64, Vec<Value>)> = Vec::new();
    for f in &listing.files {
        let row = context! {
            filename => &f.filename,
            href => format!("{}files/{}", cx.base_url, artifactd_plugin_api::html::url_segment(&f.filename)),
            size => f.size.map(|s| human_size(i64::try_from(s).unwrap_or(i64::MAX))),
            sha256 => &f.sha256,
            uploaded => f.uploaded_at.map(human_time),
            yanked => f.yanked.is_some(),
            yank_reason => &f.yanked,
            origin => &f.origin,
            origin_href => f.origin.as_deref().map(|o| repo_href(kind, o)),
        };
        let at = f.uploaded_at.unwrap_or(0);
        match versions.iter_mut().find(|(v, _, _)| *v == f.version) {
            Some((_, newest, rows)) => {
                *newest = (*newest).max(at);
                rows.push(row);
            }
            None => versions.push((f.version.clone(), at, vec![row])),
        }
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.1));
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|(version, _, files)| context! { version, files })
        .collect();
    let hidden: Vec<Value> = hidden
        .iter()
        .map(|h| context! { member => &h.member, filename => &h.filename, version => &h.version, reason => &h.reason })
        .collect();
    let status = listing.status.as_ref().map(|s| {
        context! { status => s.status.as_str(), reason => &s.reason }
    });
    st.inner.pages.render(
        "listed_package.html",
        context! {
            versions, hidden, status,
            kind => kind, name => name,
            package => &listing.name,
            repo_kind => &row.kind,
            page_url => format!("{}{key}/", cx.base_url),
            repo_href => repo_href(kind, name),
            user => signed_in(auth),
        },
    )
}
