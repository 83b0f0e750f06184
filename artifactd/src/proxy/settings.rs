//! The settings API's policy keys for proxy and virtual repos: `min_age`, `min_age_exempt`,
//! `block` (proxy and virtual), `allow_upstream`, `upload_to` (virtual); and every repo's
//! `project_status`.

use serde_json::{Map, Value, json};

use super::{KIND, RepoConfig, VIRTUAL, parse_duration};

/// The policy keys, as the API names them.
pub const KEYS: &[&str] = &[
    "min_age",
    "min_age_exempt",
    "block",
    "allow_upstream",
    "upload_to",
];

/// `604800` → `7d`: the largest unit that divides it.
pub fn fmt_duration(secs: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

fn names(
    key: &str,
    v: &Value,
    key_of: &dyn Fn(&str) -> String,
    versions: bool,
) -> Result<Vec<String>, String> {
    let list = v
        .as_array()
        .ok_or(format!("{key} takes a list of project names."))?;
    let mut out = Vec::new();
    for item in list {
        let s = item
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 300 && !s.chars().any(char::is_control))
            .ok_or(format!("{key} takes a list of project names."))?;
        let entry = match s.split_once("==") {
            Some((name, version)) if versions && !version.trim().is_empty() => {
                format!("{}=={}", key_of(name.trim()), version.trim())
            }
            Some(_) => {
                return Err(format!(
                    "{key} takes names{}",
                    if versions { " or name==version." } else { "." }
                ));
            }
            None => key_of(s.trim()),
        };
        out.push(entry);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Applies the policy keys of a settings patch to a repo of `kind`; `key_of` normalizes names
/// as the provider does. `Err` is the sentence for a 400.
pub fn apply(
    config: &mut RepoConfig,
    kind: &str,
    patch: &Map<String, Value>,
    key_of: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    for (k, v) in patch {
        let for_proxies = matches!(k.as_str(), "min_age" | "min_age_exempt" | "block");
        let for_virtuals = matches!(k.as_str(), "allow_upstream" | "upload_to");
        if (for_proxies && kind != KIND && kind != VIRTUAL) || (for_virtuals && kind != VIRTUAL) {
            return Err(format!(
                "The setting {k} is for {} repos; this one is {kind}.",
                if for_virtuals {
                    "virtual"
                } else {
                    "proxy and virtual"
                }
            ));
        }
        let p = &mut config.policy;
        match (k.as_str(), v) {
            ("min_age", Value::Null) => p.min_age_secs = None,
            ("min_age", Value::String(s)) => {
                p.min_age_secs = Some(
                    parse_duration(s)
                        .ok_or(format!(
                            "min_age {s:?} is not a duration such as 12h or 7d."
                        ))?
                        .as_secs(),
                );
            }
            ("min_age_exempt", v) => p.min_age_exempt = names(k, v, key_of, false)?,
            ("block", v) => p.block = names(k, v, key_of, true)?,
            ("allow_upstream", v) => p.allow_upstream = names(k, v, key_of, false)?,
            ("upload_to", Value::Null) => p.upload_to = None,
            ("upload_to", Value::String(s)) => {
                if !config.members.iter().any(|m| m == s) {
                    return Err(format!("upload_to {s:?} is not a member of this repo."));
                }
                config.policy.upload_to = Some(s.clone());
            }
            _ => return Err(format!("The setting {k} does not take {v}.")),
        }
    }
    Ok(())
}

/// The policy keys as the API shows them.
pub fn json(config: &RepoConfig, kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if kind != KIND && kind != VIRTUAL {
        return out;
    }
    let p = &config.policy;
    out.insert("min_age".into(), json!(p.min_age_secs.map(fmt_duration)));
    out.insert("min_age_exempt".into(), json!(p.min_age_exempt));
    out.insert("block".into(), json!(p.block));
    if kind == VIRTUAL {
        out.insert("allow_upstream".into(), json!(p.allow_upstream));
        out.insert("upload_to".into(), json!(p.upload_to));
    }
    out
}

/// Applies a `project_status` patch: `{"name": "archived"}`, `{"name": {"status":
/// "quarantined", "reason": "…"}}`, `null` or `"active"` to clear. `Err` is the sentence for a
/// 400.
pub fn apply_status(
    settings: &mut artifactd_plugin_api::RepoSettings,
    patch: &Value,
    key_of: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    use artifactd_plugin_api::{ProjectStatus, Status};
    const USAGE: &str = "project_status takes {\"NAME\": STATUS} or {\"NAME\": {\"status\": STATUS, \"reason\": TEXT}}, with STATUS one of active, archived, quarantined, deprecated (null clears).";
    let map = patch.as_object().ok_or(USAGE)?;
    if map.len() > 1000 {
        return Err("project_status takes at most 1000 projects at once.".into());
    }
    for (name, v) in map {
        if name.is_empty() || name.len() > 300 || name.chars().any(char::is_control) {
            return Err(USAGE.into());
        }
        let (status, reason) = match v {
            Value::Null => (Status::Active, None),
            Value::String(s) => (Status::parse(s).ok_or(USAGE)?, None),
            Value::Object(o) => {
                if o.keys().any(|k| k != "status" && k != "reason") {
                    return Err(USAGE.into());
                }
                let status = o
                    .get("status")
                    .and_then(Value::as_str)
                    .and_then(Status::parse)
                    .ok_or(USAGE)?;
                let reason = match o.get("reason") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(r))
                        if r.len() <= 500 && !r.chars().any(char::is_control) =>
                    {
                        Some(r.clone()).filter(|r| !r.trim().is_empty())
                    }
                    Some(_) => {
                        return Err(
                            "A project status's reason is one line of at most 500 characters."
                                .into(),
                        );
                    }
                };
                (status, reason)
            }
            _ => return Err(USAGE.into()),
        };
        let key = key_of(name);
        if status == Status::Active {
            settings.project_status.remove(&key);
        } else {
            settings
                .project_status
                .insert(key, ProjectStatus::new(status, reason));
        }
    }
    if settings.project_status.len() > 10_000 {
        return Err("A repo marks at most 10000 projects.".into());
    }
    Ok(())
}

