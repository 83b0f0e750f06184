//! A proxy repo's upstream: where it is, how to authenticate, how long what it says stays fresh;
//! and the HTTP client that asks it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long an upstream page stays fresh by default.
pub const DEFAULT_TTL_SECS: u64 = 600;
/// How long an upstream's "no such project" is believed.
pub const NOT_FOUND_TTL_SECS: u64 = 60;
/// Connecting to an upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause in an upstream's answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxy's upstream, as stored (credentials included: never shown back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The upstream index's base URL, ending in `/`.
    pub url: String,
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Bearer authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How long a fetched page stays fresh, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// The armored public keys the upstream signs with (signed archives such as APT's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<String>,
}

fn default_ttl() -> u64 {
    DEFAULT_TTL_SECS
}

/// Parses `30s`, `10m`, `12h`, `7d` (or plain seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

impl Upstream {
    /// Reads the API's `upstream` object: `url` (http or https), optional `username` and
    /// `password` or `token`, `ttl` (`10m`), `keyring` (armored public keys). `Err` is the
    /// sentence for a 400.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or("The upstream must be an object with at least a \"url\".")?;
        for k in obj.keys() {
            if !["url", "username", "password", "token", "ttl", "keyring"].contains(&k.as_str()) {
                return Err(format!(
                    "Unknown upstream field {k:?}: use url, username, password, token, ttl, keyring."
                ));
            }
        }
        let keyring = match obj.get("keyring") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => {
                crate::keyring::Keyring::parse(k)?;
                Some(k.clone())
            }
            Some(_) => {
                return Err("The upstream's keyring must be text: armored public keys.".into());
            }
        };
        let text = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= 4096 && !s.chars().any(char::is_control) => {
                    Ok(Some(s.clone()))
                }
                Some(_) => Err(format!("The upstream's {k} must be one line of text.")),
            }
        };
        let raw = text("url")?.ok_or("The upstream needs a \"url\".")?;
        let parsed = url::Url::parse(&raw)
            .map_err(|e| format!("The upstream URL {raw:?} is not a URL ({e})."))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "The upstream URL {raw:?} must be an http:// or https:// URL with a host."
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "The upstream URL {raw:?} may not have a query or a fragment."
            ));
        }
        let mut url = parsed.to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        let ttl_secs = match text("ttl")? {
            None => DEFAULT_TTL_SECS,
            Some(t) => parse_duration(&t)
                .filter(|d| !d.is_zero() && d.as_secs() <= 365 * 86_400)
                .ok_or(format!(
                    "The upstream ttl {t:?} is not a duration such as 30s, 10m, 12h or 7d."
                ))?
                .as_secs(),
        };
        let (username, password, token) = (text("username")?, text("password")?, text("token")?);
        if token.is_some() && (username.is_some() || password.is_some()) {
            return Err("Give the upstream either a username and password or a token.".into());
        }
        Ok(Self {
            url,
            username,
            password,
            token,
            ttl_secs,
            keyring,
        })
    }

    /// The parsed keyring (`None` without one).
    ///
    /// # Errors
    /// A stored keyring that no longer parses (the sentence).
    pub fn keys(&self) -> Result<Option<crate::keyring::Keyring>, String> {
        self.keyring
            .as_deref()
            .map(crate::keyring::Keyring::parse)
            .transpose()
    }

    /// What the API shows: everything but the secrets.
    pub fn public_json(&self) -> Value {
        let auth = if self.token.is_some() {
            "bearer"
        } else if self.username.is_some() || self.password.is_some() {
            "basic"
        } else {
            "none"
        };
        let keyring = self.keys().ok().flatten().map(|k| k.fingerprints());
        json!({
            "url": self.url,
            "ttl": format!("{}s", self.ttl_secs),
            "auth": auth,
            "username": self.username,
            "keyring": keyring,
        })
    }

    /// The credentials go only to the upstream's own origin, not to a file host it links to.
    fn same_origin(&self, url: &str) -> bool {
        match (url::Url::parse(&self.url), url::Url::parse(url)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        }
    }
}

