//! Retention: which versions of each package a repo keeps, by its settings `keep_last`,
//! `keep_min_age` and `pins`. The plan is a pure function of the records, the settings, the
//! blobs snapshots hold and the time, so it is tested with tables; the host applies it after an
//! upload (to the packages the upload touched) and in `artifactd gc` (to every hosted repo).
//!
//! Versions are counted per scope (a dist), package key and the provider's retention group
//! (APT: the architecture) and ordered by the provider's version order, or by upload time
//! where it has none. The newest `keep_last` stay; an older one goes unless it is pinned, is
//! younger than `keep_min_age`, or has a file a snapshot holds. A kept record keeps the records
//! it needs (a Debian source package's upstream tarball, shared by its revisions).

use std::collections::{BTreeMap, HashSet};

use artifactd_plugin_api::{FileRecord, Provider, RepoSettings};

/// The records retention removes from `records` (one repo's) at `now_ms`; empty when the repo
/// sets no `keep_last`. With `only`, only packages with one of those (scope, key) pairs are
/// looked at.
pub fn plan(
    records: &[FileRecord],
    settings: &RepoSettings,
    provider: &dyn Provider,
    held: &HashSet<String>,
    now_ms: i64,
    only: Option<&[(String, String)]>,
) -> Vec<FileRecord> {
    let Some(keep_last) = settings.keep_last else {
        return Vec::new();
    };
    let keep_last = usize::try_from(keep_last).unwrap_or(usize::MAX);
    let young_after = settings
        .keep_min_age
        .map(|s| now_ms.saturating_sub(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)));
    // (scope, key, group) → version → its records.
    type Versions<'a> = BTreeMap<&'a str, Vec<&'a FileRecord>>;
    let mut packages: BTreeMap<(&str, &str, String), Versions<'_>> = BTreeMap::new();
    for r in records {
        if only.is_some_and(|o| !o.iter().any(|(s, k)| *s == r.scope && *k == r.key)) {
            continue;
        }
        let group = provider.retention_unit(r).group;
        packages
            .entry((r.scope.as_str(), r.key.as_str(), group))
            .or_default()
            .entry(r.version.as_str())
            .or_default()
            .push(r);
    }
    let mut doomed: Vec<&FileRecord> = Vec::new();
    for ((_, key, _), versions) in &packages {
        let newest = |v: &[&FileRecord]| v.iter().map(|r| r.uploaded_at).max().unwrap_or(0);
        let mut order: Vec<(&str, &Vec<&FileRecord>)> =
            versions.iter().map(|(v, rs)| (*v, rs)).collect();
        // Newest first.
        order.sort_by(|(a, ra), (b, rb)| {
            provider
                .compare_versions(b, a)
                .filter(|o| o.is_ne())
                .unwrap_or_else(|| newest(rb).cmp(&newest(ra)))
                .then_with(|| b.cmp(a))
        });
        for (version, files) in order.into_iter().skip(keep_last) {
            let pinned = settings.pins.get(*key).is_some_and(|p| p.contains(version));
            let young = young_after.is_some_and(|t| newest(files) > t);
            let snapshotted = files.iter().any(|r| held.contains(&r.sha256));
            if !pinned && !young && !snapshotted {
                doomed.extend(files.iter().copied());
            }
        }
    }
    if doomed.is_empty() {
        return Vec::new();
    }
    let gone: HashSet<(&str, &str)> = doomed
        .iter()
        .map(|r| (r.scope.as_str(), r.path.as_str()))
        .collect();
    // What the records that stay need, stays too.
    let mut needed: HashSet<(String, String)> = HashSet::new();
    for r in records {
        if !gone.contains(&(r.scope.as_str(), r.path.as_str())) {
            for path in provider.retention_unit(r).needs {
                needed.insert((r.scope.clone(), path));
            }
        }
    }
    let mut out: Vec<FileRecord> = doomed
        .into_iter()
        .filter(|r| !needed.contains(&(r.scope.clone(), r.path.clone())))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.scope.cmp(&b.scope).then_with(|| a.path.cmp(&b.path)));
    out
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;
    use artifactd_plugin_api::{
        IndexScope, NewRecord, RepoContext, Result, RetentionUnit, ServeRequest, ServeResponse,
        UploadOutcome, UploadRequest, async_trait,
    };

    /// Versions are numbers; the group is the record's `arch` meta; `needs` its `needs` meta.
    #[derive(Debug)]
    struct Numbers;

    #[async_trait]
    impl Provider for Numbers {
        fn kind(&self) -> &'static str {
            "numbers"
        }
        fn retention_unit(&self, r: &FileRecord) -> RetentionUnit {
            let meta = |k: &str| r.meta.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            let needs = Some(meta("needs").to_owned()).filter(|n| !n.is_empty());
            RetentionUnit::new(meta("arch"), needs.into_iter().collect())
        }
        fn compare_versions(&self, a: &str, b: &str) -> Option<Ordering> {
            Some(a.parse::<u32>().ok()?.cmp(&b.parse::<u32>().ok()?))
        }
        async fn upload(&self, _: &RepoContext, _: UploadRequest) -> Result<UploadOutcome> {
            Err(artifactd_plugin_api::Error::not_found("no"))
        }
        async fn index(&self, _: &RepoContext, _: IndexScope) -> Result<()> {
            Ok(())
        }
        async fn serve(&self, _: &RepoContext, _: ServeRequest) -> Result<ServeResponse> {
            Err(artifactd_plugin_api::Error::not_found("no"))
        }
    }

    const DAY: i64 = 86_400_000;

    /// `key version arch [needs]`, uploaded `age_days` before day 100.
    fn rec(scope: &str, key: &str, version: &str, arch: &str, age_days: i64) -> FileRecord {
        let path = format!("{key}_{version}_{arch}");
        let new = NewRecord::new(&path, key, key, version, 1, format!("sha-{path}"))
            .with_scope(scope)
            .with_meta(serde_json::json!({ "arch": arch }));
        FileRecord::stored(new, 100 * DAY - age_days * DAY, "t".into(), None)
    }

    fn paths(v: &[FileRecord]) -> Vec<String> {
        v.iter().map(|r| r.path.clone()).collect()
    }

    fn settings(keep_last: u32) -> RepoSettings {
        let mut s = RepoSettings::default();
        s.keep_last = Some(keep_last);
        s
    }

    #[test]
    fn keeps_the_newest_versions_per_package_group_and_scope() {
        let records = vec![
            rec("d", "a", "1", "amd64", 30),
            rec("d", "a", "10", "amd64", 40), // newest by version, though uploaded earlier
            rec("d", "a", "2", "amd64", 20),
            rec("d", "a", "1", "arm64", 30),
            rec("e", "a", "1", "amd64", 30),
            rec("d", "b", "1", "amd64", 30),
        ];
        let now = 100 * DAY;
        let none = HashSet::new();
        assert!(
            plan(
                &records,
                &RepoSettings::default(),
                &Numbers,
                &none,
                now,
                None
            )
            .is_empty()
        );
        let out = plan(&records, &settings(2), &Numbers, &none, now, None);
        assert_eq!(paths(&out), ["a_1_amd64"]);
        let out = plan(&records, &settings(1), &Numbers, &none, now, None);
        assert_eq!(paths(&out), ["a_1_amd64", "a_2_amd64"]);
        let only = [("d".to_owned(), "b".to_owned())];
        assert!(plan(&records, &settings(1), &Numbers, &none, now, Some(&only)).is_empty());
    }

    #[test]
    fn pins_young_versions_and_snapshots_keep_what_would_go() {
        let records = vec![
            rec("d", "a", "1", "amd64", 30),
            rec("d", "a", "2", "amd64", 5),
            rec("d", "a", "3", "amd64", 1),
            rec("d", "a", "4", "amd64", 0),
        ];
        let now = 100 * DAY;
        let none = HashSet::new();
        let mut s = settings(1);
        s.keep_min_age = Some(7 * 86_400);
        assert_eq!(
            paths(&plan(&records, &s, &Numbers, &none, now, None)),
            ["a_1_amd64"]
        );
        s.keep_min_age = None;
        s.pins.entry("a".into()).or_default().insert("2".into());
        assert_eq!(
            paths(&plan(&records, &s, &Numbers, &none, now, None)),
            ["a_1_amd64", "a_3_amd64"]
        );
        let held: HashSet<String> = ["sha-a_1_amd64".to_owned()].into();
        assert_eq!(
            paths(&plan(&records, &s, &Numbers, &held, now, None)),
            ["a_3_amd64"]
        );
    }

    #[test]
    fn a_kept_record_keeps_what_it_needs() {
        let mut orig = rec("d", "s", "1", "source", 30);
        orig.path = "s_orig".into();
        let mut next = rec("d", "s", "2", "source", 10);
        next.meta = serde_json::json!({ "arch": "source", "needs": "s_orig" });
        let records = vec![orig, rec("d", "s", "1", "source", 30), next];
        let out = plan(
            &records,
            &settings(1),
            &Numbers,
            &HashSet::new(),
            100 * DAY,
            None,
        );
        assert_eq!(paths(&out), ["s_1_source"], "the shared tarball stays");
    }
}
