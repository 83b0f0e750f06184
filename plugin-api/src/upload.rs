//! The upload hook's input and output.

use std::path::PathBuf;

use bytes::Bytes;
use object_store::path::Path as BlobPath;

use crate::record::NewRecord;

/// An uploaded file, streamed by the host to a local temporary file and hashed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// The file name the client sent (unvalidated: check it before using it).
    pub filename: String,
    /// Where the bytes are; the file lives until the hook returns.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

impl UploadedFile {
    /// Describes a file on disk.
    pub fn new(filename: impl Into<String>, path: PathBuf, size: u64, sha256: String) -> Self {
        Self {
            filename: filename.into(),
            path,
            size,
            sha256,
        }
    }
}

/// One upload: the file and the parameters that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadRequest {
    /// `None` for the host's generic `/addpkg`; for an upload in the format's own protocol, the
    /// path below the repo mount it was posted to (e.g. `""` or `"legacy/"`).
    pub native_path: Option<String>,
    /// Query parameters and text form fields, in order; a name may repeat.
    pub params: Vec<(String, String)>,
    /// The file.
    pub file: UploadedFile,
    /// The other files of the same request, in the order they came (a Debian source package
    /// is its `.dsc` and the files it lists). The host refuses the upload when a record of the
    /// outcome uses none of them, so a provider that takes one file per upload ignores this.
    pub companions: Vec<UploadedFile>,
}

impl UploadRequest {
    /// Builds a request.
    pub fn new(
        native_path: Option<String>,
        params: Vec<(String, String)>,
        file: UploadedFile,
    ) -> Self {
        Self {
            native_path,
            params,
            file,
            companions: Vec::new(),
        }
    }

    /// Adds the request's other files.
    #[must_use]
    pub fn with_companions(mut self, companions: Vec<UploadedFile>) -> Self {
        self.companions = companions;
        self
    }

    /// The file and its companions.
    pub fn files(&self) -> impl Iterator<Item = &UploadedFile> {
        std::iter::once(&self.file).chain(&self.companions)
    }

    /// The first value of parameter `name`, if any and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of parameter `name`.
    pub fn params_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A file derived from an upload (such as extracted metadata), for the provider's own blob
/// store of the repo.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DerivedFile {
    /// Where it goes in `RepoContext::blobs`; name it after the upload's content hash, so that
    /// identical uploads write identical files.
    pub path: BlobPath,
    /// Its bytes (small: whole files are the host's, not derived).
    pub bytes: Bytes,
}

/// What the upload hook decided to store: usually one record for the uploaded file, and the
/// files derived from it. The host stores them only once the upload is accepted (no conflict,
/// no refusal), so a refused upload leaves nothing behind.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UploadOutcome {
    /// Records to insert, each pointing at the blob of one of the request's files (the host
    /// checks that its size and hash are one of theirs).
    pub records: Vec<NewRecord>,
    /// Derived files, written to the repo's blob store before the records are committed.
    pub derived: Vec<DerivedFile>,
}

impl UploadOutcome {
    /// Stores one record.
    pub fn one(record: NewRecord) -> Self {
        Self {
            records: vec![record],
            derived: Vec::new(),
        }
    }

    /// Stores several records (each for one of the request's files).
    pub fn many(records: Vec<NewRecord>) -> Self {
        Self {
            records,
            derived: Vec::new(),
        }
    }

    /// Adds a derived file.
    pub fn with_derived(mut self, path: BlobPath, bytes: impl Into<Bytes>) -> Self {
        self.derived.push(DerivedFile {
            path,
            bytes: bytes.into(),
        });
        self
    }
}
