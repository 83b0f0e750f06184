//! Per-repo OpenPGP signing for providers that sign their indexes.

use artifactd_plugin_api::{Error, Result, Signer, async_trait};

/// The signer of one repo.
#[derive(Debug)]
pub struct RepoSigner;

#[async_trait]
impl Signer for RepoSigner {
    async fn public_key_armored(&self) -> Result<String> {
        Err(Error::internal_msg("signing is not available"))
    }
    async fn public_key_binary(&self) -> Result<Vec<u8>> {
        Err(Error::internal_msg("signing is not available"))
    }
    async fn sign_detached(&self, _data: &[u8]) -> Result<String> {
        Err(Error::internal_msg("signing is not available"))
    }
    async fn sign_cleartext(&self, _text: &str) -> Result<String> {
        Err(Error::internal_msg("signing is not available"))
    }
}
