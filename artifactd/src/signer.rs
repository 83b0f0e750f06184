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
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails as _, Password, Timestamp};
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, Set, SqlErr};

use crate::db::entities::signing_key;
use crate::db::{Db, now_millis};

pub(crate) fn pgp_err(what: &'static str) -> impl FnOnce(pgp::errors::Error) -> Error {
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

pub(crate) fn parse_key(armored: &str) -> Result<SignedSecretKey> {
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
        let binary = self.public_key_binary().await?;
        let mut out = Vec::new();
        pgp::armor::write(
            &RawPackets(&binary),
            pgp::armor::BlockType::PublicKey,
            &mut out,
            None,
            true,
        )
        .map_err(pgp_err("armoring the public keys"))?;
        String::from_utf8(out).map_err(|e| Error::internal("armoring the public keys", e))
    }

    async fn public_key_binary(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for key in self.keys().await? {
            out.extend(
                SignedPublicKey::from(key.as_ref().clone())
                    .to_bytes()
                    .map_err(pgp_err("serializing the public key"))?,
            );
        }
        Ok(out)
    }

    async fn fingerprints(&self) -> Result<Vec<String>> {
        Ok(self
            .keys()
            .await?
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect())
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

/// Packets already serialized, for the armor writer.
struct RawPackets<'a>(&'a [u8]);

impl pgp::ser::Serialize for RawPackets<'_> {
    fn to_writer<W: std::io::Write>(&self, w: &mut W) -> pgp::errors::Result<()> {
        w.write_all(self.0)?;
        Ok(())
    }

    fn write_len(&self) -> usize {
        self.0.len()
    }
}
