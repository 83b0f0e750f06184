//! `artifactd fsck` for APT repos: every dist with packages is published, every file its
//! `Release` lists is stored with the size it lists, each `Packages` lists exactly the dist's
//! packages of its component and architecture with their hashes, and `InRelease` signs the
//! `Release` the dist serves (the host verifies its signature with the repo's keys).

use std::collections::{BTreeMap, BTreeSet};

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{Error as StoreError, ObjectStoreExt as _};
use artifactd_plugin_api::{CheckReport, FileRecord, ListQuery, Problem, RepoContext, Result};

use crate::index::{self, Node, State};
use crate::retire;

/// Checks every dist of the repo.
pub(crate) async fn check(cx: &RepoContext, node: &Node) -> Result<CheckReport> {
    let records = cx.catalog.list(ListQuery::all()).await?;
    let mut by_dist: BTreeMap<&str, Vec<&FileRecord>> = BTreeMap::new();
    for r in &records {
        by_dist.entry(r.scope.as_str()).or_default().push(r);
    }
    let mut report = CheckReport::default();
    for (dist, records) in by_dist {
        let Some(state) = index::load_state(cx, dist).await? else {
            report.problems.push(Problem::new(
                format!("dists/{dist}/InRelease"),
                format!(
                    "The dist has {} package file(s) but is not published.",
                    records.len()
                ),
            ));
            continue;
        };
        let missing = stored(cx, dist, &state, &mut report.problems).await?;
        packages(
            cx,
            dist,
            &state,
            &records,
            &missing,
            node,
            &mut report.problems,
        )
        .await;
        if !state.inrelease.contains(&state.release) {
            report.problems.push(Problem::new(
                format!("dists/{dist}/InRelease"),
                "InRelease does not sign the Release the dist serves.",
            ));
        }
        report
            .signed
            .push((format!("dists/{dist}/InRelease"), state.inrelease.clone()));
    }
    Ok(report)
}

/// Every file `Release` lists is stored (a plain index as the alias of its gzip) with its
/// size; returns the indexes whose files are missing.
async fn stored(
    cx: &RepoContext,
    dist: &str,
    state: &State,
    problems: &mut Vec<Problem>,
) -> Result<BTreeSet<String>> {
    let mut missing = BTreeSet::new();
    for (rel, f) in &state.files {
        let (path, what) = if f.blob.is_empty() {
            (
                retire::alias_path(dist, rel, &f.sha256),
                "its by-hash alias",
            )
        } else {
            (BlobPath::from(f.blob.as_str()), "its by-hash file")
        };
        match cx.blobs.head(&path).await {
            Ok(meta) if !f.blob.is_empty() && meta.size != f.size => problems.push(Problem::new(
                format!("dists/{dist}/{rel}"),
                format!(
                    "Release lists {} bytes; {what} {path} has {}.",
                    f.size, meta.size
                ),
            )),
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                missing.insert(
                    rel.trim_end_matches(".gz")
                        .trim_end_matches(".xz")
                        .to_owned(),
                );
                problems.push(Problem::new(
                    format!("dists/{dist}/{rel}"),
                    format!("Release lists it, but {what} {path} is missing."),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(missing)
}

/// Each `Packages` lists exactly the dist's packages of its component and architecture, each
/// with the SHA-256 of its record.
async fn packages(
    cx: &RepoContext,
    dist: &str,
    state: &State,
    records: &[&FileRecord],
    missing: &BTreeSet<String>,
    node: &Node,
    problems: &mut Vec<Problem>,
) {
    for rel in state.files.keys() {
        let Some((comp, arch)) = packages_index(rel) else {
            continue;
        };
        if missing.contains(rel) {
            continue;
        }
        let Ok(text) = node.plain.plain(cx, state, rel).await else {
            problems.push(Problem::new(
                format!("dists/{dist}/{rel}"),
                "The index cannot be read.",
            ));
            continue;
        };
        let listed = listed(&String::from_utf8_lossy(&text));
        let expected: BTreeMap<&str, &str> = records
            .iter()
            .filter(|r| index::belongs(r, comp, arch))
            .map(|r| (r.path.as_str(), r.sha256.as_str()))
            .collect();
        for (path, sha) in &expected {
            match listed.get(*path) {
                None => problems.push(Problem::new(
                    format!("dists/{dist}/{rel}"),
                    format!("{path} is in the catalog but not in the index."),
                )),
                Some(l) if l != sha => problems.push(Problem::new(
                    format!("dists/{dist}/{rel}"),
                    format!("{path} is listed with SHA256 {l}; the catalog has {sha}."),
                )),
                Some(_) => {}
            }
        }
        for path in listed.keys() {
            if !expected.contains_key(path.as_str()) {
                problems.push(Problem::new(
                    format!("dists/{dist}/{rel}"),
                    format!("{path} is in the index but not in the catalog."),
                ));
            }
        }
    }
}

/// `(component, architecture)` of a `COMP/binary-ARCH/Packages` path.
fn packages_index(rel: &str) -> Option<(&str, &str)> {
    let (comp, rest) = rel.split_once("/binary-")?;
    let arch = rest.strip_suffix("/Packages")?;
    Some((comp, arch))
}

/// `Filename → SHA256` of every stanza of a `Packages` text.
pub(crate) fn listed(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        if let (Some(f), Some(s)) = (field("Filename:"), field("SHA256:")) {
            out.insert(f, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_texts_are_read_by_filename() {
        assert_eq!(
            packages_index("main/binary-amd64/Packages"),
            Some(("main", "amd64"))
        );
        assert_eq!(packages_index("main/binary-amd64/Packages.gz"), None);
        assert_eq!(packages_index("main/source/Sources"), None);
        let text = "Package: a\nFilename: pool/main/a/a_1_all.deb\nSHA256: aa\n\nPackage: b\nFilename: pool/main/b/b_1_all.deb\nSize: 1\nSHA256: bb\n";
        let l = listed(text);
        assert_eq!(l.len(), 2);
        assert_eq!(l["pool/main/b/b_1_all.deb"], "bb");
    }
}
