//! API tokens and the permission check: who a request is, and what it may do. Tokens are random,
//! shown once, stored as SHA-256, may expire and may be revoked; each has a scope (read < write <
//! admin) and is global or limited to `provider/repo` patterns with `*` wildcards.

use std::fmt;

use artifactd_plugin_api::Principal;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use rand08::RngCore as _;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, Set,
};
use serde::{Deserialize, Serialize};

use crate::db::entities::token;
use crate::db::{Db, now_millis};

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read private repos.
    Read,
    /// Upload and yank.
    Write,
    /// Delete, settings, keys, tokens.
    Admin,
}

impl Scope {
    /// Parses `read`, `write`, `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Auth {
    /// What providers see.
    pub principal: Principal,
    /// `None` for anonymous requests.
    pub scope: Option<Scope>,
    /// Repo patterns; empty means every repo.
    pub repos: Vec<String>,
}

impl Auth {
    /// An anonymous caller.
    pub fn anonymous() -> Self {
        Self {
            principal: Principal::Anonymous,
            scope: None,
            repos: Vec::new(),
        }
    }

    /// The server itself, doing `task` (full access, audited as `system:<task>`).
    pub fn system(task: &str) -> Self {
        Self {
            principal: Principal::System {
                task: task.to_owned(),
            },
            scope: Some(Scope::Admin),
            repos: Vec::new(),
        }
    }

    /// Whether the token's repo list covers `provider/repo` (`None`: every repo, i.e. global).
    pub fn covers(&self, target: Option<(&str, &str)>) -> bool {
        if self.repos.is_empty() {
            return true;
        }
        match target {
            Some((p, r)) => {
                let name = format!("{p}/{r}");
                self.repos.iter().any(|pat| glob(pat, &name))
            }
            None => false,
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Lower-case hex SHA-256 of a token.
pub fn hash(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A new random token: `adt_` and 64 hex digits (256 bits).
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand08::rngs::OsRng.fill_bytes(&mut b);
    format!("adt_{}", hex::encode(b))
}

/// Equal in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request presents: `Bearer T`, or Basic with any user and the token as password.
pub fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (kind, rest) = value.split_once(' ')?;
    if kind.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if kind.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// Why a presented token was refused (always answered with 401, never logged with the token).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown, expired or revoked.
    #[error("The token is not valid: it is unknown, expired or revoked.")]
    Invalid,
    /// The database failed.
    #[error("token lookup failed")]
    Db(#[from] sea_orm::DbErr),
}

/// Establishes the caller from the request headers.
///
/// # Errors
/// [`AuthError::Invalid`] for a presented token that is unknown, expired or revoked.
pub async fn authenticate(db: &Db, headers: &HeaderMap) -> Result<Auth, AuthError> {
    let Some(secret) = presented(headers) else {
        return Ok(Auth::anonymous());
    };
    let digest = hash(&secret);
    let row = token::Entity::find()
        .filter(token::Column::TokenHash.eq(digest.clone()))
        .one(db.conn())
        .await?
        .ok_or(AuthError::Invalid)?;
    if !constant_time_eq(row.token_hash.as_bytes(), digest.as_bytes()) {
        return Err(AuthError::Invalid);
    }
    let now = now_millis();
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
        return Err(AuthError::Invalid);
    }
    let scope = Scope::parse(&row.scope).ok_or(AuthError::Invalid)?;
    Ok(Auth {
        principal: Principal::Token {
            id: row.id.to_string(),
            name: row.name,
        },
        scope: Some(scope),
        repos: serde_json::from_str(&row.repos).unwrap_or_default(),
    })
}

/// Stores a token; returns its row.
///
/// # Errors
/// Database failures.
pub async fn create(
    db: &Db,
    name: &str,
    secret: &str,
    scope: Scope,
    repos: &[String],
    expires_at: Option<i64>,
) -> Result<token::Model, sea_orm::DbErr> {
    token::ActiveModel {
        name: Set(name.to_owned()),
        token_hash: Set(hash(secret)),
        scope: Set(scope.as_str().to_owned()),
        repos: Set(serde_json::to_string(repos).unwrap_or_else(|_| "[]".to_owned())),
        created_at: Set(now_millis()),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db.conn())
    .await
}

/// The first admin token: `ARTIFACTD_ADMIN_TOKEN` when set (stored if new), otherwise one is
/// made when no token exists and printed once in the log.
///
/// # Errors
/// Database failures.
pub async fn bootstrap(db: &Db, admin_token: Option<&str>) -> Result<(), sea_orm::DbErr> {
    if let Some(secret) = admin_token {
        let exists = token::Entity::find()
            .filter(token::Column::TokenHash.eq(hash(secret)))
            .one(db.conn())
            .await?
            .is_some();
        if !exists {
            create(db, "bootstrap-admin", secret, Scope::Admin, &[], None).await?;
            tracing::info!("Stored the admin token from ARTIFACTD_ADMIN_TOKEN.");
        }
        return Ok(());
    }
    if token::Entity::find().count(db.conn()).await? == 0 {
        let secret = new_secret();
        create(db, "bootstrap-admin", &secret, Scope::Admin, &[], None).await?;
        tracing::warn!(token = %secret, "Created the first admin token; it is shown only this once. Keep it, or set ARTIFACTD_ADMIN_TOKEN.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("pypi/*", "pypi/team"));
        assert!(glob("*/team", "apt/team"));
        assert!(glob("pypi/te*m", "pypi/team"));
        assert!(!glob("pypi/*", "apt/team"));
        assert!(glob("pypi/team", "pypi/team"));
        assert!(!glob("pypi/team", "pypi/team2"));
    }

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("abc"));
        // __token__:s3cr:et
        h.insert(
            AUTHORIZATION,
            "Basic X190b2tlbl9fOnMzY3I6ZXQ=".parse().unwrap(),
        );
        assert_eq!(presented(&h).as_deref(), Some("s3cr:et"));
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(new_secret().starts_with("adt_"));
    }
}
