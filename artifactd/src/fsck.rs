//! `artifactd fsck`: checks the repos ([`crate::http::AppState::check_repos`]) and the blob
//! store (no blob without a reference beyond the grace period), prints each problem with its
//! repo and path, and with `--repair` repairs what can be and checks again.

use std::time::Duration;

use crate::config::Config;
use crate::server::ServerBuilder;

/// One problem: the repo (`apt/R`, empty for the blob store), the path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `provider/name`, or empty for the blob store.
    pub repo: String,
    /// Below the repo mount, or the blob's key.
    pub path: String,
    /// One sentence.
    pub message: String,
}

impl Finding {
    /// A finding in `repo` at `path`.
    pub fn new(repo: &str, path: &str, message: &str) -> Self {
        Self {
            repo: repo.to_owned(),
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let repo = if self.repo.is_empty() {
            "storage"
        } else {
            &self.repo
        };
        write!(f, "{repo} {}: {}", self.path, self.message)
    }
}

/// What `fsck` found and did; `clean` when nothing is (left) wrong.
#[derive(Debug)]
pub struct Outcome {
    /// The report, one line each.
    pub report: String,
    /// No problem is left.
    pub clean: bool,
}

/// Runs the check (and the repair).
///
/// # Errors
/// Start-up, database and storage failures.
pub async fn run(
    builder: ServerBuilder,
    config: Config,
    deep: bool,
    repair: bool,
    grace_secs: u64,
) -> Result<Outcome, Box<dyn std::error::Error + Send + Sync>> {
    let state = builder.build_state(config).await?;
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(Duration::from_secs(grace_secs))?;
    let orphans = || async {
        let found: Vec<Finding> = state
            .unreferenced_blobs(cutoff)
            .await?
            .into_iter()
            .map(|(sha, size)| {
                Finding::new(
                    "",
                    crate::storage::StorageKey::Content(&sha).path().as_ref(),
                    &format!(
                        "No record, snapshot, cache entry or staged upload refers to this blob ({size} bytes); `artifactd gc` removes it."
                    ),
                )
            })
            .collect();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(found)
    };
    let (mut found, repaired) = state.check_repos(deep, repair).await?;
    found.extend(orphans().await?);
    let mut report = String::new();
    for f in &found {
        report.push_str(&format!("{f}\n"));
    }
    let mut left = found.len();
    if repair {
        for r in &repaired {
            report.push_str(&format!("repaired: {r}\n"));
        }
        let (mut again, _) = state.check_repos(deep, false).await?;
        again.extend(orphans().await?);
        for f in &again {
            report.push_str(&format!("left: {f}\n"));
        }
        left = again.len();
    }
    report.push_str(&match (found.len(), left) {
        (0, _) => "fsck: no problem found".to_owned(),
        (n, 0) => format!("fsck: {n} problem(s) found, all repaired"),
        (n, l) if repair => format!("fsck: {n} problem(s) found, {l} left after the repair"),
        (n, _) => format!("fsck: {n} problem(s) found"),
    });
    Ok(Outcome {
        report,
        clean: left == 0,
    })
}
