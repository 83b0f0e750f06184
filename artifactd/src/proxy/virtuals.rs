//! Virtual repos: one index over several repos of one provider (hosted and proxy members, in
//! order), merged under the virtual's policy, with each download answered by the member the
//! file comes from.

use std::sync::Arc;

use artifactd_plugin_api::{Listing, ProxyFormat, ProxyPath, ServeRequest};

use super::policy::{self, Member, Origin};
use super::{Env, Hosted, Proxies, RepoConfig, Served, cache, files};
use crate::db::entities::repo;
use crate::http::ApiError;

/// A member as it stands: its row and configuration.
struct Loaded {
    row: repo::Model,
    config: RepoConfig,
    settings: artifactd_plugin_api::RepoSettings,
}

async fn members(env: Env<'_>, row: &repo::Model) -> Result<Vec<Loaded>, ApiError> {
    let mut out = Vec::new();
    for name in RepoConfig::of(row).members {
        match env.db.repo_for_read(&row.provider, &name).await? {
            Some(r) if r.kind != super::VIRTUAL => out.push(Loaded {
                config: RepoConfig::of(&r),
                settings: crate::db::settings_of(&r),
                row: r,
            }),
            _ => {
                tracing::warn!(repo = %row.name, member = %name, "A virtual repo's member is missing.")
            }
        }
    }
    Ok(out)
}

/// The mount URL of a sibling repo, from this repo's (`…/repo/<kind>/<name>/`).
fn sibling_url(base_url: &str, this: &str, other: &str) -> String {
    let root = base_url
        .strip_suffix(&format!("{this}/"))
        .unwrap_or(base_url);
    format!("{root}{other}/")
}

/// What serving a virtual repo works with.
pub(super) struct Ctx<'a> {
    pub(super) proxies: &'a Proxies,
    pub(super) env: Env<'a>,
    pub(super) hosted: &'a dyn Hosted,
    pub(super) row: &'a repo::Model,
    pub(super) format: &'a dyn ProxyFormat,
    pub(super) base_url: &'a str,
}

/// Each member's listing of `project`, and the token of what they were made from.
async fn gather(
    cx: &Ctx<'_>,
    loaded: &[Loaded],
    project: &str,
) -> Result<(Vec<Option<Arc<Listing>>>, Vec<i64>), ApiError> {
    let Ctx {
        proxies,
        env,
        hosted,
        row,
        format,
        base_url: _,
    } = *cx;
    let mut listings: Vec<Option<Arc<Listing>>> = Vec::new();
    let mut token = vec![row.generation];
    for m in loaded {
        let listing = match &m.config.upstream {
            None => {
                token.push(m.row.generation);
                match proxies.hosted.get(m.row.id, project, m.row.generation) {
                    Some(l) => l,
                    None => {
                        let l = format
                            .listing_of(&hosted.records(&m.row, project).await?)
                            .map(Arc::new);
                        proxies
                            .hosted
                            .put(m.row.id, project, m.row.generation, l.clone());
                        l
                    }
                }
            }
            Some(up) => match proxies.listing(env, &m.row, format, up, project).await {
                Ok((l, _)) => {
                    token.push(m.row.generation);
                    token.push(
                        proxies
                            .listings
                            .get(m.row.id, project)
                            .map_or(0, |k| k.fetched_at),
                    );
                    l
                }
                Err(e) => {
                    tracing::warn!(repo = %row.name, member = %m.row.name, project, error = %e.public_message(), "A proxy member has nothing for the virtual repo.");
                    token.push(-1);
                    None
                }
            },
        };
        listings.push(listing);
    }
    Ok((listings, token))
}

/// The members' listings of `project` merged under the virtual's policy, with what it leaves
/// out and why.
fn merge_listings(
    cx: &Ctx<'_>,
    loaded: &[Loaded],
    listings: &[Option<Arc<Listing>>],
    project: &str,
) -> Option<(Listing, Vec<policy::Hidden>)> {
    let Ctx { row, base_url, .. } = *cx;
    let views: Vec<Member<'_>> = loaded
        .iter()
        .zip(listings)
        .map(|(m, l)| Member {
            name: &m.row.name,
            origin: if m.config.upstream.is_some() {
                Origin::Upstream
            } else {
                Origin::Hosted
            },
            listing: l.as_deref(),
            policy: &m.config.policy,
            page_url: format!(
                "{}{project}/",
                sibling_url(base_url, &row.name, &m.row.name)
            ),
            status: m.settings.status_of(project),
        })
        .collect();
    let own = crate::db::settings_of(row);
    policy::merge_explained(
        project,
        &views,
        &RepoConfig::of(row).policy,
        own.status_of(project),
        crate::db::now_millis(),
    )
}

