//! S3 start-up: the bucket is created when missing (object_store has no call for that), with one
//! request signed by AWS Signature Version 4.

use ring::{digest, hmac};

use crate::config::S3Config;
use crate::storage::StorageStartError;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// Creates the bucket of `cfg`; a bucket that already exists (and is ours) is fine.
///
/// # Errors
/// [`StorageStartError::S3`] when the endpoint is unreachable or refuses.
pub async fn ensure_bucket(cfg: &S3Config, virtual_hosted: bool) -> Result<(), StorageStartError> {
    let fail = |m: String| StorageStartError::S3(m);
    let endpoint =
        url::Url::parse(&cfg.endpoint).map_err(|e| fail(format!("bad endpoint: {e}")))?;
    let host = endpoint
        .host_str()
        .ok_or_else(|| fail("the endpoint has no host".to_owned()))?;
    let authority = match endpoint.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let (host_header, path) = if virtual_hosted {
        (format!("{}.{authority}", cfg.bucket), "/".to_owned())
    } else {
        (authority, format!("/{}", cfg.bucket))
    };
    let url = format!("{}://{host_header}{path}", endpoint.scheme());
    let body = if cfg.region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            cfg.region
        )
    };
    let (access, secret) = credentials(cfg);
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let day = now.format("%Y%m%d").to_string();
    let payload_hash = sha256_hex(body.as_bytes());
    let canonical = format!(
        "PUT\n{path}\n\nhost:{host_header}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_hash}"
    );
    let scope = format!("{day}/{}/s3/aws4_request", cfg.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = mac(format!("AWS4{secret}").as_bytes(), &day);
    let k_region = mac(&k_date, &cfg.region);
    let k_service = mac(&k_region, "s3");
    let k_signing = mac(&k_service, "aws4_request");
    let signature = hex(&mac(&k_signing, &to_sign));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| fail(format!("cannot build an HTTP client: {e}")))?;
    let resp = client
        .put(&url)
        .header("host", &host_header)
        .header("x-amz-date", &amz_date)
        .header("x-amz-content-sha256", &payload_hash)
        .header("authorization", auth)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "cannot reach {}: {}",
                cfg.endpoint,
                crate::error_chain(&e)
            ))
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
        if status.is_success() {
            tracing::info!(bucket = %cfg.bucket, "Created S3 bucket.");
        }
        return Ok(());
    }
    let code = element(&text, "Code").unwrap_or("no error code");
    let mut message = format!(
        "creating bucket {:?} at {} answered {status} ({code})",
        cfg.bucket, cfg.endpoint
    );
    if let Some(m) = element(&text, "Message") {
        message.push_str(&format!(": {m}"));
    }
    if let Some(expected) = expected_region(&text).filter(|r| *r != cfg.region) {
        message.push_str(&format!(
            "; the server expects region {expected:?}, not {:?}: set S3_REGION={expected} or add ?region={expected} to S3_URL",
            cfg.region
        ));
    } else if code == "AuthorizationHeaderMalformed" {
        message.push_str(&format!(
            "; the request was signed for region {:?}: set S3_REGION (or ?region= in S3_URL) to the region the server is configured with (Garage: s3_region in garage.toml)",
            cfg.region
        ));
    }
    Err(fail(message))
}

/// The text of the first `<name>` element of an S3 error body.
fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim()).filter(|t| !t.is_empty())
}

/// The region an S3 error body says the server expects: AWS names it in `<Region>`, and in
/// its message as "expecting 'R'".
fn expected_region(body: &str) -> Option<&str> {
    if let Some(r) = element(body, "Region") {
        return Some(r);
    }
    let message = element(body, "Message")?;
    let at = message.find("expecting '")? + "expecting '".len();
    let len = message[at..].find('\'')?;
    Some(&message[at..at + len]).filter(|r| !r.is_empty())
}

/// Access key and secret: from the URL, else the standard AWS environment variables.
pub fn credentials(cfg: &S3Config) -> (String, String) {
    if !cfg.access_key.is_empty() {
        return (cfg.access_key.clone(), cfg.secret_key.clone());
    }
    (
        std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_region_is_read_from_the_error_body() {
        let aws = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>";
        assert_eq!(expected_region(aws), Some("eu-west-1"));
        let message_only = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'garage'</Message></Error>";
        assert_eq!(expected_region(message_only), Some("garage"));
        let none = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        assert_eq!(expected_region(none), None);
        assert_eq!(element(none, "Code"), Some("AccessDenied"));
        assert_eq!(element("", "Code"), None);
    }
}
