//! The `Provider` trait: the three hooks a package format implements.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::FileRecord;
use crate::Result;
use crate::context::RepoContext;
use crate::listing::ProxyFormat;
use crate::serve::{ServeRequest, ServeResponse};
use crate::ui::{FileView, RepoView};
use crate::upload::{UploadOutcome, UploadRequest};

/// Which part of a repo's derived indexes to regenerate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexScope {
    /// Everything (after a restore, a key change, or when unsure).
    All,
    /// Only these record scopes changed.
    Scopes(Vec<String>),
    /// Everything, writing every derived file again even where it looks unchanged (a repair
    /// after derived files were lost).
    Rebuild,
}

impl IndexScope {
    /// Whether `scope` needs regenerating.
    pub fn includes(&self, scope: &str) -> bool {
        match self {
            Self::All | Self::Rebuild => true,
            Self::Scopes(s) => s.iter().any(|x| x == scope),
        }
    }
}

/// What retention needs to know of a record beyond its package and version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionUnit {
    /// Versions are counted separately per group (APT: per architecture).
    pub group: String,
    /// Paths of other records of the same scope that this one needs while it is kept (a
    /// Debian source package's upstream tarball, shared by its revisions).
    pub needs: Vec<String>,
}

impl RetentionUnit {
    /// A unit in `group` that needs `needs`.
    pub fn new(group: impl Into<String>, needs: Vec<String>) -> Self {
        Self {
            group: group.into(),
            needs,
        }
    }
}

/// An upload in several requests: the client `PUT`s each file below [`Staging::prefix`] of the
/// repo mount, and the host keeps it per uploader; the file whose name ends in
/// [`Staging::completes`] is handed to [`Provider::upload`] (with `native_path` its path) with
/// every file that uploader staged as companions. Staged files the outcome does not use stay
/// staged; the host removes those never used after a grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Staging {
    /// The folder below the repo mount, ending in `/` (APT: `incoming/`).
    pub prefix: &'static str,
    /// The file name ending that completes an upload (APT: `.changes`).
    pub completes: &'static str,
}

impl Staging {
    /// Files are `PUT` below `prefix`; one ending in `completes` completes the upload.
    pub fn new(prefix: &'static str, completes: &'static str) -> Self {
        Self { prefix, completes }
    }
}

/// One problem a consistency check found: the path below the repo mount, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// E.g. `dists/stable/main/binary-amd64/Packages.gz`.
    pub path: String,
    /// One sentence.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// What [`Provider::check`] found: the problems, and the signed documents it serves, which the
/// host verifies with the repo's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// `(path, cleartext-signed document)`, e.g. an APT dist's `InRelease`.
    pub signed: Vec<(String, String)>,
}