/// Each member's listing of `project`, merged.
async fn merged(
    cx: &Ctx<'_>,
    loaded: &[Loaded],
    project: &str,
) -> Result<Option<Listing>, ApiError> {
    let (listings, _) = gather(cx, loaded, project).await?;
    Ok(merge_listings(cx, loaded, &listings, project).map(|(l, _)| l))
}

/// What the virtual repo serves of `project` and what it leaves out, for the web UI.
pub(super) async fn explain(
    cx: &Ctx<'_>,
    project: &str,
) -> Result<Option<(Listing, Vec<policy::Hidden>)>, ApiError> {
    let loaded = members(cx.env, cx.row).await?;
    let (listings, _) = gather(cx, &loaded, project).await?;
    Ok(merge_listings(cx, &loaded, &listings, project))
}

pub(super) async fn serve(cx: &Ctx<'_>, req: &ServeRequest) -> Result<Served, ApiError> {
    let Ctx {
        proxies,
        env,
        hosted,
        row,
        format,
        base_url,
    } = *cx;
    let loaded = members(env, row).await?;
    match format.classify(&req.path) {
        ProxyPath::Root => {
            let mut projects: Vec<(String, String)> = Vec::new();
            for m in &loaded {
                if m.config.upstream.is_some() {
                    projects.extend(cache::cached_projects(env.db, m.row.id).await?);
                } else {
                    projects.extend(hosted.projects(&m.row).await?);
                }
            }
            projects.sort();
            projects.dedup_by(|a, b| a.0 == b.0);
            Ok(Served::Render(format.render(req, None, &projects)?))
        }
        ProxyPath::Project(project) => {
            let (listings, token) = gather(cx, &loaded, &project).await?;
            let key = super::render_key(row.id, req);
            if let Some(resp) = proxies.rendered.get(&key, &token) {
                return Ok(Served::Render(resp));
            }
            let (listing, _) =
                merge_listings(cx, &loaded, &listings, &project).ok_or_else(|| {
                    ApiError::not_found(format!("No member of this repo has {project:?}."))
                })?;
            let resp = format.render(req, Some(&listing), &[])?;
            proxies.rendered.put(key, token, resp.clone());
            Ok(Served::Render(resp))
        }
        ProxyPath::File { project, filename } => {
            let listing = merged(cx, &loaded, &project).await?;
            let origin = listing.as_ref().and_then(|l| {
                l.files
                    .iter()
                    .find(|f| {
                        f.filename == filename
                            || f.companions
                                .iter()
                                .any(|(s, _)| format!("{}{s}", f.filename) == filename)
                    })
                    .and_then(|f| f.origin.clone())
            });
            let member = origin
                .and_then(|o| loaded.iter().find(|m| m.row.name == o))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "This repo serves no file {filename:?} (no member has it, or its policy hides it)."
                    ))
                })?;
            match &member.config.upstream {
                None => {
                    let mut r = ServeRequest::get(format!("files/{filename}"));
                    r.method = req.method.clone();
                    r.headers = req.headers.clone();
                    let resp = hosted.serve(&member.row, r).await?;
                    Ok(Served::Member(resp, member.row.name.clone()))
                }
                Some(up) => {
                    files::serve(
                        proxies,
                        env,
                        &member.row,
                        format,
                        up,
                        &member.config.policy,
                        &project,
                        &filename,
                    )
                    .await
                }
            }
        }
        ProxyPath::Redirect(to) => Ok(Served::Render(
            artifactd_plugin_api::ServeResponse::redirect(&format!("{base_url}{to}"), true)?,
        )),
        _ => Err(ApiError::not_found(
            "There is nothing at this path of the virtual repo.",
        )),
    }
}
