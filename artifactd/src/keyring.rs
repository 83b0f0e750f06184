//! An upstream's OpenPGP keyring (armored public keys) and checking documents signed with it
//! (rpgp): what a proxy of a signed archive trusts, as `apt` with `Signed-By` would.

use pgp::composed::{CleartextSignedMessage, Deserializable as _, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize as _;
use pgp::types::KeyDetails as _;

/// The largest keyring accepted.
pub const MAX_KEYRING_BYTES: usize = 1 << 20;

/// Parsed public keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

impl Keyring {
    /// Reads one or more armored public key blocks. `Err` is a sentence for a 400.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_KEYRING_BYTES {
            return Err(format!(
                "The keyring is larger than {MAX_KEYRING_BYTES} bytes."
            ));
        }
        let mut keys = Vec::new();
        for (i, _) in text.match_indices(BEGIN) {
            let block = &text[i..];
            let (parsed, _) = SignedPublicKey::from_string_many(block).map_err(|e| {
                format!("The keyring is not a set of armored OpenPGP public keys ({e}).")
            })?;
            for key in parsed {
                let key = key.map_err(|e| {
                    format!("The keyring holds a public key that cannot be read ({e}).")
                })?;
                key.verify_bindings().map_err(|e| {
                    format!(
                        "The keyring's key {} has no valid self-signature ({e}).",
                        key.fingerprint()
                    )
                })?;
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "The keyring holds no public key: give armored keys (\"{BEGIN}\"), as `gpg --export --armor` writes them."
            ));
        }
        Ok(Self { keys })
    }

    /// The primary keys' fingerprints (upper-case hex).
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect()
    }

    /// The keys as OpenPGP packets (a binary keyring, as `gpg --export` writes it).
    ///
    /// # Errors
    /// When a key cannot be written (it was read, so it can).
    pub fn binary(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for k in &self.keys {
            out.extend(k.to_bytes().map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    /// The text a cleartext-signed document's signature covers (with `\n` line ends), when a
    /// signature on it verifies with a key of the keyring (a primary key or a signing subkey)
    /// and uses a hash that is not broken (not MD5 or SHA-1). `Err` says why not.
    pub fn verify_cleartext(&self, document: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(document)
            .map_err(|_| "the signed document is not UTF-8 text".to_owned())?;
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| format!("it is not a cleartext-signed OpenPGP document ({e})"))?;
        let signed = msg.signed_text();
        let strong = |h: Option<HashAlgorithm>| {
            !matches!(
                h,
                None | Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160)
            )
        };
        let good = msg.signatures().iter().any(|sig| {
            strong(sig.hash_alg())
                && self.keys.iter().any(|k| {
                    sig.verify(k, signed.as_bytes()).is_ok()
                        || k.public_subkeys
                            .iter()
                            .any(|s| sig.verify(s, signed.as_bytes()).is_ok())
                })
        });
        if good {
            Ok(signed.replace("\r\n", "\n"))
        } else {
            Err(format!(
                "no signature on it verifies with a key of the keyring ({})",
                self.fingerprints().join(", ")
            ))
        }
    }
}

/// Armors a binary keyring (OpenPGP packets, as `gpg --export` writes it and
/// `/usr/share/keyrings` holds) after checking that it reads as one.
///
/// # Errors
/// The sentence saying why it is not a keyring.
pub fn armor_binary(bytes: &[u8]) -> Result<String, String> {
    use pgp::composed::ArmorOptions;
    let keys: Vec<SignedPublicKey> = SignedPublicKey::from_bytes_many(bytes)
        .map_err(|e| format!("not an OpenPGP keyring ({e})"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a key in it cannot be read ({e})"))?;
    if keys.is_empty() {
        return Err("it holds no public key".into());
    }
    let mut out = String::new();
    for k in keys {
        out.push_str(
            &k.to_armored_string(ArmorOptions::default())
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}