/// The `project_status` a settings answer shows.
pub fn status_json(settings: &artifactd_plugin_api::RepoSettings) -> Value {
    Value::Object(
        settings
            .project_status
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    json!({ "status": s.status.as_str(), "reason": s.reason }),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_settings_are_checked_and_shown_back() {
        let key_of = |n: &str| n.to_ascii_lowercase().replace('_', "-");
        let mut c = RepoConfig {
            members: vec!["team".into(), "pypi-org".into()],
            ..RepoConfig::default()
        };
        let patch = json!({"min_age": "7d", "block": ["Evil_Pkg", "good==1.0"], "allow_upstream": ["Team_Lib"], "upload_to": "team"});
        apply(&mut c, VIRTUAL, patch.as_object().unwrap(), &key_of).unwrap();
        let shown = Value::Object(json(&c, VIRTUAL));
        assert_eq!(shown["min_age"], "7d");
        assert_eq!(shown["block"], json!(["evil-pkg", "good==1.0"]));
        assert_eq!(shown["allow_upstream"], json!(["team-lib"]));
        for (kind, bad) in [
            (VIRTUAL, json!({"min_age": "soon"})),
            (VIRTUAL, json!({"upload_to": "elsewhere"})),
            (KIND, json!({"allow_upstream": ["x"]})),
            ("hosted", json!({"min_age": "1d"})),
            (VIRTUAL, json!({"block": "x"})),
            (VIRTUAL, json!({"min_age_exempt": ["x==1"]})),
        ] {
            assert!(
                apply(&mut c.clone(), kind, bad.as_object().unwrap(), &key_of).is_err(),
                "{bad}"
            );
        }
        assert_eq!(fmt_duration(43_200), "12h");
        assert_eq!(fmt_duration(90), "90s");
    }

    #[test]
    fn project_status_marks_are_patched_and_checked() {
        use artifactd_plugin_api::{RepoSettings, Status};
        let key = |n: &str| n.to_ascii_lowercase().replace('_', "-");
        let mut st = RepoSettings::default();
        apply_status(
            &mut st,
            &json!({ "Old_Lib": "archived", "bad": { "status": "quarantined", "reason": "malware" } }),
            &key,
        )
        .unwrap();
        assert_eq!(
            st.status_of("old-lib").map(|s| s.status),
            Some(Status::Archived)
        );
        assert_eq!(
            st.status_of("bad").and_then(|s| s.reason.as_deref()),
            Some("malware")
        );
        apply_status(&mut st, &json!({ "old-lib": null, "bad": "active" }), &key).unwrap();
        assert!(st.project_status.is_empty());
        for bad in [
            json!({ "x": "gone" }),
            json!({ "x": { "status": "archived", "why": "?" } }),
            json!({ "x": { "status": "archived", "reason": "a\nb" } }),
            json!({ "x": 1 }),
            json!(["x"]),
        ] {
            assert!(apply_status(&mut st, &bad, &key).is_err(), "{bad}");
        }
        assert!(
            st.project_status.is_empty(),
            "a refused patch changes nothing"
        );
    }
}
