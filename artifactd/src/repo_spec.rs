//! A repo as declared: provider, name, kind, a proxy's upstream, a virtual's members, settings.
//! The JSON API's `POST /repos` and the `--repos-file` given at start declare repos the same
//! way; both are checked here once, and the file is applied so that applying it again changes
//! nothing.

use std::path::Path;

use artifactd_plugin_api::{Registry, RepoSettings};
use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _, Set};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::db::entities::repo;
use crate::db::{Db, settings_of};
use crate::proxy::{KIND, RepoConfig, Upstream, VIRTUAL};

/// One declared repo.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// The provider, e.g. `pypi`.
    pub provider: String,
    /// The repo's name.
    pub name: String,
    /// `hosted` (the default), `proxy` or `virtual`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A proxy's upstream.
    #[serde(default)]
    pub upstream: Option<Value>,
    /// A virtual repo's members, in order.
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// Settings, as the settings API takes them.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// Why a declaration cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A sentence for a 400.
    #[error("{0}")]
    Invalid(String),
    /// An unknown provider.
    #[error(transparent)]
    Registry(#[from] artifactd_plugin_api::RegistryError),
    /// The database.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

fn invalid(s: impl Into<String>) -> SpecError {
    SpecError::Invalid(s.into())
}

/// A checked declaration: what the repo row will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The kind.
    pub kind: String,
    /// The kind's configuration.
    pub config: RepoConfig,
    /// The settings.
    pub settings: RepoSettings,
}

/// Applies a settings patch (`overwrite`: deny|allow, `private`, `delete_empty`).
///
/// # Errors
/// The sentence for an unknown setting or value.
pub fn apply_settings(
    settings: &mut RepoSettings,
    patch: &Map<String, Value>,
) -> Result<(), String> {
    for (k, v) in patch {
        match (k.as_str(), v) {
            ("overwrite", Value::String(s)) if s == "allow" || s == "deny" => {
                settings.overwrite = s == "allow";
            }
            ("private", Value::Bool(b)) => settings.private = *b,
            ("delete_empty", Value::Bool(b)) => settings.delete_empty = *b,
            ("auto_snapshot", Value::Bool(b)) => settings.auto_snapshot = *b,
            ("keep_last", Value::Null) => settings.keep_last = None,
            ("keep_last", Value::Number(n))
                if n.as_u64()
                    .is_some_and(|n| (1..=u64::from(u32::MAX)).contains(&n)) =>
            {
                settings.keep_last = n.as_u64().and_then(|n| u32::try_from(n).ok());
            }
            ("uploaders", Value::Null) => settings.uploaders = None,
            ("uploaders", Value::String(armored)) => {
                crate::keyring::Keyring::parse(armored).map_err(|e| format!("uploaders: {e}"))?;
                settings.uploaders = Some(armored.clone());
            }
            ("keep_min_age", Value::Null) => settings.keep_min_age = None,
            ("keep_min_age", Value::String(d)) => {
                settings.keep_min_age = Some(
                    crate::proxy::parse_duration(d)
                        .ok_or(format!(
                            "keep_min_age {d:?} is not a duration such as 12h or 30d."
                        ))?
                        .as_secs(),
                );
            }
            _ => {
                return Err(format!(
                    "Unknown setting or value {k:?}: use overwrite (\"deny\" or \"allow\"), private (true/false), delete_empty (true/false), auto_snapshot (true/false, APT), keep_last (a number of versions, or null), keep_min_age (a duration such as 30d, or null), pins, uploaders (armored public keys that must sign a .changes, or null), project_status, and for proxy and virtual repos min_age, min_age_exempt, block, allow_upstream, upload_to."
                ));
            }
        }
    }
    Ok(())
}