/// Why an upstream gave nothing usable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// Connecting, sending or reading failed, or timed out.
    #[error("{url} did not answer ({reason})")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An HTTP error status.
    #[error("{url} answered {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// The bytes are not what the index promised.
    #[error("{0}")]
    Invalid(String),
}

impl FetchError {
    /// Whether a stale copy may stand in (the upstream is down or failing, not refusing).
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Invalid(_) => false,
        }
    }
}

/// The HTTP client to upstreams (one per server: connections are pooled).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// A client with the proxy's timeouts.
    ///
    /// # Errors
    /// When the TLS set-up fails.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("artifactd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(Self { http })
    }

    /// `GET url` with the upstream's credentials (when it is the upstream's origin); a non-2xx
    /// answer is an error.
    ///
    /// # Errors
    /// [`FetchError`].
    pub async fn get(
        &self,
        up: &Upstream,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = self.http.get(url);
        if let Some(a) = accept {
            req = req.header(reqwest::header::ACCEPT, a);
        }
        if up.same_origin(url) {
            if let Some(t) = &up.token {
                req = req.bearer_auth(t);
            } else if up.username.is_some() || up.password.is_some() {
                req = req.basic_auth(
                    up.username.as_deref().unwrap_or_default(),
                    up.password.as_deref(),
                );
            }
        }
        let resp = req.send().await.map_err(|e| {
            crate::metrics::upstream_error("unreachable");
            FetchError::Unreachable {
                url: url.to_owned(),
                reason: crate::error_chain(&e),
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let err = FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            };
            if err.is_outage() {
                crate::metrics::upstream_error("server_error");
            }
            return Err(err);
        }
        Ok(resp)
    }

    /// `GET url` read whole (at most `limit` bytes): the body, its content type and the URL it
    /// came from after redirects.
    ///
    /// # Errors
    /// [`FetchError`]; a body over `limit` is [`FetchError::Invalid`].
    pub async fn get_bytes(
        &self,
        up: &Upstream,
        url: &str,
        accept: Option<&str>,
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        let mut resp = self.get(up, url, accept).await?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let final_url = resp.url().to_string();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > limit {
                        return Err(FetchError::Invalid(format!(
                            "{url} is larger than {limit} bytes"
                        )));
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    crate::metrics::upstream_error("unreachable");
                    return Err(FetchError::Unreachable {
                        url: url.to_owned(),
                        reason: crate::error_chain(&e),
                    });
                }
            }
        }
        Ok(Fetched {
            body,
            content_type,
            url: final_url,
        })
    }
}

/// A small upstream answer, read whole.
#[derive(Debug)]
pub struct Fetched {
    /// The bytes.
    pub body: Vec<u8>,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Where it came from (after redirects).
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn upstreams_are_checked_and_never_show_secrets() {
        let up = Upstream::from_json(&json!({
            "url": "https://pypi.org/simple", "token": "s3cret", "ttl": "1h"
        }))
        .unwrap();
        assert_eq!(up.url, "https://pypi.org/simple/");
        assert_eq!(up.ttl_secs, 3600);
        let shown = up.public_json().to_string();
        assert!(
            !shown.contains("s3cret") && shown.contains("bearer"),
            "{shown}"
        );
        assert!(up.same_origin("https://pypi.org/simple/x/"));
        assert!(!up.same_origin("https://files.pythonhosted.org/x.whl"));
        for bad in [
            json!({}),
            json!({"url": "ftp://x/"}),
            json!({"url": "https://x/?q=1"}),
            json!({"url": "https://x/", "ttl": "soon"}),
            json!({"url": "https://x/", "token": "t", "username": "u"}),
            json!({"url": "https://x/", "colour": "blue"}),
        ] {
            assert!(Upstream::from_json(&bad).is_err(), "{bad}");
        }
    }
}
