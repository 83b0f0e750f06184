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
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails as _, Password};
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, Set, SqlErr};

use crate::db::entities::signing_key;
use crate::db::{Db, now_millis};

fn pgp_err(what: &'static str) -> impl FnOnce(pgp::errors::Error) -> Error {
    move |e| Error::internal(what, e)
}

/// Parsed keys by repo id, shared by every request.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<i64, Arc<SignedSecretKey>>>,
}

impl KeyCache {
    fn get(&self, repo_id: i64) -> Option<Arc<SignedSecretKey>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&repo_id)
            .cloned()
    }

    fn put(&self, repo_id: i64, key: Arc<SignedSecretKey>) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(repo_id, key);
    }
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

    /// The repo's key: cached, stored, or generated now. Concurrent first uses are settled by
    /// the primary key of `signing_keys`: the loser reads the winner's key.
    async fn key(&self) -> Result<Arc<SignedSecretKey>> {
        let repo_id = self
            .repo_id
            .ok_or_else(|| Error::internal_msg("signing for a repo that does not exist yet"))?;
        if let Some(k) = self.cache.get(repo_id) {
            return Ok(k);
        }
        let db_err = |e: sea_orm::DbErr| Error::internal("signing key query failed", e);
        let stored = signing_key::Entity::find_by_id(repo_id)
            .one(self.db.conn())
            .await
            .map_err(db_err)?;
        let armored = match stored {
            Some(row) => row.secret_armored,
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
                };
                match row.insert(self.db.conn()).await {
                    Ok(_) => {
                        tracing::info!(repo_id, fingerprint = %key.fingerprint(), "Generated signing key.");
                        armored
                    }
                    Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        signing_key::Entity::find_by_id(repo_id)
                            .one(self.db.conn())
                            .await
                            .map_err(db_err)?
                            .ok_or_else(|| Error::internal_msg("signing key vanished"))?
                            .secret_armored
                    }
                    Err(e) => return Err(db_err(e)),
                }
            }
        };
        let (key, _) = SignedSecretKey::from_string(&armored)
            .map_err(pgp_err("parsing the stored signing key"))?;
        let key = Arc::new(key);
        self.cache.put(repo_id, key.clone());
        Ok(key)
    }
}

#[async_trait]
impl Signer for RepoSigner {
    async fn public_key_armored(&self) -> Result<String> {
        let key = self.key().await?;
        SignedPublicKey::from(key.as_ref().clone())
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armoring the public key"))
    }

    async fn public_key_binary(&self) -> Result<Vec<u8>> {
        let key = self.key().await?;
        SignedPublicKey::from(key.as_ref().clone())
            .to_bytes()
            .map_err(pgp_err("serializing the public key"))
    }

    async fn sign_detached(&self, data: &[u8]) -> Result<String> {
        let key = self.key().await?;
        let sig = DetachedSignature::sign_binary_data(
            rand08::thread_rng(),
            &key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .map_err(pgp_err("signing"))?;
        sig.to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armoring the signature"))
    }

    async fn sign_cleartext(&self, text: &str) -> Result<String> {
        let key = self.key().await?;
        let msg = CleartextSignedMessage::sign(
            rand08::thread_rng(),
            text,
            &key.primary_key,
            &Password::empty(),
        )
        .map_err(pgp_err("signing"))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armoring the signed message"))
    }
}
