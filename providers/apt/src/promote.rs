//! The repo's API calls (`POST /repo/apt/<repo>/<call>` with a JSON body): taking and removing
//! snapshots, and promoting packages from a dist or a snapshot to a dist without re-uploading them.
//!
//! Promotion copies records (the pool files stay where they are: a path holds one content
//! across dists); the host republishes once when the call succeeds, so clients see the
//! promoted set appear in one `InRelease` switch. From a dist, the chosen packages are added
//! to the target; from a snapshot, the target takes the snapshot's versions of the chosen
//! packages (of all its packages when none are named) and loses its other versions of them:
//! that is how a dist rolls back.

use std::collections::{HashMap, HashSet};

use artifactd_plugin_api::http::StatusCode;
use artifactd_plugin_api::serde::Deserialize;
use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::{
    Error, FileRecord, ListQuery, NewRecord, RepoContext, Result, ServeResponse,
};

use crate::{AptProvider, snapshot, valid_segment};

#[derive(Debug, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde", deny_unknown_fields)]
struct SnapshotCall {
    dist: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde", deny_unknown_fields)]
struct PromoteCall {
    from: String,
    to: String,
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
}

/// `name` or `name=version`.
#[derive(Debug, PartialEq, Eq)]
struct Pick {
    name: String,
    version: Option<String>,
}

impl Pick {
    fn parse(s: &str) -> Result<Self> {
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (s, None),
        };
        if !crate::valid_package_name(name)
            || version.as_deref().is_some_and(|v| !crate::valid_version(v))
        {
            return Err(Error::invalid(format!(
                "{s:?} is not a package name, or a name=version, that Debian allows."
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            version,
        })
    }

    fn matches(&self, r: &FileRecord) -> bool {
        r.name == self.name && self.version.as_ref().is_none_or(|v| *v == r.version)
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("The {what} call takes a JSON object: {e}.")))
}

fn check_dist(what: &str, dist: &str) -> Result<()> {
    if valid_segment(dist) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid {what} {dist:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit."
        )))
    }
}

fn json_response(status: StatusCode, v: &Value) -> Result<ServeResponse> {
    Ok(ServeResponse::bytes(
        "application/json",
        serde_json::to_vec(v).map_err(|e| Error::internal("response", e))?,
    )
    .with_status(status))
}

impl AptProvider {
    /// `POST snapshots`: `{"dist": D, "name": N}`.
    pub(crate) async fn call_snapshot(
        &self,
        cx: &RepoContext,
        body: &[u8],
    ) -> Result<ServeResponse> {
        let call: SnapshotCall = parse_body(body, "snapshot")?;
        check_dist("dist", &call.dist)?;
        check_dist("snapshot name", &call.name)?;
        let snap = snapshot::create(cx, &call.dist, &call.name, false, &self.node).await?;
        json_response(
            StatusCode::CREATED,
            &json!({
                "name": snap.name,
                "dist": snap.dist,
                "files": snap.files.len(),
                "url": format!("{}snapshots/{}/", cx.base_url, snap.name),
            }),
        )
    }

    /// `POST snapshots/remove`: `{"dist": D, "name": N}`.
    pub(crate) async fn call_remove_snapshot(
        &self,
        cx: &RepoContext,
        body: &[u8],
    ) -> Result<ServeResponse> {
        let call: SnapshotCall = parse_body(body, "snapshot removal")?;
        check_dist("dist", &call.dist)?;
        check_dist("snapshot name", &call.name)?;
        snapshot::remove(cx, &call.dist, &call.name, &self.snapshots).await?;
        json_response(
            StatusCode::OK,
            &json!({ "removed": { "name": call.name, "dist": call.dist } }),
        )
    }

