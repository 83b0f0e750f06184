//! The conformance suite every provider runs from its own tests.

use crate::{Catalog as _, DynProvider, Error, InsertOutcome, ListQuery};

use super::TestHost;

/// A file the conformance suite uploads.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The upload's file name.
    pub filename: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Upload parameters (`name`, `version` and whatever the format requires, such as `dist`).
    pub params: Vec<(String, String)>,
}

impl Sample {
    /// A sample with parameters.
    pub fn new(filename: &str, bytes: Vec<u8>, params: &[(&str, &str)]) -> Self {
        Self {
            filename: filename.to_owned(),
            bytes,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn params(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn with_param<'a>(&'a self, key: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut p: Vec<(&str, &str)> = self
            .params()
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        p.push((key, value));
        p
    }
}

/// What a provider hands the conformance suite.
#[derive(Debug, Clone)]
pub struct Kit {
    /// A valid file.
    pub first: Sample,
    /// Another valid file of another package.
    pub second: Sample,
    /// A file that stores at the same path as `first`, with other bytes.
    pub first_changed: Sample,
}

/// Runs the provider contract checks; panics with a message naming the broken rule.
///
/// Checks: upload then serve round-trips the bytes; a byte-identical re-upload is
/// [`InsertOutcome::Identical`]; other bytes at the same path are a conflict unless the repo
/// allows overwrite; a `name` parameter that disagrees with the file is invalid input; `index` is
/// idempotent; unknown paths are 404; nothing of another repo or outside the mount is reachable.
pub async fn conformance(provider: DynProvider, kit: Kit) {
    let host = TestHost::new(provider.clone());
    let kind = provider.kind();
    let repo = "conformance";

    // Upload then serve round-trips the bytes.
    let first = host
        .upload(
            repo,
            &kit.first.filename,
            &kit.first.bytes,
            &kit.first.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: uploading the first sample failed: {e}"));
    assert!(
        matches!(first.first(), Some(InsertOutcome::Inserted(_))),
        "{kind}: the first upload must insert a record"
    );
    for o in &first {
        let path = &o.record().path;
        assert!(
            !path.starts_with('/') && !path.split('/').any(|s| s == ".." || s.is_empty()),
            "{kind}: record path {path:?} must be relative with no empty or '..' segments"
        );
        let (resp, body) = host
            .get(repo, path)
            .await
            .unwrap_or_else(|e| panic!("{kind}: serving {path} failed: {e}"));
        assert_eq!(resp.status, http::StatusCode::OK, "{kind}: serving {path}");
        assert!(
            body.as_ref() == kit.first.bytes.as_slice(),
            "{kind}: {path} must serve the uploaded bytes"
        );
    }
    host.upload(
        repo,
        &kit.second.filename,
        &kit.second.bytes,
        &kit.second.params(),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: uploading the second sample failed: {e}"));

    // A byte-identical re-upload changes nothing.
    let again = host
        .upload(
            repo,
            &kit.first.filename,
            &kit.first.bytes,
            &kit.first.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: re-uploading identical bytes must succeed: {e}"));
    assert!(
        again
            .iter()
            .all(|o| matches!(o, InsertOutcome::Identical(_))),
        "{kind}: an identical re-upload must be Identical, got {again:?}"
    );

    // Other bytes at the same path: conflict, unless overwrite is allowed; a refused upload
    // leaves no blob, derived or not.
    let blobs_before = host.derived_files(repo).await.unwrap_or_default();
    let conflict = host
        .upload(
            repo,
            &kit.first_changed.filename,
            &kit.first_changed.bytes,
            &kit.first_changed.params(),
        )
        .await;
    assert!(
        matches!(conflict, Err(Error::Conflict(_))),
        "{kind}: other bytes at a stored path must be a Conflict, got {conflict:?}"
    );
    assert!(
        host.derived_files(repo).await.unwrap_or_default() == blobs_before,
        "{kind}: a refused upload must not write derived blobs (return them in UploadOutcome::derived)"
    );
    host.set_overwrite(repo, true);
    let replaced = host
        .upload(
            repo,
            &kit.first_changed.filename,
            &kit.first_changed.bytes,
            &kit.first_changed.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: overwrite allowed, the upload must succeed: {e}"));
    assert!(
        matches!(replaced.first(), Some(InsertOutcome::Replaced(_))),
        "{kind}: with overwrite allowed the record must be Replaced"
    );
    let path = replaced[0].record().path.clone();
    let (_, body) = host
        .get(repo, &path)
        .await
        .unwrap_or_else(|e| panic!("{kind}: serving {path}: {e}"));
    assert!(
        body.as_ref() == kit.first_changed.bytes.as_slice(),
        "{kind}: {path} must serve the replacing bytes"
    );
    host.set_overwrite(repo, false);

    // A name parameter that disagrees with the file is refused, and nothing is stored.
    let before = host
        .catalog(repo)
        .list(ListQuery::all())
        .await
        .unwrap_or_default();
    let wrong = host
        .upload(
            repo,
            &kit.second.filename,
            &kit.second.bytes,
            &kit.second.with_param("name", "not-this-package"),
        )
        .await;
    assert!(
        matches!(wrong, Err(Error::InvalidInput(_))),
        "{kind}: a name parameter that disagrees with the file must be InvalidInput, got {wrong:?}"
    );
    let after = host
        .catalog(repo)
        .list(ListQuery::all())
        .await
        .unwrap_or_default();
    assert_eq!(
        before, after,
        "{kind}: a refused upload must not change the catalog"
    );
    let blobs_before = host.derived_files(repo).await.unwrap_or_default();
    let refused = host
        .upload(repo, &kit.second.filename, b"not a package at all", &[])
        .await;
    assert!(
        refused.is_err(),
        "{kind}: a file that is not a package must be refused"
    );
    assert!(
        host.derived_files(repo).await.unwrap_or_default() == blobs_before,
        "{kind}: a refused upload must not write blobs"
    );

    // Index is idempotent: the same files serve the same bytes after repeated runs.
    for _ in 0..2 {
        host.reindex(repo)
            .await
            .unwrap_or_else(|e| panic!("{kind}: index failed: {e}"));
    }
    let (_, body) = host
        .get(repo, &path)
        .await
        .unwrap_or_else(|e| panic!("{kind}: serving {path} after index: {e}"));
    assert!(
        body.as_ref() == kit.first_changed.bytes.as_slice(),
        "{kind}: index must not change served files"
    );

    // Unknown paths are 404; nothing outside the repo is reachable.
    for probe in [
        "definitely/not/here".to_owned(),
        format!("{path}.does-not-exist"),
        format!("../{path}"),
        format!("../other/{path}"),
    ] {
        assert_not_found(&host, repo, &probe, kind).await;
    }
    assert_not_found(&host, "other", &path, kind).await;
}

async fn assert_not_found(host: &TestHost, repo: &str, path: &str, kind: &str) {
    match host.get(repo, path).await {
        Err(Error::NotFound(_)) => {}
        Ok((resp, _)) if resp.status == http::StatusCode::NOT_FOUND => {}
        Ok((resp, _)) => panic!("{kind}: {repo}/{path} must be 404, got {}", resp.status),
        Err(e) => panic!("{kind}: {repo}/{path} must be 404, got error {e}"),
    }
}
