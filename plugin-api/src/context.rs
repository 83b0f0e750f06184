//! What the host hands a provider hook: the repo, its services and who is asking.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::record::Catalog;

/// Who made the request, established by the host before any provider code runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
    /// A request authenticated with an API token.
    Token {
        /// The token's identifier (never the secret).
        id: String,
        /// The human name given to the token at creation.
        name: String,
    },
    /// The server itself, for work no request asked for (retention in `artifactd gc`).
    System {
        /// What the work is, e.g. `retention`.
        task: String,
    },
}

impl Principal {
    /// A short label for logs and the audit trail.
    pub fn label(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Token { name, .. } => format!("token:{name}"),
            Self::System { task } => format!("system:{task}"),
        }
    }
}

/// Per-repo settings, stored by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RepoSettings {
    /// Whether an upload may replace a stored file of the same name with different bytes.
    pub overwrite: bool,
    /// Whether reads need credentials.
    pub private: bool,
    /// Whether deleting the last package deletes the repo.
    pub delete_empty: bool,
    /// Whether every publish that changes a dist's indexes also takes a snapshot of it (APT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_snapshot: bool,
    /// Retention: the newest versions of each package to keep; `None` keeps every version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Retention removes a version only when it is older than this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_min_age: Option<u64>,
    /// Versions retention never removes, by package key.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pins: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Armored OpenPGP public keys: when set, an upload completed by a signed file (dput's
    /// `.changes`) must be signed by one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaders: Option<String>,
    /// Projects an administrator marked (by the provider's package key); unmarked ones are
    /// active.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub project_status: std::collections::BTreeMap<String, ProjectStatus>,
}

impl RepoSettings {
    /// The status of the project with package key `key`.
    pub fn status_of(&self, key: &str) -> Option<&ProjectStatus> {
        self.project_status.get(key)
    }
}

/// A project's status, after PyPI's PEP 792 (which every format can use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Served and open to uploads.
    #[default]
    Active,
    /// Served, closed to uploads: it is not maintained any more.
    Archived,
    /// Closed to uploads and served with no files: under review (e.g. suspected malware).
    Quarantined,
    /// Served and open to uploads, but its users should move on.
    Deprecated,
}

impl Status {
    /// The name PEP 792 gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
            Self::Quarantined => "quarantined",
            Self::Deprecated => "deprecated",
        }
    }

    /// Reads a PEP 792 name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "archived" => Self::Archived,
            "quarantined" => Self::Quarantined,
            "deprecated" => Self::Deprecated,
            _ => return None,
        })
    }

    /// Whether uploads to the project are refused.
    pub fn refuses_uploads(self) -> bool {
        matches!(self, Self::Archived | Self::Quarantined)
    }

    /// Whether the project's files are withheld.
    pub fn hides_files(self) -> bool {
        self == Self::Quarantined
    }
}

/// A project's status and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectStatus {
    /// The status.
    pub status: Status,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ProjectStatus {
    /// `status`, for `reason`.
    pub fn new(status: Status, reason: Option<String>) -> Self {
        Self { status, reason }
    }
}

/// Signs index files with the repo's own OpenPGP key (created by the host on first use).
///
/// # Contract
/// Signatures use SHA-256 or stronger. The key is the same for every call on one repo until an
/// administrator replaces it.
#[async_trait]
pub trait Signer: Send + Sync + fmt::Debug {
    /// The repo's public keys (every key that signs now), ASCII-armored.
    async fn public_key_armored(&self) -> Result<String>;
    /// The same keys as a binary (non-armored) OpenPGP keyring.
    async fn public_key_binary(&self) -> Result<Vec<u8>>;
    /// An ASCII-armored detached signature of `data` (APT `Release.gpg`).
    async fn sign_detached(&self, data: &[u8]) -> Result<String>;
    /// A cleartext-signed copy of `text` (APT `InRelease`).
    async fn sign_cleartext(&self, text: &str) -> Result<String>;
    /// The upper-case hex fingerprints of the keys that sign now (during a key rotation, the
    /// new key and the one it replaces; APT's `Signed-By` field). Empty when unknown.
    async fn fingerprints(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The repo a hook works on, with the host's services scoped to it.
#[derive(Clone)]
#[non_exhaustive]
pub struct RepoContext {
    /// The repo's name, already validated by the host.
    pub repo: String,
    /// The repo's settings.
    pub settings: RepoSettings,
    /// Who is asking.
    pub principal: Principal,
    /// The external URL of this repo's mount, ending in `/` (e.g. `http://host/repo/pypi/R/`).
    pub base_url: String,
    /// The repo's file records.
    pub catalog: Arc<dyn Catalog>,
    /// Blob storage private to this provider and repo, for derived files such as indexes.
    pub blobs: Arc<dyn ObjectStore>,
    /// The repo's signer.
    pub signer: Arc<dyn Signer>,
}

impl RepoContext {
    /// Builds a context; the host and test doubles call this.
    pub fn new(
        repo: impl Into<String>,
        base_url: impl Into<String>,
        catalog: Arc<dyn Catalog>,
        blobs: Arc<dyn ObjectStore>,
        signer: Arc<dyn Signer>,
    ) -> Self {
        Self {
            repo: repo.into(),
            settings: RepoSettings::default(),
            principal: Principal::Anonymous,
            base_url: base_url.into(),
            catalog,
            blobs,
            signer,
        }
    }

    /// Replaces the settings.
    pub fn with_settings(mut self, settings: RepoSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Replaces the principal.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }
}

impl fmt::Debug for RepoContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoContext")
            .field("repo", &self.repo)
            .field("settings", &self.settings)
            .field("principal", &self.principal)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}