/// A package format, mounted by the host at `/repo/<kind>/`.
///
/// # Contract
/// - `kind` is constant, lower-case ASCII letters, digits and `-`; it is the URL segment.
/// - `upload` MUST NOT store records itself: it validates the file, derives every name that
///   becomes a path or index field from the file's content (checked against an ASCII allow-list),
///   and returns the records. It MUST NOT write blobs either: files derived from the upload
///   (such as extracted metadata) go into [`UploadOutcome::derived`], and the host stores them
///   only once it accepted the upload, so a refused upload leaves no blob, derived or not. When
///   the request carries `name`/`version` parameters, they MUST match the file (compared in the
///   format's normal form).
/// - `index` MUST be idempotent and read only the catalog and its own derived blobs; the host
///   calls it after every change and serializes calls per repo.
/// - `serve` MUST answer 404 ([`crate::Error::NotFound`]) for any path it does not know and MUST
///   NOT reach anything outside its repo.
///
/// # Errors
/// Client mistakes are [`crate::Error::InvalidInput`], [`crate::Error::NotFound`] or
/// [`crate::Error::Conflict`], with a one-sentence message naming the broken rule; everything
/// else is a server error and is logged with its cause.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// The URL segment and log field, e.g. `"pypi"`.
    fn kind(&self) -> &'static str;

    /// A one-line human description for listings.
    fn description(&self) -> &'static str {
        ""
    }

    /// The catalog key of a package name as a user types it (PyPI: the PEP 503 form); used by
    /// the host to find a package's records, e.g. for deletion.
    fn package_key(&self, name: &str) -> String {
        name.to_owned()
    }

    /// How the web UI presents a repo: set-up instructions and what a scope is called.
    ///
    /// # Errors
    /// Catalog or storage failures; the host then shows the repo without instructions.
    async fn repo_view(&self, cx: &RepoContext) -> Result<RepoView> {
        let _ = cx;
        Ok(RepoView::default())
    }

    /// How the web UI presents a file (summary, description, facts, links, group); the default
    /// shows the `summary` field of the record's metadata.
    fn file_view(&self, record: &FileRecord) -> FileView {
        FileView::from_meta(record)
    }

    /// How retention counts `record`: the versions of a package are counted per
    /// ([`FileRecord::scope`], [`FileRecord::key`], [`RetentionUnit::group`]); the default group
    /// is the package itself.
    fn retention_unit(&self, record: &FileRecord) -> RetentionUnit {
        let _ = record;
        RetentionUnit::default()
    }

    /// Orders two versions of one package (oldest first), `None` when the format has no order;
    /// retention then takes the order of their uploads.
    fn compare_versions(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        let _ = (a, b);
        None
    }

    /// Folders of the provider's derived files (below its repo root) that each belong to one
    /// stored file and are named by its SHA-256, e.g. `metadata` for `metadata/<sha256>`:
    /// `artifactd gc` removes such a file once no record, hold or staged upload refers to that
    /// digest any more. Empty (the default) when there are none.
    fn per_file_derived(&self) -> &'static [&'static str] {
        &[]
    }

    /// For a format whose clients upload a set of files one request each and then a file that
    /// lists them (Debian's `dput`: each file, then the `.changes`), where they go. `None` (the
    /// default) when the format has no such protocol. See [`Staging`].
    fn staging(&self) -> Option<Staging> {
        None
    }

    /// How the format is proxied (proxy repos), `None` when it is not. See [`ProxyFormat`].
    fn proxy(&self) -> Option<&dyn ProxyFormat> {
        None
    }

    /// Checks that what the provider published for the repo matches the catalog and that every
    /// file it lists is there (`artifactd fsck`); [`IndexScope::Rebuild`] repairs what it finds.
    /// The default finds nothing: a provider that renders everything from the catalog on
    /// demand has nothing that can drift.
    ///
    /// # Errors
    /// Catalog or storage failures (a missing file is a [`Problem`], not an error).
    async fn check(&self, cx: &RepoContext) -> Result<CheckReport> {
        let _ = cx;
        Ok(CheckReport::default())
    }

    /// Inspects one uploaded file and says what to store.
    async fn upload(&self, cx: &RepoContext, req: UploadRequest) -> Result<UploadOutcome>;

    /// Regenerates derived indexes for `scope`.
    async fn index(&self, cx: &RepoContext, scope: IndexScope) -> Result<()>;

    /// Answers a read request below the repo mount.
    async fn serve(&self, cx: &RepoContext, req: ServeRequest) -> Result<ServeResponse>;
}

/// How providers are held: as shared trait objects.
pub type DynProvider = Arc<dyn Provider>;

/// Builds a provider; each provider crate exports one (`pub fn factory() -> ProviderFactory`).
#[derive(Clone)]
pub struct ProviderFactory {
    kind: &'static str,
    build: Arc<dyn Fn() -> Result<DynProvider> + Send + Sync>,
}

impl ProviderFactory {
    /// A factory for `kind`, which must equal the built provider's [`Provider::kind`].
    pub fn new(
        kind: &'static str,
        build: impl Fn() -> Result<DynProvider> + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            build: Arc::new(build),
        }
    }

    /// The kind this factory builds.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Builds the provider.
    pub fn build(&self) -> Result<DynProvider> {
        (self.build)()
    }
}

impl fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFactory")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
