//! The upload hook's input and output.

use std::path::PathBuf;

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
        }
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

/// What the upload hook decided to store: usually one record for the uploaded file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UploadOutcome {
    /// Records to insert, all pointing at the uploaded file's blob.
    pub records: Vec<NewRecord>,
}

impl UploadOutcome {
    /// Stores one record.
    pub fn one(record: NewRecord) -> Self {
        Self {
            records: vec![record],
        }
    }
}
