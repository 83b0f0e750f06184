//! Proxy and virtual repos: a project's files as an index lists them, in one shape for every
//! format, and the small hook through which a provider lets the host proxy its format and merge
//! repos of it.
//!
//! The host owns what every proxy shares: the upstream and its credentials, the HTTP client,
//! caching with a time to live, one fetch per key however many clients ask, serving what it
//! has when the upstream is down, and checking a file's hash before it is kept. The provider
//! says what a path asks for, where the upstream has it, how to read the upstream's page into a
//! [`Listing`], and how to render a listing for a client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::serve::{ServeRequest, ServeResponse};

/// A project's files, as one index lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Listing {
    /// The project's name as the index spells it.
    pub name: String,
    /// The files.
    pub files: Vec<ListedFile>,
    /// Format-specific facts about the project (e.g. PyPI's project status).
    #[serde(default)]
    pub meta: Value,
}

impl Listing {
    /// A listing of `files` for the project `name`.
    pub fn new(name: impl Into<String>, files: Vec<ListedFile>) -> Self {
        Self {
            name: name.into(),
            files,
            meta: Value::Null,
        }
    }

    /// The file named `filename`.
    pub fn file(&self, filename: &str) -> Option<&ListedFile> {
        self.files.iter().find(|f| f.filename == filename)
    }
}

/// One file of a [`Listing`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListedFile {
    /// The file name (no folders).
    pub filename: String,
    /// The version it belongs to, as the format spells it.
    pub version: String,
    /// Where the upstream serves it (absolute URL).
    pub url: String,
    /// Lower-case hex SHA-256, when the index gives it; a proxy serves only files it can check.
    pub sha256: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// When it was uploaded (ms since the epoch), when known.
    pub uploaded_at: Option<i64>,
    /// Why it was yanked; `Some("")` for a yank without a reason.
    pub yanked: Option<String>,
    /// Files that belong to this one and are served beside it (PyPI's `.metadata`), as
    /// `(suffix, sha256)`: `filename + suffix` is fetched from `url + suffix`.
    #[serde(default)]
    pub companions: Vec<(String, String)>,
    /// Format-specific facts (e.g. `requires-python`).
    #[serde(default)]
    pub meta: Value,
    /// The repo it comes from, in a virtual repo's merged listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl ListedFile {
    /// A file at `url`.
    pub fn new(
        filename: impl Into<String>,
        version: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self {
            filename: filename.into(),
            version: version.into(),
            url: url.into(),
            ..Self::default()
        }
    }
}

/// What a read below a proxy repo's mount asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyPath {
    /// The list of projects.
    Root,
    /// A project's page, by its normalized name.
    Project(String),
    /// A file (or a companion of one: `filename` then ends in its suffix) of a project.
    File {
        /// The project's normalized name.
        project: String,
        /// The file name asked for.
        filename: String,
    },
    /// A redirect to the canonical path (e.g. a non-normalized project name).
    Redirect(String),
    /// Nothing a proxy serves.
    NotFound,
}

/// How a provider's format is proxied.
///
/// # Contract
/// - `classify` is pure and cheap: it runs on every read of a proxy repo.
/// - `parse` treats the upstream's bytes as untrusted input: names are checked as uploads are,
///   file URLs are made absolute against `page_url`, and a page it cannot read is
///   [`crate::Error::InvalidInput`].
/// - `render` links files as `files/<filename>` below the repo mount (relative to the page, as
///   the hosted pages do), so every download goes through the host.
pub trait ProxyFormat: Send + Sync {
    /// What `path` (below the mount) asks for.
    fn classify(&self, path: &str) -> ProxyPath;

    /// The upstream URL of `project`'s page below the upstream's base URL (which ends in `/`),
    /// and the `Accept` header to send.
    fn page_url(&self, base: &str, project: &str) -> (String, &'static str);

    /// Reads an upstream page (fetched from `page_url`, answered with `content_type`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a page that is not one.
    fn parse(
        &self,
        project: &str,
        page_url: &str,
        content_type: &str,
        body: &[u8],
    ) -> crate::Result<Listing>;

    /// A project's page for `req` (content negotiation is the provider's), or the root page when
    /// `listing` is `None`, listing `projects` (normalized key, display name).
    ///
    /// # Errors
    /// When nothing acceptable can be rendered.
    fn render(
        &self,
        req: &ServeRequest,
        listing: Option<&Listing>,
        projects: &[(String, String)],
    ) -> crate::Result<ServeResponse>;

    /// The content type a downloaded file is served with.
    fn content_type(&self, filename: &str) -> &'static str;

    /// A hosted repo's files of one project as a listing (for virtual repos, which merge hosted
    /// and proxy members); `records` are the project's records, `files/` paths as the hosted
    /// repo serves them.
    fn listing_of(&self, records: &[crate::FileRecord]) -> Option<Listing>;
}
