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
}

impl Principal {
    /// A short label for logs and the audit trail.
    pub fn label(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Token { name, .. } => format!("token:{name}"),
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
}

/// Signs index files with the repo's own OpenPGP key (created by the host on first use).
///
/// # Contract
/// Signatures use SHA-256 or stronger. The key is the same for every call on one repo until an
/// administrator replaces it.
#[async_trait]
pub trait Signer: Send + Sync + fmt::Debug {
    /// The repo's public key, ASCII-armored.
    async fn public_key_armored(&self) -> Result<String>;
    /// The repo's public key as a binary (non-armored) OpenPGP keyring.
    async fn public_key_binary(&self) -> Result<Vec<u8>>;
    /// An ASCII-armored detached signature of `data` (APT `Release.gpg`).
    async fn sign_detached(&self, data: &[u8]) -> Result<String>;
    /// A cleartext-signed copy of `text` (APT `InRelease`).
    async fn sign_cleartext(&self, text: &str) -> Result<String>;
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
