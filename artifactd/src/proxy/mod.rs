//! Proxy repos: a repo of kind `proxy` serves what its upstream index has, through the
//! provider's [`ProxyFormat`], caching pages for the upstream's time to live and files for
//! good, in the catalog database and the blob store, so every node shares the cache.
//!
//! - Pages: fresh from this node's memory or the shared row; otherwise one request fetches
//!   (the others wait for it), the provider reads the page into a [`Listing`], which is kept.
//!   When the upstream fails, the last listing is served, marked stale; only what was never
//!   fetched fails, with 502.
//! - Files: cached ones are blobs; an uncached one is streamed to the first client while it is
//!   written and hashed, and kept only when its SHA-256 is the one the listing gave; otherwise
//!   the client's download fails (the last bytes are held back until the check).

mod cache;
mod files;
pub mod policy;
pub mod settings;
mod tree;
pub mod upstream;
mod virtuals;

use std::sync::Arc;

use artifactd_plugin_api::{Listing, ProxyFormat, ProxyPath, ServeRequest, ServeResponse};
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use sha2::Digest as _;

use crate::db::Db;
use crate::db::entities::repo;
use crate::http::ApiError;
use crate::storage::BlobStore;
pub use policy::Policy;
use upstream::{Client, FetchError};
pub use upstream::{Upstream, parse_duration};

/// The repo kind of proxies.
pub const KIND: &str = "proxy";
/// The repo kind of virtual repos.
pub const VIRTUAL: &str = "virtual";

/// The response header that says where an answer came from: `hit`, `miss` or `stale`.
pub const CACHE_HEADER: &str = "x-artifactd-cache";

/// The largest upstream page read.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// A proxy's or a virtual repo's configuration, stored in the repo row.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoConfig {
    /// A proxy's upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// A virtual repo's members, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// What it lets through.
    #[serde(default)]
    pub policy: Policy,
}

impl RepoConfig {
    /// The configuration of a repo's row (empty for hosted repos).
    pub fn of(row: &repo::Model) -> Self {
        row.config
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }
}

/// What the proxy answers: a response for the host to render (cached bytes, a page), or a
/// stream already under way (a file on its first fetch).
#[derive(Debug)]
pub enum Served {
    /// Render this, like a provider's answer.
    Render(ServeResponse),
    /// Render this answer of the hosted member named here (its derived files are its own).
    Member(ServeResponse, String),
    /// Send this as it is.
    Stream(Response),
}

/// What a virtual repo needs of its hosted members: the host's catalog and providers.
#[async_trait::async_trait]
pub trait Hosted: Send + Sync {
    /// A hosted repo's records of `project` (its catalog key).
    ///
    /// # Errors
    /// Database failures.
    async fn records(
        &self,
        row: &repo::Model,
        project: &str,
    ) -> Result<Vec<artifactd_plugin_api::FileRecord>, ApiError>;
    /// A hosted repo's projects: (key, name).
    ///
    /// # Errors
    /// Database failures.
    async fn projects(&self, row: &repo::Model) -> Result<Vec<(String, String)>, ApiError>;
    /// A read of a hosted repo, answered by its provider.
    ///
    /// # Errors
    /// What the provider says.
    async fn serve(&self, row: &repo::Model, req: ServeRequest) -> Result<ServeResponse, ApiError>;
}

/// The server's proxy state: the HTTP client, the node's listings, the per-key locks.
#[derive(Debug)]
pub struct Proxies {
    client: Client,
    listings: cache::Listings,
    locks: cache::KeyLocks,
    rendered: cache::Rendered,
    hosted: cache::HostedListings,
    trees: tree::Trees,
}

/// What a proxied read needs of the server.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The catalog.
    pub db: &'a Db,
    /// The blob store.
    pub blobs: &'a BlobStore,
    /// Where downloads are spooled.
    pub tmp_dir: &'a std::path::Path,
    /// The largest file kept.
    pub max_bytes: u64,
}

/// Whether a listing was fetched for this answer, came from the cache, or stands in for an
/// upstream that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Freshness {
    Hit,
    Miss,
    Stale(String),
}

impl Freshness {
    fn header(&self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale(_) => "stale",
        }
    }
}

fn bad_gateway(e: &FetchError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("The upstream gave nothing usable: {e}."),
    )
}

fn storage_error(e: artifactd_plugin_api::Error) -> ApiError {
    ApiError::from(e)
}