/// The `pins` setting: `["name=version", …]`, the versions retention never removes.
fn parse_pins(
    v: &Value,
    key_of: &dyn Fn(&str) -> String,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>, String> {
    let bad =
        || "pins is a list of \"name=version\" strings, the versions retention keeps.".to_owned();
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for item in v.as_array().ok_or_else(bad)? {
        let (name, version) = item
            .as_str()
            .and_then(|s| s.split_once('='))
            .filter(|(n, v)| {
                !n.trim().is_empty() && !v.trim().is_empty() && n.len() + v.len() <= 256
            })
            .ok_or_else(bad)?;
        out.entry(key_of(name.trim()))
            .or_default()
            .insert(version.trim().to_owned());
    }
    Ok(out)
}

/// Splits a settings patch into the repo's own keys and a proxy's or virtual's policy keys,
/// and applies both.
///
/// # Errors
/// The sentence for a bad key or value.
pub fn apply_patch(
    registry: &Registry,
    provider: &str,
    kind: &str,
    settings: &mut RepoSettings,
    config: &mut RepoConfig,
    patch: &Map<String, Value>,
) -> Result<(), SpecError> {
    let (policy, mut rest): (Map<String, Value>, Map<String, Value>) = patch
        .clone()
        .into_iter()
        .partition(|(k, _)| crate::proxy::settings::KEYS.contains(&k.as_str()));
    let p = registry.get(provider)?.clone();
    if let Some(statuses) = rest.remove("project_status") {
        crate::proxy::settings::apply_status(settings, &statuses, &|n| p.package_key(n))
            .map_err(SpecError::Invalid)?;
    }
    if let Some(pins) = rest.remove("pins") {
        settings.pins = parse_pins(&pins, &|n| p.package_key(n)).map_err(SpecError::Invalid)?;
    }
    apply_settings(settings, &rest).map_err(SpecError::Invalid)?;
    crate::proxy::settings::apply(config, kind, &policy, &|n| p.package_key(n))
        .map_err(SpecError::Invalid)
}

impl RepoSpec {
    /// Checks the declaration against the providers and the repos there are.
    ///
    /// # Errors
    /// [`SpecError`].
    pub async fn resolve(&self, registry: &Registry, db: &Db) -> Result<Resolved, SpecError> {
        crate::http::validate_repo_name(&self.name).map_err(|e| invalid(e.public_message()))?;
        let kind = self.kind.as_deref().unwrap_or("hosted");
        if self.upstream.is_some() && kind != KIND {
            return Err(invalid(
                "Only a proxy repo has an upstream; say \"kind\": \"proxy\".",
            ));
        }
        if self.members.is_some() && kind != VIRTUAL {
            return Err(invalid(
                "Only a virtual repo has members; say \"kind\": \"virtual\".",
            ));
        }
        let provider = registry.get(&self.provider)?;
        let offered = match kind {
            KIND => provider.proxy().is_some(),
            VIRTUAL => provider.proxy().is_some_and(|f| f.merges()),
            _ => true,
        };
        if !offered {
            return Err(invalid(format!(
                "The {} provider offers no {kind} repos.",
                self.provider
            )));
        }
        let mut config = RepoConfig::default();
        match kind {
            "hosted" => {}
            KIND => {
                let up = self
                    .upstream
                    .as_ref()
                    .ok_or_else(|| invalid("A proxy repo needs an \"upstream\"."))?;
                let up = Upstream::from_json(up).map_err(SpecError::Invalid)?;
                if provider.proxy().is_some_and(|f| f.signed()) && up.keyring.is_none() {
                    return Err(invalid(format!(
                        "A {} proxy needs the upstream's \"keyring\": the armored public keys it signs with.",
                        self.provider
                    )));
                }
                config.upstream = Some(up);
            }
            VIRTUAL => {
                let members = self.members.clone().unwrap_or_default();
                if members.is_empty() || members.len() > 32 {
                    return Err(invalid("A virtual repo needs 1 to 32 \"members\"."));
                }
                for m in &members {
                    crate::http::validate_repo_name(m).map_err(|e| invalid(e.public_message()))?;
                    match db.repo(&self.provider, m).await? {
                        Some(r) if r.kind != VIRTUAL => {}
                        Some(_) => {
                            return Err(invalid(format!(
                                "The member {m:?} is a virtual repo; members are hosted or proxy repos."
                            )));
                        }
                        None => {
                            return Err(invalid(format!(
                                "There is no {} repo named {m:?} to be a member.",
                                self.provider
                            )));
                        }
                    }
                }
                config.members = members;
            }
            other => {
                return Err(invalid(format!(
                    "Unknown repo kind {other:?}: use \"hosted\", \"proxy\" or \"virtual\"."
                )));
            }
        }
        let mut settings = RepoSettings::default();
        apply_patch(
            registry,
            &self.provider,
            kind,
            &mut settings,
            &mut config,
            &self.settings,
        )?;
        Ok(Resolved {
            kind: kind.to_owned(),
            config,
            settings,
        })
    }
}

/// Makes the repo `provider/name` what `r` says; returns the row and whether it changed.
///
/// # Errors
/// Database failures.
pub async fn write(
    db: &Db,
    provider: &str,
    name: &str,
    r: &Resolved,
) -> Result<(repo::Model, bool), SpecError> {
    let row = db.repo_or_create(provider, name).await?;
    let config = (r.kind != "hosted")
        .then(|| serde_json::to_string(&r.config))
        .transpose()
        .map_err(|e| invalid(format!("the repo configuration: {e}")))?;
    let same = row.kind == r.kind
        && settings_of(&row) == r.settings
        && row
            .config
            .as_deref()
            .map(|c| serde_json::from_str::<RepoConfig>(c).ok())
            == config
                .as_deref()
                .map(|c| serde_json::from_str::<RepoConfig>(c).ok());
    if same {
        return Ok((row, false));
    }
    let generation = row.generation;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&r.settings)
            .map_err(|e| invalid(format!("the settings: {e}")))?);
    am.kind = Set(r.kind.clone());
    am.config = Set(config);
    am.generation = Set(generation + 1);
    let row = am.update(db.conn()).await?;
    db.repos_changed();
    Ok((row, true))
}