    /// `POST promote`: `{"from": D, "to": D, "snapshot": N?, "packages": ["p", "p=v"]}`.
    pub(crate) async fn call_promote(
        &self,
        cx: &RepoContext,
        body: &[u8],
    ) -> Result<ServeResponse> {
        let call: PromoteCall = parse_body(body, "promote")?;
        check_dist("from dist", &call.from)?;
        check_dist("to dist", &call.to)?;
        let picks = call
            .packages
            .iter()
            .map(|p| Pick::parse(p))
            .collect::<Result<Vec<_>>>()?;
        // With picks, only their packages are read, in both dists.
        let names: Option<Vec<String>> =
            (!picks.is_empty()).then(|| picks.iter().map(|p| p.name.clone()).collect());
        let scoped = |dist: &str| match &names {
            Some(n) => ListQuery::keys(n.clone()).in_scope(dist),
            None => ListQuery::all().in_scope(dist),
        };
        let (source, replace) = match &call.snapshot {
            Some(name) => {
                let all = self.snapshots.names(cx).await?;
                let found = snapshot::resolve(&all, name, &call.from).ok_or_else(|| {
                    Error::not_found(format!(
                        "There is no snapshot {name:?} of dist {:?}.",
                        call.from
                    ))
                })?;
                (
                    self.snapshots
                        .get(cx, found, &call.from)
                        .await?
                        .records(cx, names.clone())
                        .await?,
                    true,
                )
            }
            None => {
                if call.from == call.to {
                    return Err(Error::invalid("A dist cannot be promoted to itself."));
                }
                (cx.catalog.list(scoped(&call.from)).await?, false)
            }
        };
        // Picks by name, so that choosing is one lookup per record.
        let mut by_name: HashMap<&str, Vec<&Pick>> = HashMap::new();
        for p in &picks {
            by_name.entry(p.name.as_str()).or_default().push(p);
        }
        let chosen: Vec<FileRecord> = source
            .into_iter()
            .filter(|r| {
                picks.is_empty()
                    || by_name
                        .get(r.name.as_str())
                        .is_some_and(|ps| ps.iter().any(|p| p.matches(r)))
            })
            .collect();
        let chosen_versions: HashSet<(&str, &str)> = chosen
            .iter()
            .map(|r| (r.name.as_str(), r.version.as_str()))
            .collect();
        let chosen_names: HashSet<&str> = chosen_versions.iter().map(|(n, _)| *n).collect();
        for p in &picks {
            let found = match &p.version {
                Some(v) => chosen_versions.contains(&(p.name.as_str(), v.as_str())),
                None => chosen_names.contains(p.name.as_str()),
            };
            if !found {
                return Err(Error::not_found(format!(
                    "No package in {} matches {}{}.",
                    call.snapshot.as_ref().map_or_else(
                        || format!("dist {:?}", call.from),
                        |s| format!("snapshot {s:?} of dist {:?}", call.from)
                    ),
                    p.name,
                    p.version
                        .as_ref()
                        .map(|v| format!("={v}"))
                        .unwrap_or_default()
                )));
            }
        }
        if chosen.is_empty() {
            return Err(Error::not_found(format!(
                "Dist {:?} has no packages to promote.",
                call.from
            )));
        }
        // Without picks every package of the target may be replaced or dropped; with picks,
        // only theirs.
        let target = cx.catalog.list(scoped(&call.to)).await?;
        let in_target: HashMap<&str, &str> = target
            .iter()
            .map(|t| (t.path.as_str(), t.sha256.as_str()))
            .collect();
        // Everything is checked before anything changes.
        if !cx.settings.overwrite {
            for r in &chosen {
                if in_target
                    .get(r.path.as_str())
                    .is_some_and(|sha| *sha != r.sha256)
                {
                    return Err(Error::Conflict(format!(
                        "File already exists: {} is in dist {:?} with different content.",
                        r.path, call.to
                    )));
                }
            }
        }
        let keep: HashMap<&str, &str> = chosen
            .iter()
            .map(|r| (r.path.as_str(), r.sha256.as_str()))
            .collect();
        let mut remove = Vec::new();
        let mut removed = 0;
        for t in &target {
            let dropped = replace
                && !keep.contains_key(t.path.as_str())
                && (picks.is_empty() || chosen_names.contains(t.name.as_str()));
            let replaced = keep
                .get(t.path.as_str())
                .is_some_and(|sha| *sha != t.sha256);
            if dropped {
                removed += 1;
            }
            if dropped || replaced {
                remove.push((call.to.clone(), t.path.clone()));
            }
        }
        let insert: Vec<NewRecord> = chosen
            .iter()
            .filter(|r| in_target.get(r.path.as_str()) != Some(&r.sha256.as_str()))
            .map(|r| {
                NewRecord::new(&r.path, &r.name, &r.key, &r.version, r.size, &r.sha256)
                    .with_scope(&call.to)
                    .with_meta(r.meta.clone())
            })
            .collect();
        let promoted = insert.len();
        // One transaction: the next publish lists all of it or none.
        cx.catalog.apply(&remove, insert).await?;
        json_response(
            StatusCode::OK,
            &json!({ "from": call.from, "to": call.to, "snapshot": call.snapshot,
                     "promoted": promoted, "removed": removed, "listed": chosen.len() }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_names_or_name_version() {
        assert_eq!(
            Pick::parse("hello=1.0-1").expect("ok"),
            Pick {
                name: "hello".into(),
                version: Some("1.0-1".into())
            }
        );
        assert_eq!(Pick::parse("hello").expect("ok").version, None);
        assert!(Pick::parse("Hello World").is_err());
        assert!(Pick::parse("hello=").is_err());
    }
}
