//! What a proxy or virtual repo lets through, decided in one place: a pure function from the
//! members' listings, the settings and the time to the listing served.
//!
//! - Dependency confusion: when a hosted member has a project, the proxy members' files of that
//!   name are hidden, unless the name is allowed to merge (`allow_upstream`); then both are
//!   served and the listing names the other locations (PEP 708 `alternate-locations`).
//! - Cooldown (`min_age`): upstream files younger than that are hidden, and so are upstream files
//!   without an upload time (fail closed); names may be exempted (`min_age_exempt`).
//! - Block list: project names and `name==version` an upstream is never served for.
//! - The first member that has a file name wins.
//! - Project status (PEP 792): the repo's own mark wins, then the member's own, then what its
//!   upstream says; a quarantined project is served with no files. A quarantined hosted project
//!   still hides the upstream's files of its name.

use std::collections::HashSet;

use artifactd_plugin_api::{ListedFile, Listing, ProjectStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The policy settings of a proxy or virtual repo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Upstream files younger than this (seconds) are hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age_secs: Option<u64>,
    /// Projects the cooldown does not apply to (normalized names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub min_age_exempt: Vec<String>,
    /// `name` or `name==version` (normalized names) an upstream is never served for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<String>,
    /// A virtual repo's projects whose upstream files merge with hosted ones (normalized).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_upstream: Vec<String>,
    /// A virtual repo's member that uploads go to (default: its first hosted member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_to: Option<String>,
}

/// Whether a member serves its own files or an upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Uploaded here.
    Hosted,
    /// Fetched from an upstream.
    Upstream,
}

/// One member's view of a project.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// The member repo's name.
    pub name: &'a str,
    /// Hosted or proxy.
    pub origin: Origin,
    /// Its listing of the project, if it has one.
    pub listing: Option<&'a Listing>,
    /// The member's own policy (a proxy's cooldown and block list apply inside a virtual too).
    pub policy: &'a Policy,
    /// Where the member's page of the project is (for PEP 708).
    pub page_url: String,
    /// The status the member's administrator gave the project, if any.
    pub status: Option<&'a ProjectStatus>,
}

impl Member<'_> {
    /// The project's status in this member: its own mark, else its listing's.
    fn status(&self) -> Option<&ProjectStatus> {
        self.status
            .or_else(|| self.listing.and_then(|l| l.status.as_ref()))
    }
}

/// Why a file is not served, for the UI and the 404's sentence.
pub fn blocked_reason(
    policy: &Policy,
    project: &str,
    file: &ListedFile,
    now: i64,
) -> Option<String> {
    if policy
        .block
        .iter()
        .any(|b| b == project || *b == format!("{project}=={}", file.version))
    {
        return Some(format!(
            "{project} {} is on this repo's block list",
            file.version
        ));
    }
    let min_age = policy.min_age_secs?;
    if policy.min_age_exempt.iter().any(|e| e == project) {
        return None;
    }
    let min_ms = i64::try_from(min_age.saturating_mul(1000)).unwrap_or(i64::MAX);
    match file.uploaded_at {
        None => Some(format!(
            "{} has no upload time, and this repo hides upstream files younger than {min_age} s",
            file.filename
        )),
        Some(at) if now.saturating_sub(at) < min_ms => Some(format!(
            "{} was uploaded less than {min_age} s ago (the repo's min_age)",
            file.filename
        )),
        Some(_) => None,
    }
}

/// A file a member lists that the merged listing leaves out, and why (for the web UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hidden {
    /// The member that lists it.
    pub member: String,
    /// The file.
    pub filename: String,
    /// Its version.
    pub version: String,
    /// Why it is not served.
    pub reason: String,
}