/// The `--repos-file`: `[[repo]]` tables with the fields of [`RepoSpec`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReposFile {
    #[serde(default)]
    repo: Vec<RepoSpec>,
}

/// Reads a repos file.
///
/// # Errors
/// A sentence naming the file and what is wrong.
pub fn read_file(path: &Path) -> Result<Vec<RepoSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ReposFile = toml::from_str(&text)
        .map_err(|e| format!("{} is not a repos file: {e}", path.display()))?;
    Ok(file.repo)
}

/// Applies the declarations (members before the virtual repos that name them); returns a line
/// saying what changed.
///
/// # Errors
/// The first declaration that cannot be applied, named.
pub async fn apply_file(
    registry: &Registry,
    db: &Db,
    specs: &[RepoSpec],
) -> Result<String, String> {
    let mut ordered: Vec<&RepoSpec> = specs.iter().collect();
    ordered.sort_by_key(|s| s.kind.as_deref() == Some(VIRTUAL));
    let (mut changed, mut same) = (0, 0);
    for spec in ordered {
        let name = format!("{}/{}", spec.provider, spec.name);
        let fail = |e: SpecError| format!("repo {name}: {e}");
        let resolved = spec.resolve(registry, db).await.map_err(fail)?;
        if let Some(row) = db
            .repo(&spec.provider, &spec.name)
            .await
            .map_err(|e| fail(e.into()))?
            && row.kind != resolved.kind
            && row.file_count > 0
        {
            return Err(format!(
                "repo {name}: it exists as a {} repo with {} file(s); it cannot become {}",
                row.kind, row.file_count, resolved.kind
            ));
        }
        match write(db, &spec.provider, &spec.name, &resolved)
            .await
            .map_err(fail)?
        {
            (_, true) => {
                tracing::info!(repo = %name, kind = %resolved.kind, "Applied the repos file's declaration.");
                changed += 1;
            }
            (_, false) => same += 1,
        }
    }
    Ok(format!(
        "{changed} repo(s) created or changed, {same} unchanged"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_repos_file_reads() {
        let file: ReposFile =
            toml::from_str(include_str!("../../examples/config/repos.toml")).expect("example");
        let kinds: Vec<Option<&str>> = file.repo.iter().map(|r| r.kind.as_deref()).collect();
        assert_eq!(kinds, [None, Some("proxy"), Some("virtual")]);
        assert_eq!(file.repo[2].settings["min_age"], "7d");
        assert!(
            toml::from_str::<ReposFile>(
                "[[repo]]\nprovider = \"pypi\"\nname = \"x\"\ncolour = 1\n"
            )
            .is_err()
        );
    }
}
