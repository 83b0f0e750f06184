//! What the host's web UI shows about a provider's repos and files.
//!
//! The host renders every page itself and escapes every value; providers only say what to show,
//! through [`crate::Provider::repo_view`] and [`crate::Provider::file_view`]. Both have defaults,
//! so a provider that does nothing still gets browsable repos.

use serde::Serialize;

use crate::FileRecord;

/// A text a user copies to point a client at a repo, with a title saying what it is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snippet {
    /// What the snippet does, e.g. "pip install".
    pub title: String,
    /// The text, copied verbatim (a command or a file's content).
    pub text: String,
}

impl Snippet {
    /// A snippet.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            text: text.into(),
        }
    }
}

/// How the web UI presents a repo.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RepoView {
    /// What a record scope is called (APT: "Dist"); unused by formats without scopes.
    pub scope_label: String,
    /// Set-up instructions, in the order shown.
    pub setup: Vec<Snippet>,
    /// Whether the format honours yanked files (the UI then offers yank buttons).
    pub yank: bool,
}

impl RepoView {
    /// A view with these instructions.
    pub fn new(scope_label: impl Into<String>, setup: Vec<Snippet>) -> Self {
        Self {
            scope_label: scope_label.into(),
            setup,
            yank: false,
        }
    }

    /// Says the format honours yanked files.
    pub fn with_yank(mut self) -> Self {
        self.yank = true;
        self
    }
}

/// The long description of a package, as its author wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// The text.
    pub text: String,
    /// Whether the text is Markdown (rendered without raw HTML) rather than plain text.
    pub markdown: bool,
}

/// How the web UI presents one file of a package.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FileView {
    /// A one-line summary.
    pub summary: Option<String>,
    /// The long description.
    pub description: Option<Description>,
    /// Labelled facts, e.g. ("Requires Python", ">=3.9") or ("Depends", "libc6").
    pub facts: Vec<(String, String)>,
    /// Labelled links; the host shows only `http` and `https` URLs.
    pub links: Vec<(String, String)>,
    /// The group the file is listed under on a scope page (APT: "main / amd64").
    pub group: Option<String>,
}

impl FileView {
    /// The default view: the `summary` field of the record's metadata, if it is a string.
    pub fn from_meta(record: &FileRecord) -> Self {
        Self {
            summary: meta_str(record, "summary").map(str::to_owned),
            ..Self::default()
        }
    }

    /// Adds a fact when `value` is present and not empty.
    pub fn fact(mut self, label: &str, value: Option<&str>) -> Self {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            self.facts.push((label.to_owned(), v.to_owned()));
        }
        self
    }
}

/// A string field of a record's metadata.
pub fn meta_str<'r>(record: &'r FileRecord, field: &str) -> Option<&'r str> {
    record.meta.get(field).and_then(serde_json::Value::as_str)
}
