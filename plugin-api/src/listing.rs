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
    /// The project's status, when the index gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::ProjectStatus>,
    /// Format-specific facts about the project (e.g. PEP 708's `tracks`).
    #[serde(default)]
    pub meta: Value,
}

impl Listing {
    /// A listing of `files` for the project `name`.
    pub fn new(name: impl Into<String>, files: Vec<ListedFile>) -> Self {
        Self {
            name: name.into(),
            files,
            status: None,
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
    /// A document the upstream signs with a key of the proxy's keyring (APT's `InRelease`), at
    /// the same path of the upstream: fetched for the time to live, verified by the host before
    /// anything it lists is fetched, and served exactly as the upstream sent it.
    Signed,
    /// A file that a verified document lists with its hash, directly or through a list it
    /// vouches for (APT's indexes and pool files), at the same path of the upstream: fetched
    /// once, checked against that hash, cached under it.
    Vouched {
        /// The SHA-256 the path itself names (APT's `by-hash/SHA256/<hash>`), if it names one.
        content: Option<String>,
    },
    /// The proxy's keyring, the upstream's keys clients verify with: armored, or binary
    /// (OpenPGP packets, as `signed-by` files in `/etc/apt/keyrings` often are).
    Keyring {
        /// Whether it is asked for armored.
        armored: bool,
    },
    /// A redirect to the canonical path (e.g. a non-normalized project name).
    Redirect(String),
    /// Nothing a proxy serves.
    NotFound,
}

/// A file a verified document lists: its path below the mount, its SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Vouch {
    /// The path below the mount (and below the upstream's base URL).
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes, when the document gives it.
    pub size: Option<u64>,
}

impl Vouch {
    /// The file at `path` with this hash and size.
    pub fn new(path: impl Into<String>, sha256: impl Into<String>, size: Option<u64>) -> Self {
        Self {
            path: path.into(),
            sha256: sha256.into(),
            size,
        }
    }
}

/// How a provider's format is proxied.
///
/// A format is proxied in one of two shapes:
/// - **Projects** (PyPI): pages per project, read into [`Listing`]s with the file hashes, and
///   rendered for clients: [`ProxyPath::Root`], [`ProxyPath::Project`], [`ProxyPath::File`] with
///   `page_url`, `parse`, `render`, `listing_of`; such listings merge into virtual repos.
/// - **Signed trees** (APT): the upstream's files served as they are, trusted from documents
///   signed by the proxy's keyring down: [`ProxyPath::Signed`], [`ProxyPath::Vouched`] with
///   `vouched_by`, `lists_files`, `vouches_in`. The host verifies signatures (a cleartext
///   OpenPGP signature by a key of the keyring) and hashes.
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

    /// Whether virtual repos can merge repos of this format (it implements `listing_of`).
    fn merges(&self) -> bool {
        false
    }

    /// Whether a proxy of this format needs a keyring: it serves [`ProxyPath::Signed`] trees.
    fn signed(&self) -> bool {
        false
    }

    /// The upstream URL of `project`'s page below the upstream's base URL (which ends in `/`),
    /// and the `Accept` header to send.
    fn page_url(&self, base: &str, project: &str) -> (String, &'static str) {
        (format!("{base}{project}/"), "*/*")
    }

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
    ) -> crate::Result<Listing> {
        let _ = (page_url, content_type, body);
        Err(crate::Error::invalid(format!(
            "This format has no project pages to read ({project:?})."
        )))
    }

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
    ) -> crate::Result<ServeResponse> {
        let _ = (req, listing, projects);
        Err(crate::Error::not_found(
            "There is no page at this path of the proxy repo.",
        ))
    }

    /// The content type a downloaded file is served with.
    fn content_type(&self, filename: &str) -> &'static str;

    /// A hosted repo's files of one project as a listing (for virtual repos, which merge hosted
    /// and proxy members); `records` are the project's records, `files/` paths as the hosted
    /// repo serves them.
    fn listing_of(&self, records: &[crate::FileRecord]) -> Option<Listing> {
        let _ = records;
        None
    }

    /// The files a verified signed document at `path` lists (`text` is what the signature
    /// covers, with `\n` line ends).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a document it cannot read.
    fn vouched_by(&self, path: &str, text: &str) -> crate::Result<Vec<Vouch>> {
        let _ = text;
        Err(crate::Error::invalid(format!(
            "This format signs no documents ({path:?})."
        )))
    }

    /// Whether the vouched file at `path` lists more files ([`Self::vouches_in`]).
    fn lists_files(&self, path: &str) -> bool {
        let _ = path;
        false
    }

    /// The files a vouched list at `path` names with their hashes (`body` as fetched: the
    /// provider decompresses it).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a list it cannot read.
    fn vouches_in(&self, path: &str, body: &[u8]) -> crate::Result<Vec<Vouch>> {
        let _ = (path, body);
        Ok(Vec::new())
    }
}
