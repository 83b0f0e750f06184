//! Per-repo OpenPGP signing (rpgp): each repo's key is generated on first use (v4 EdDSA
//! "Ed25519Legacy", which apt 2.6 / gpgv 2.2 accept), stored in the database, and kept parsed in
//! memory; signatures use SHA-256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::{Error, Result, Signer, async_trait};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable as _, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails as _, KeyVersion, Password, Timestamp};
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _, Set, SqlErr};

use crate::db::entities::signing_key;
use crate::db::{Db, now_millis};

fn pgp_err(what: &'static str) -> impl FnOnce(pgp::errors::Error) -> Error {
    move |e| Error::internal(what, e)
}

/// A repo's keys: the current one first, then the one it replaced while the transition lasts.
#[derive(Debug, Clone)]
struct RepoKeys {
    keys: Vec<Arc<SignedSecretKey>>,
    /// Until when (ms) the second key signs too.
    previous_until: Option<i64>,
}

/// Parsed keys by repo id, shared by every request.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<i64, RepoKeys>>,
}

impl KeyCache {
    fn get(&self, repo_id: i64) -> Option<RepoKeys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&repo_id)
            .cloned()
    }

    fn put(&self, repo_id: i64, keys: RepoKeys) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(repo_id, keys);
    }

    /// Forgets a repo's keys (after an import).
    pub fn forget(&self, repo_id: i64) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&repo_id);
    }
}

fn parse_key(armored: &str) -> Result<SignedSecretKey> {
    SignedSecretKey::from_string(armored)
        .map(|(k, _)| k)
        .map_err(pgp_err("parsing the stored signing key"))
}

/// Generates a signing key for `uid`.
///
/// # Errors
/// Key generation failures.
pub fn generate_key(uid: &str) -> Result<SignedSecretKey> {
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(uid.to_owned())
        .build()
        .map_err(|e| Error::internal("signing key parameters", e))?;
    params
        .generate(rand08::thread_rng())
        .map_err(pgp_err("signing key generation"))
}

/// The signer of one repo.
#[derive(Debug)]
pub struct RepoSigner {
    db: Db,
    repo_id: Option<i64>,
    uid: String,
    cache: Arc<KeyCache>,
}

impl RepoSigner {
    /// The signer of a repo (`repo_id` is `None` before the repo exists: signing then fails).
    pub fn new(db: Db, repo_id: Option<i64>, uid: String, cache: Arc<KeyCache>) -> Self {
        Self {
            db,
            repo_id,
            uid,
            cache,
        }
    }

    /// The repo's keys: cached, stored, or generated now. Concurrent first uses are settled by
    /// the primary key of `signing_keys`: the loser reads the winner's key.
    async fn keys(&self) -> Result<Vec<Arc<SignedSecretKey>>> {
        let repo_id = self
            .repo_id
            .ok_or_else(|| Error::internal_msg("signing for a repo that does not exist yet"))?;
        let now = now_millis();
        if let Some(k) = self.cache.get(repo_id)
            && k.previous_until.is_none_or(|u| u > now)
        {
            return Ok(k.keys);
        }
        let db_err = |e: sea_orm::DbErr| Error::internal("signing key query failed", e);
        let stored = signing_key::Entity::find_by_id(repo_id)
            .one(self.db.conn())
            .await
            .map_err(db_err)?;
        let row = match stored {
            Some(row) => row,
            None => {
                let uid = self.uid.clone();
                let key = tokio::task::spawn_blocking(move || generate_key(&uid))
                    .await
                    .map_err(|e| Error::internal("key generation task", e))??;
                let armored = key
                    .to_armored_string(ArmorOptions::default())
                    .map_err(pgp_err("armoring the signing key"))?;
                let row = signing_key::ActiveModel {
                    repo_id: Set(repo_id),
                    secret_armored: Set(armored.clone()),
                    fingerprint: Set(key.fingerprint().to_string()),
                    created_at: Set(now_millis()),
                    previous_armored: Set(None),
                    previous_until: Set(None),
                };
                match row.insert(self.db.conn()).await {
                    Ok(row) => {
                        tracing::info!(repo_id, fingerprint = %key.fingerprint(), "Generated signing key.");
                        row
                    }
                    Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        signing_key::Entity::find_by_id(repo_id)
                            .one(self.db.conn())
                            .await
                            .map_err(db_err)?
                            .ok_or_else(|| Error::internal_msg("signing key vanished"))?
                    }
                    Err(e) => return Err(db_err(e)),
                }
            }
        };
        let mut keys = vec![Arc::new(parse_key(&row.secret_armored)?)];
        let previous_until = row.previous_until.filter(|u| *u > now);
        if previous_until.is_some()
            && let Some(prev) = &row.previous_armored
        {
            keys.push(Arc::new(parse_key(prev)?));
        }
        self.cache.put(
            repo_id,
            RepoKeys {
                keys: keys.clone(),
                previous_until,
            },
        );
        Ok(keys)
    }
}

