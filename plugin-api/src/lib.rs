//! The extension point of artifactd: everything a package-format provider needs, and nothing else.
//!
//! A provider implements [`Provider`] with three hooks:
//!
//! - [`Provider::upload`] inspects one uploaded file (already streamed to a local temporary file and
//!   hashed by the host) and describes the [`NewRecord`]s to store. The host then puts the blob,
//!   inserts the records under unique constraints and applies the repo's overwrite policy, so every
//!   provider gets idempotent re-uploads and `409 Conflict` on changed bytes for free.
//! - [`Provider::index`] regenerates whatever derived files the format needs (APT `Release`, …)
//!   from the catalog. It is idempotent and the host serializes it per repo.
//! - [`Provider::serve`] answers a read request below the provider's mount
//!   (`/repo/<kind>/<repo>/…`). A response may point at a blob; the host then streams it and
//!   implements `HEAD`, `Range`, `ETag` and caching once for every provider.
//!
//! The host hands each hook a [`RepoContext`]: the repo's [`Catalog`] of file records, a blob
//! store scoped to the provider and repo, a [`Signer`], the repo's [`RepoSettings`], the external
//! base URL and the authenticated [`Principal`]. None of the host's database, HTTP server or
//! OpenPGP types cross this boundary; the vocabulary crates this API uses are re-exported so that
//! a provider crate needs no other dependency.
//!
//! Two provided methods, [`Provider::repo_view`] and [`Provider::file_view`], tell the host's web
//! UI what to show; the host renders and escapes it.
//!
//! A provider may also let the host proxy its format ([`Provider::proxy`], a [`ProxyFormat`]):
//! the host fetches, caches and checks; the provider reads and renders [`Listing`]s.
//!
//! Providers are registered explicitly, by [`ProviderFactory`], in a [`Registry`].

mod context;
mod error;
pub mod flight;
pub mod html;
mod listing;
mod provider;
mod record;
mod registry;
mod serve;
pub mod time;
pub mod ui;
mod upload;

#[cfg(feature = "testing")]
pub mod testing;

pub use context::{Principal, ProjectStatus, RepoContext, RepoSettings, Signer, Status};
pub use error::{Error, Result};
pub use listing::{ListedFile, Listing, ProxyFormat, ProxyPath, Vouch};
pub use provider::{
    CheckReport, DynProvider, IndexScope, Problem, Provider, ProviderFactory, RetentionUnit,
    Staging,
};
pub use record::{Catalog, FileRecord, InsertOutcome, ListQuery, NewRecord};
pub use registry::{Registry, RegistryError};
pub use serve::{BlobRef, ServeBody, ServeRequest, ServeResponse};
pub use upload::{DerivedFile, UploadOutcome, UploadRequest, UploadedFile};

pub use async_trait::async_trait;
pub use bytes;
pub use futures_util as futures;
pub use http;
pub use object_store;
pub use serde;
pub use serde_json;
