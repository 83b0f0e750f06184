//! Test doubles for the host's services and the conformance suite every provider runs.
//!
//! [`TestHost`] plays the host's part of the upload flow (hash, store the blob, insert the
//! records, index) against an in-memory catalog, blob store and signer, so a provider crate can
//! test its hooks without a database or an HTTP server. [`conformance`] checks the contract of
//! [`crate::Provider`] on two sample files the provider supplies.

mod conformance;
mod doubles;
mod host;

use sha2::{Digest as _, Sha256};

pub use conformance::{Kit, Sample, conformance};
pub use doubles::{FakeSigner, MemoryCatalog};
pub use host::TestHost;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `bytes`, as the host computes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