fn text_signature(key: &SignedSecretKey, text: &str) -> pgp::errors::Result<Signature> {
    let mut config =
        SignatureConfig::from_key(rand08::thread_rng(), &key.primary_key, SignatureType::Text)?;
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
    ];
    config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
        key.legacy_key_id(),
    ))?];
    config.sign(&key.primary_key, &Password::empty(), text.as_bytes())
}

#[async_trait]
impl Signer for RepoSigner {
    async fn public_key_armored(&self) -> Result<String> {
        let key = self.keys().await?.remove(0);
        SignedPublicKey::from(key.as_ref().clone())
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armoring the public key"))
    }

    async fn public_key_binary(&self) -> Result<Vec<u8>> {
        let key = self.keys().await?.remove(0);
        SignedPublicKey::from(key.as_ref().clone())
            .to_bytes()
            .map_err(pgp_err("serializing the public key"))
    }

    async fn sign_detached(&self, data: &[u8]) -> Result<String> {
        let keys = self.keys().await?;
        let mut sigs = Vec::new();
        for key in &keys {
            let sig = DetachedSignature::sign_binary_data(
                rand08::thread_rng(),
                &key.primary_key,
                &Password::empty(),
                HashAlgorithm::Sha256,
                data,
            )
            .map_err(pgp_err("signing"))?;
            sigs.push(sig);
        }
        // Several signatures go in one armored block, as Debian's own Release.gpg files do.
        let mut out = Vec::new();
        pgp::armor::write(
            &sigs,
            pgp::armor::BlockType::Signature,
            &mut out,
            None,
            true,
        )
        .map_err(pgp_err("armoring the signature"))?;
        String::from_utf8(out).map_err(|e| Error::internal("armoring the signature", e))
    }

    async fn sign_cleartext(&self, text: &str) -> Result<String> {
        let keys = self.keys().await?;
        let msg = CleartextSignedMessage::new_many(text, |normalized| {
            keys.iter().map(|k| text_signature(k, normalized)).collect()
        })
        .map_err(pgp_err("signing"))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armoring the signed message"))
    }
}

/// Why an imported key is refused; each is a 400 with this sentence.
fn refuse(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

/// Checks an armored secret key for use by apt, unlocks it with `passphrase`, and makes it the
/// repo's signing key; the key it replaces keeps signing for `transition_ms`. Returns the new
/// fingerprint.
///
/// # Errors
/// [`Error::InvalidInput`] for a key that is not a secret key, is locked, cannot sign, has
/// expired or uses an algorithm apt refuses; database failures otherwise.
pub async fn import_key(
    db: &Db,
    cache: &KeyCache,
    repo_id: i64,
    armored: &str,
    passphrase: Option<&str>,
    transition_ms: i64,
) -> Result<String> {
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
    let db_err = |e: sea_orm::DbErr| Error::internal("signing key update failed", e);
    let existing = signing_key::Entity::find_by_id(repo_id)
        .one(db.conn())
        .await
        .map_err(db_err)?;
    let now = now_millis();
    match existing {
        Some(row) => {
            let previous = row.secret_armored.clone();
            let mut am = row.into_active_model();
            am.secret_armored = Set(unlocked);
            am.fingerprint = Set(key.fingerprint().to_string());
            am.created_at = Set(now);
            am.previous_armored = Set((transition_ms > 0).then_some(previous));
            am.previous_until = Set((transition_ms > 0).then_some(now + transition_ms));
            am.update(db.conn()).await.map_err(db_err)?;
        }
        None => {
            signing_key::ActiveModel {
                repo_id: Set(repo_id),
                secret_armored: Set(unlocked),
                fingerprint: Set(key.fingerprint().to_string()),
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
    Ok(key.fingerprint().to_string())
}