/// The listing a repo with `policy` (and its own status mark `own`) serves for `project` from
/// its `members` at `now` (ms); `None` when no member has the project.
pub fn merge(
    project: &str,
    members: &[Member<'_>],
    policy: &Policy,
    own: Option<&ProjectStatus>,
    now: i64,
) -> Option<Listing> {
    merge_explained(project, members, policy, own, now).map(|(l, _)| l)
}

/// [`merge`], with the files it leaves out and why.
pub fn merge_explained(
    project: &str,
    members: &[Member<'_>],
    policy: &Policy,
    own: Option<&ProjectStatus>,
    now: i64,
) -> Option<(Listing, Vec<Hidden>)> {
    if members.iter().all(|m| m.listing.is_none()) {
        return None;
    }
    let hosted_has = members
        .iter()
        .any(|m| m.origin == Origin::Hosted && m.listing.is_some_and(|l| !l.files.is_empty()));
    let merge_upstream = policy.allow_upstream.iter().any(|a| a == project);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut files = Vec::new();
    let mut hidden = Vec::new();
    let mut sources = Vec::new();
    let mut name = None;
    let mut meta = Value::Null;
    let mut status = own.cloned();
    for m in members {
        let Some(listing) = m.listing else { continue };
        let hide_all = |why: &str, hidden: &mut Vec<Hidden>| {
            hidden.extend(listing.files.iter().map(|f| Hidden {
                member: m.name.to_owned(),
                filename: f.filename.clone(),
                version: f.version.clone(),
                reason: why.to_owned(),
            }));
        };
        if m.origin == Origin::Upstream && hosted_has && !merge_upstream {
            hide_all(
                &format!(
                    "a hosted member has {project}, so the upstream's files of that name are hidden (allow_upstream merges them)"
                ),
                &mut hidden,
            );
            continue;
        }
        if status.is_none() {
            status = m.status().cloned();
        }
        if m.status().is_some_and(|s| s.status.hides_files()) {
            name.get_or_insert_with(|| listing.name.clone());
            hide_all(
                &format!("{project} is quarantined in {}", m.name),
                &mut hidden,
            );
            continue;
        }
        let mut took = false;
        for f in &listing.files {
            if seen.contains(f.filename.as_str()) {
                continue;
            }
            if m.origin == Origin::Upstream
                && let Some(why) = blocked_reason(m.policy, project, f, now)
                    .or_else(|| blocked_reason(policy, project, f, now))
            {
                hidden.push(Hidden {
                    member: m.name.to_owned(),
                    filename: f.filename.clone(),
                    version: f.version.clone(),
                    reason: why,
                });
                continue;
            }
            seen.insert(&f.filename);
            let mut f = f.clone();
            f.origin = Some(m.name.to_owned());
            files.push(f);
            took = true;
        }
        if took {
            sources.push(m.page_url.clone());
            name.get_or_insert_with(|| listing.name.clone());
            if meta.is_null() {
                meta = listing.meta.clone();
            }
        }
    }
    if status.as_ref().is_some_and(|s| s.status.hides_files()) {
        hidden.extend(files.drain(..).map(|f| Hidden {
            member: f.origin.clone().unwrap_or_default(),
            filename: f.filename,
            version: f.version,
            reason: format!("{project} is quarantined in this repo"),
        }));
        sources.clear();
    }
    let mut out = Listing::new(name.unwrap_or_else(|| project.to_owned()), files);
    out.status = status;
    if sources.len() > 1 {
        // PEP 708: the project is served from more than one place on purpose.
        if !meta.is_object() {
            meta = json!({});
        }
        meta["alternate-locations"] = json!(sources);
    }
    out.meta = meta;
    Some((out, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn file(name: &str, version: &str, at: Option<i64>) -> ListedFile {
        let mut f = ListedFile::new(format!("{name}-{version}.tar.gz"), version, "u");
        f.uploaded_at = at;
        f
    }

    fn listing(files: Vec<ListedFile>) -> Listing {
        Listing::new("team-lib", files)
    }

    #[test]
    fn hosted_names_hide_the_upstreams_unless_allowed() {
        let none = Policy::default();
        let hosted = listing(vec![file("team_lib", "1.0", Some(0))]);
        let public = listing(vec![file("team_lib", "99.0", Some(0))]);
        fn members<'a>(
            h: Option<&'a Listing>,
            public: &'a Listing,
            none: &'a Policy,
        ) -> Vec<Member<'a>> {
            vec![
                Member {
                    name: "team",
                    origin: Origin::Hosted,
                    listing: h,
                    policy: none,
                    page_url: "h".into(),
                    status: None,
                },
                Member {
                    name: "pypi",
                    origin: Origin::Upstream,
                    listing: Some(public),
                    policy: none,
                    page_url: "p".into(),
                    status: None,
                },
            ]
        }
        let got = merge(
            "team-lib",
            &members(Some(&hosted), &public, &none),
            &none,
            None,
            10 * DAY,
        )
        .unwrap();
        let versions: Vec<&str> = got.files.iter().map(|f| f.version.as_str()).collect();
        assert_eq!(versions, ["1.0"], "dependency confusion");
        assert_eq!(got.files[0].origin.as_deref(), Some("team"));
        assert!(got.meta.get("alternate-locations").is_none());
        // Not hosted: the upstream's files.
        let got = merge(
            "team-lib",
            &members(None, &public, &none),
            &none,
            None,
            10 * DAY,
        )
        .unwrap();
        assert_eq!(got.files[0].version, "99.0");
        // Allow-listed: both, with PEP 708 metadata.
        let allow = Policy {
            allow_upstream: vec!["team-lib".into()],
            ..Policy::default()
        };
        let got = merge(
            "team-lib",
            &members(Some(&hosted), &public, &none),
            &allow,
            None,
            10 * DAY,
        )
        .unwrap();
        assert_eq!(got.files.len(), 2);
        assert_eq!(got.meta["alternate-locations"], json!(["h", "p"]));
        assert!(merge("other", &[], &none, None, 0).is_none());
    }

    #[test]
    fn cooldown_and_block_list_hide_upstream_files() {
        let now = 20 * DAY;
        let up = listing(vec![
            file("team_lib", "1.0", Some(now - 10 * DAY)),
            file("team_lib", "2.0", Some(now - DAY)),
            file("team_lib", "3.0", None),
        ]);
        let cool = Policy {
            min_age_secs: Some(7 * 86_400),
            ..Policy::default()
        };
        let none = Policy::default();
        let members = [Member {
            name: "pypi",
            origin: Origin::Upstream,
            listing: Some(&up),
            policy: &none,
            page_url: "p".into(),
            status: None,
        }];
        let got = merge("team-lib", &members, &cool, None, now).unwrap();
        let versions: Vec<&str> = got.files.iter().map(|f| f.version.as_str()).collect();
        assert_eq!(
            versions,
            ["1.0"],
            "10 days old only; no upload time is hidden"
        );
        let exempt = Policy {
            min_age_exempt: vec!["team-lib".into()],
            ..cool.clone()
        };
        assert_eq!(
            merge("team-lib", &members, &exempt, None, now)
                .unwrap()
                .files
                .len(),
            3
        );
        let block = Policy {
            block: vec!["team-lib==1.0".into()],
            ..Policy::default()
        };
        let got = merge("team-lib", &members, &block, None, now).unwrap();
        assert!(got.files.iter().all(|f| f.version != "1.0"));
        let block_all = Policy {
            block: vec!["team-lib".into()],
            ..Policy::default()
        };
        assert!(
            merge("team-lib", &members, &block_all, None, now)
                .unwrap()
                .files
                .is_empty()
        );
        assert!(
            blocked_reason(&block_all, "team-lib", &up.files[0], now)
                .unwrap()
                .contains("block list")
        );
    }
}