impl Proxies {
    /// The proxy state.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: Client::new()?,
            listings: cache::Listings::default(),
            locks: cache::KeyLocks::default(),
            rendered: cache::Rendered::default(),
            hosted: cache::HostedListings::default(),
            trees: tree::Trees::default(),
        })
    }

    fn virtual_ctx<'a>(
        &'a self,
        env: Env<'a>,
        hosted: &'a dyn Hosted,
        row: &'a repo::Model,
        format: &'a dyn ProxyFormat,
        base_url: &'a str,
    ) -> virtuals::Ctx<'a> {
        virtuals::Ctx {
            proxies: self,
            env,
            hosted,
            row,
            format,
            base_url,
        }
    }

    /// Answers a read below a virtual repo: its members merged under its policy.
    ///
    /// # Errors
    /// As for proxies; 404 when no member has it.
    pub async fn serve_virtual(
        &self,
        env: Env<'_>,
        hosted: &dyn Hosted,
        row: &repo::Model,
        format: &dyn ProxyFormat,
        base_url: &str,
        req: &ServeRequest,
    ) -> Result<Served, ApiError> {
        let cx = self.virtual_ctx(env, hosted, row, format, base_url);
        virtuals::serve(&cx, req).await
    }

    /// What a proxy or virtual repo serves of `project`, with the files it leaves out and why
    /// (for the web UI); `None` when neither it nor a member has the project.
    ///
    /// # Errors
    /// As for serving the project's page.
    pub async fn explain(
        &self,
        env: Env<'_>,
        hosted: &dyn Hosted,
        row: &repo::Model,
        format: &dyn ProxyFormat,
        base_url: &str,
        project: &str,
    ) -> Result<Option<(Listing, Vec<policy::Hidden>)>, ApiError> {
        if row.kind == VIRTUAL {
            let cx = self.virtual_ctx(env, hosted, row, format, base_url);
            return virtuals::explain(&cx, project).await;
        }
        let config = RepoConfig::of(row);
        let Some(up) = config.upstream.as_ref() else {
            return Ok(None);
        };
        let (listing, _) = self.listing(env, row, format, up, project).await?;
        Ok(listing.map(|l| own_policy_explained(row, &config.policy, project, &l, base_url)))
    }

    /// Answers a read below a proxy repo.
    ///
    /// # Errors
    /// 404 for what the upstream does not have, 502 when it gives nothing usable and nothing is
    /// cached, database and storage failures.
    pub async fn serve(
        &self,
        env: Env<'_>,
        row: &repo::Model,
        format: &dyn ProxyFormat,
        base_url: &str,
        req: &ServeRequest,
    ) -> Result<Served, ApiError> {
        let config = RepoConfig::of(row);
        let Some(up) = config.upstream.as_ref() else {
            return Err(ApiError::internal(
                "proxy repo",
                artifactd_plugin_api::Error::internal_msg(format!(
                    "the proxy repo {} has no upstream configured",
                    row.name
                )),
            ));
        };
        let tree = tree::Ctx {
            proxies: self,
            env,
            row,
            format,
            up,
        };
        match format.classify(&req.path) {
            ProxyPath::Root => {
                let mut projects = cache::cached_projects(env.db, row.id).await?;
                projects.sort();
                Ok(Served::Render(format.render(req, None, &projects)?))
            }
            ProxyPath::Project(project) => {
                let (listing, fresh) = self.listing(env, row, format, up, &project).await?;
                let Some(listing) = listing else {
                    return Err(ApiError::not_found(format!(
                        "The upstream has no project {project:?}."
                    )));
                };
                // Rendered once per fetched listing (and settings: the generation).
                let known = self
                    .listings
                    .get(row.id, &project)
                    .map_or(0, |k| k.fetched_at);
                let key = render_key(row.id, req);
                let token = vec![row.generation, known];
                if fresh == Freshness::Hit
                    && let Some(resp) = self.rendered.get(&key, &token)
                {
                    return Ok(Served::Render(resp));
                }
                let listing = own_policy(row, &config.policy, &project, &listing, base_url);
                let resp = mark(format.render(req, Some(&listing), &[])?, &fresh);
                if fresh == Freshness::Hit {
                    self.rendered.put(key, token, resp.clone());
                }
                Ok(Served::Render(resp))
            }
            ProxyPath::File { project, filename } => {
                files::serve(
                    self,
                    env,
                    row,
                    format,
                    up,
                    &config.policy,
                    &project,
                    &filename,
                )
                .await
            }
            ProxyPath::Signed => tree.signed(&req.path).await,
            ProxyPath::Vouched { content } => tree.vouched(&req.path, content.as_deref()).await,
            ProxyPath::Keyring { armored } => tree.keyring(armored),
            ProxyPath::Redirect(to) => Ok(Served::Render(ServeResponse::redirect(
                &format!("{base_url}{to}"),
                true,
            )?)),
            ProxyPath::NotFound => Err(ApiError::not_found(
                "There is nothing at this path of the proxy repo.",
            )),
            _ => Err(ApiError::not_found(
                "There is nothing at this path of the proxy repo.",
            )),
        }
    }

    /// A project's listing (`None`: the upstream has no such project), and how fresh it is.
    pub(super) async fn listing(
        &self,
        env: Env<'_>,
        row: &repo::Model,
        format: &dyn ProxyFormat,
        up: &Upstream,
        project: &str,
    ) -> Result<(Option<Arc<Listing>>, Freshness), ApiError> {
        let now = crate::db::now_millis();
        let ttl = |status: i32| -> i64 {
            let secs = if status == 404 {
                upstream::NOT_FOUND_TTL_SECS.min(up.ttl_secs)
            } else {
                up.ttl_secs
            };
            i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
        };
        if let Some(k) = self.listings.get(row.id, project) {
            let status = if k.listing.is_some() { 200 } else { 404 };
            if now.saturating_sub(k.fetched_at) < ttl(status) {
                return Ok((k.listing, Freshness::Hit));
            }
        }
        let key = cache::page_key(project);
        let fresh_row = |e: &crate::db::entities::proxy_entry::Model| {
            now.saturating_sub(e.fetched_at) < ttl(e.status)
        };
        if let Some(e) = cache::entry(env.db, row.id, &key).await?
            && fresh_row(&e)
        {
            return Ok((self.load(env, row.id, project, &e).await?, Freshness::Hit));
        }
        let _guard = self.locks.lock(format!("{}:{key}", row.id)).await;
        // Whoever held the lock may have fetched it.
        let stored = cache::entry(env.db, row.id, &key).await?;
        if let Some(e) = &stored
            && crate::db::now_millis().saturating_sub(e.fetched_at) < ttl(e.status)
        {
            return Ok((self.load(env, row.id, project, e).await?, Freshness::Hit));
        }
        match self.fetch_page(format, up, project).await {
            Ok(Some(listing)) => {
                let json =
                    serde_json::to_vec(&listing).map_err(|e| ApiError::internal("listing", e))?;
                let sha = hex::encode(sha2::Sha256::digest(&json));
                let size = json.len() as u64;
                env.blobs
                    .put_content_bytes(json.into(), &sha)
                    .await
                    .map_err(storage_error)?;
                let e =
                    cache::store(env.db, row.id, &key, 200, &sha, size, "application/json").await?;
                let listing = Arc::new(listing);
                self.listings.put(
                    row.id,
                    project,
                    cache::Known {
                        fetched_at: e.fetched_at,
                        listing: Some(listing.clone()),
                    },
                );
                Ok((Some(listing), Freshness::Miss))
            }
            Ok(None) => {
                let e = cache::store(env.db, row.id, &key, 404, "", 0, "").await?;
                self.listings.put(
                    row.id,
                    project,
                    cache::Known {
                        fetched_at: e.fetched_at,
                        listing: None,
                    },
                );
                Ok((None, Freshness::Miss))
            }
            Err(err) => match stored {
                Some(e) => {
                    tracing::warn!(repo = %row.name, project, error = %err, "Upstream failed; serving the cached page.");
                    Ok((
                        self.load(env, row.id, project, &e).await?,
                        Freshness::Stale(err.to_string()),
                    ))
                }
                None => {
                    tracing::warn!(repo = %row.name, project, error = %err, "Upstream failed; nothing cached.");
                    Err(bad_gateway(&err))
                }
            },
        }
    }

    /// Reads a stored listing into this node's memory.
    async fn load(
        &self,
        env: Env<'_>,
        repo_id: i64,
        project: &str,
        e: &crate::db::entities::proxy_entry::Model,
    ) -> Result<Option<Arc<Listing>>, ApiError> {
        let listing = if e.status == 200 {
            let bytes = env
                .blobs
                .content_bytes(&e.sha256)
                .await
                .map_err(storage_error)?
                .ok_or_else(|| {
                    ApiError::internal(
                        "proxy cache",
                        artifactd_plugin_api::Error::internal_msg(format!(
                            "the cached page of {project} is missing from the blob store"
                        )),
                    )
                })?;
            let listing: Listing = serde_json::from_slice(&bytes)
                .map_err(|err| ApiError::internal("cached listing", err))?;
            Some(Arc::new(listing))
        } else {
            None
        };
        self.listings.put(
            repo_id,
            project,
            cache::Known {
                fetched_at: e.fetched_at,
                listing: listing.clone(),
            },
        );
        Ok(listing)
    }

    /// Fetches and reads a project's upstream page; `Ok(None)` for a 404.
    async fn fetch_page(
        &self,
        format: &dyn ProxyFormat,
        up: &Upstream,
        project: &str,
    ) -> Result<Option<Listing>, FetchError> {
        let (url, accept) = format.page_url(&up.url, project);
        let fetched = match self
            .client
            .get_bytes(up, &url, Some(accept), MAX_PAGE_BYTES)
            .await
        {
            Ok(f) => f,
            Err(FetchError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        format
            .parse(project, &fetched.url, &fetched.content_type, &fetched.body)
            .map(Some)
            .map_err(|e| FetchError::Invalid(format!("the page of {project} at {url}: {e}")))
    }
}

/// What a rendered page depends on besides its listings: the repo, the path, the `Accept`.
fn render_key(repo_id: i64, req: &ServeRequest) -> (i64, String, String) {
    let accept = req
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    (repo_id, req.path.clone(), accept.to_owned())
}

/// A proxy's listing as its own policy (cooldown, block list, status marks) lets it through,
/// with what it leaves out and why.
fn own_policy_explained(
    row: &repo::Model,
    policy: &Policy,
    project: &str,
    listing: &Listing,
    base_url: &str,
) -> (Listing, Vec<policy::Hidden>) {
    let member = policy::Member {
        name: &row.name,
        origin: policy::Origin::Upstream,
        listing: Some(listing),
        policy,
        page_url: format!("{base_url}{project}/"),
        status: None,
    };
    let own = crate::db::settings_of(row);
    policy::merge_explained(
        project,
        &[member],
        &Policy::default(),
        own.status_of(project),
        crate::db::now_millis(),
    )
    .unwrap_or_else(|| (Listing::new(project, Vec::new()), Vec::new()))
}

/// [`own_policy_explained`]'s listing.
fn own_policy(
    row: &repo::Model,
    policy: &Policy,
    project: &str,
    listing: &Listing,
    base_url: &str,
) -> Listing {
    own_policy_explained(row, policy, project, listing, base_url).0
}

/// Adds the cache header (and a stale warning) to a response.
fn mark(resp: ServeResponse, fresh: &Freshness) -> ServeResponse {
    let mut resp = resp.with_header(
        http::HeaderName::from_static(CACHE_HEADER),
        HeaderValue::from_static(fresh.header()),
    );
    if let Freshness::Stale(why) = fresh {
        let text: String = why
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(200)
            .collect();
        if let Ok(v) =
            HeaderValue::from_str(&format!("111 artifactd \"Revalidation failed: {text}\""))
        {
            resp = resp.with_header(http::header::WARNING, v);
        }
    }
    resp
}

/// What the web UI shows of a proxy repo.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The upstream's URL.
    pub upstream: String,
    /// Files cached, and their bytes.
    pub files: usize,
    /// Bytes of the cached files.
    pub size: i64,
    /// The projects whose pages were fetched.
    pub projects: Vec<String>,
    /// The signed documents verified (paths below the mount).
    pub documents: Vec<String>,
}

/// The summary of a proxy repo (`None` for other kinds).
///
/// # Errors
/// Database failures.
pub async fn summary(db: &Db, row: &repo::Model) -> Result<Option<Summary>, sea_orm::DbErr> {
    let Some(upstream) = RepoConfig::of(row).upstream else {
        return Ok(None);
    };
    let entries = cache::entries(db, row.id, "").await?;
    let files: Vec<_> = entries
        .iter()
        .filter(|e| e.status == 200 && e.key.starts_with("file:"))
        .collect();
    let mut projects: Vec<String> = entries
        .iter()
        .filter(|e| e.status == 200)
        .filter_map(|e| e.key.strip_prefix("page:").map(str::to_owned))
        .collect();
    projects.sort();
    let mut documents: Vec<String> = entries
        .iter()
        .filter_map(|e| e.key.strip_prefix("signed:").map(str::to_owned))
        .collect();
    documents.sort();
    Ok(Some(Summary {
        upstream: upstream.url,
        files: files.len(),
        size: files.iter().map(|e| e.size).sum(),
        projects,
        documents,
    }))
}
