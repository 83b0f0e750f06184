//! A repo's signing keys over time: importing a key, and rotation. A repo signs with its current
//! key; during a rotation the key it replaces signs too (and is served next to it) until it is
//! retired, or until a set time for an import with a transition period. Each change is one row
//! update, after which the host re-signs every dist.

use artifactd_plugin_api::{Error, Result};
use pgp::composed::{ArmorOptions, Deserializable as _, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::types::{KeyDetails as _, KeyVersion, Password, Timestamp};
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _, Set};
use serde::Serialize;

use crate::db::entities::signing_key;
use crate::db::{Db, now_millis};
use crate::signer::{KeyCache, generate_key, parse_key, pgp_err};

/// `previous_until` of a key that signs until it is retired.
const UNTIL_RETIRED: i64 = i64::MAX;

/// Why a key is refused; each is a 400 with this sentence.
fn refuse(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

/// Checks an armored secret key for use by apt and unlocks it with `passphrase`; returns it with
/// its unprotected armored form.
///
/// # Errors
/// [`Error::InvalidInput`] for a key that is not a secret key, is locked, cannot sign, has
/// expired or uses an algorithm apt refuses.
fn checked(armored: &str, passphrase: Option<&str>) -> Result<(SignedSecretKey, String)> {
    let (mut key, _) = SignedSecretKey::from_string(armored).map_err(|e| {
        refuse(format!(
            "The key is not an armored OpenPGP secret key ({e})."
        ))
    })?;
    if key.primary_key.version() != KeyVersion::V4 {
        return Err(refuse(
            "Only v4 keys are accepted; apt in Debian 12 refuses v6 keys.",
        ));
    }
    match key.primary_key.algorithm() {
        PublicKeyAlgorithm::EdDSALegacy | PublicKeyAlgorithm::RSA | PublicKeyAlgorithm::ECDSA => {}
        other => {
            return Err(refuse(format!(
                "The key's algorithm {other:?} is refused by apt; use EdDSA (ed25519, v4) or RSA of 3072 bits or more."
            )));
        }
    }
    let flags_sign = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .any(|s| s.key_flags().sign());
    if !flags_sign {
        return Err(refuse(
            "The key's primary key is not allowed to sign (no signing flag in its self-signature).",
        ));
    }
    let now_secs = i64::from(Timestamp::now().as_secs());
    let created = i64::from(key.primary_key.created_at().as_secs());
    let expiry = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .filter_map(|s| s.key_expiration_time())
        .map(|d| created + i64::from(d.as_secs()))
        .max();
    if let Some(exp) = expiry
        && exp <= now_secs
    {
        return Err(refuse("The key has expired."));
    }
    if let Some(pw) = passphrase.filter(|p| !p.is_empty()) {
        key.primary_key
            .remove_password(&Password::from(pw))
            .map_err(|_| refuse("The passphrase does not unlock the key."))?;
    }
    // Prove it signs, unprotected, before storing it.
    DetachedSignature::sign_binary_data(
        rand08::thread_rng(),
        &key.primary_key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        &b"artifactd key check"[..],
    )
    .map_err(|_| refuse("The key is protected by a passphrase; send it as \"passphrase\"."))?;
    let unlocked = key
        .to_armored_string(ArmorOptions::default())
        .map_err(pgp_err("armoring the imported key"))?;
    Ok((key, unlocked))
}

fn db_err(e: sea_orm::DbErr) -> Error {
    Error::internal("signing key update failed", e)
}

async fn row(db: &Db, repo_id: i64) -> Result<Option<signing_key::Model>> {
    signing_key::Entity::find_by_id(repo_id)
        .one(db.conn())
        .await
        .map_err(db_err)
}

/// Makes `armored` (checked) the repo's key; the key it replaces keeps signing until
/// `previous_until` (`None`: it stops at once).
async fn install(
    db: &Db,
    cache: &KeyCache,
    repo_id: i64,
    key: &SignedSecretKey,
    armored: String,
    previous_until: Option<i64>,
) -> Result<String> {
    let now = now_millis();
    let fingerprint = key.fingerprint().to_string();
    match row(db, repo_id).await? {
        Some(row) => {
            let previous = row.secret_armored.clone();
            let mut am = row.into_active_model();
            am.secret_armored = Set(armored);
            am.fingerprint = Set(fingerprint.clone());
            am.created_at = Set(now);
            am.previous_armored = Set(previous_until.map(|_| previous));
            am.previous_until = Set(previous_until);
            am.update(db.conn()).await.map_err(db_err)?;
        }
        None => {
            signing_key::ActiveModel {
                repo_id: Set(repo_id),
                secret_armored: Set(armored),
                fingerprint: Set(fingerprint.clone()),
                created_at: Set(now),
                previous_armored: Set(None),
                previous_until: Set(None),
            }
            .insert(db.conn())
            .await
            .map_err(db_err)?;
        }
    }
    cache.forget(repo_id);
    Ok(format!("{:X}", key.fingerprint()))
}

/// Checks an armored secret key, unlocks it with `passphrase`, and makes it the repo's signing
/// key; the key it replaces keeps signing for `transition_ms`. Returns the new fingerprint.
///
/// # Errors
/// [`Error::InvalidInput`] for a key apt cannot use (see [`checked`]); database failures.
pub async fn import_key(
    db: &Db,
    cache: &KeyCache,
    repo_id: i64,
    armored: &str,
    passphrase: Option<&str>,
    transition_ms: i64,
) -> Result<String> {
    let (key, unlocked) = checked(armored, passphrase)?;
    let until = (transition_ms > 0).then(|| now_millis() + transition_ms);
    install(db, cache, repo_id, &key, unlocked, until).await
}

/// One of a repo's keys, as the API lists them.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Upper-case hex.
    pub fingerprint: String,
    /// `current` (signs, and will after the rotation) or `previous` (signs until retired).
    pub role: &'static str,
    /// For a previous key with a set end: until when it signs (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

fn fingerprint_of(armored: &str) -> Result<String> {
    Ok(format!("{:X}", parse_key(armored)?.fingerprint()))
}

/// The keys that sign for the repo now (none before its first signature).
///
/// # Errors
/// Database failures, an unreadable stored key.
pub async fn list_keys(db: &Db, repo_id: i64) -> Result<Vec<KeyInfo>> {
    let Some(row) = row(db, repo_id).await? else {
        return Ok(Vec::new());
    };
    let mut out = vec![KeyInfo {
        fingerprint: fingerprint_of(&row.secret_armored)?,
        role: "current",
        until: None,
    }];
    if let (Some(prev), Some(until)) = (&row.previous_armored, row.previous_until)
        && until > now_millis()
    {
        out.push(KeyInfo {
            fingerprint: fingerprint_of(prev)?,
            role: "previous",
            until: (until != UNTIL_RETIRED).then_some(until),
        });
    }
    Ok(out)
}

/// Starts a rotation: a new key (imported when `import` is given, else generated for `uid`)
/// becomes current, and the current one keeps signing until it is retired. Returns the new
/// fingerprint. The repo must have its first key (the caller makes sure by asking its signer).
///
/// # Errors
/// [`Error::Conflict`] while a rotation is under way; [`Error::InvalidInput`] for a key apt cannot
/// use; database failures.
pub async fn add_key(
    db: &Db,
    cache: &KeyCache,
    repo_id: i64,
    uid: &str,
    import: Option<(&str, Option<&str>)>,
) -> Result<String> {
    if list_keys(db, repo_id).await?.is_empty() {
        return Err(Error::not_found(
            "The repo has no signing key yet; it gets one with its first publish.",
        ));
    }
    if list_keys(db, repo_id).await?.len() > 1 {
        return Err(Error::Conflict(
            "A key rotation is under way: retire one of the two keys before adding another."
                .to_owned(),
        ));
    }
    let (key, armored) = match import {
        Some((armored, passphrase)) => checked(armored, passphrase)?,
        None => {
            let uid = uid.to_owned();
            let key = tokio::task::spawn_blocking(move || generate_key(&uid))
                .await
                .map_err(|e| Error::internal("key generation task", e))??;
            let armored = key
                .to_armored_string(ArmorOptions::default())
                .map_err(pgp_err("armoring the signing key"))?;
            (key, armored)
        }
    };
    if list_keys(db, repo_id)
        .await?
        .iter()
        .any(|k| k.fingerprint == format!("{:X}", key.fingerprint()))
    {
        return Err(Error::Conflict(
            "The repo signs with this key already.".to_owned(),
        ));
    }
    install(db, cache, repo_id, &key, armored, Some(UNTIL_RETIRED)).await
}

/// Ends a key: the previous key of a rotation stops signing, or the current one does and the
/// previous one is current again.
///
/// # Errors
/// [`Error::NotFound`] for a key the repo does not sign with, [`Error::Conflict`] for its only
/// key; database failures.
pub async fn retire_key(db: &Db, cache: &KeyCache, repo_id: i64, fingerprint: &str) -> Result<()> {
    let wanted = fingerprint.trim().replace(' ', "").to_ascii_uppercase();
    let keys = list_keys(db, repo_id).await?;
    let Some(found) = keys.iter().find(|k| k.fingerprint == wanted) else {
        return Err(Error::not_found(format!(
            "The repo does not sign with a key {wanted}; its keys are {}.",
            keys.iter()
                .map(|k| k.fingerprint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if keys.len() == 1 {
        return Err(Error::Conflict(
            "This is the repo's only signing key; add a new one (rpcli key add) before retiring it."
                .to_owned(),
        ));
    }
    let Some(row) = row(db, repo_id).await? else {
        return Err(Error::not_found("The repo has no signing key."));
    };
    let mut am = row.clone().into_active_model();
    if found.role == "current" {
        let previous = row.previous_armored.clone().unwrap_or_default();
        am.fingerprint = Set(parse_key(&previous)?.fingerprint().to_string());
        am.secret_armored = Set(previous);
    }
    am.previous_armored = Set(None);
    am.previous_until = Set(None);
    am.update(db.conn()).await.map_err(db_err)?;
    cache.forget(repo_id);
    Ok(())
}
