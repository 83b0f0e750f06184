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
    let code = text
        .split("<Code>")
        .nth(1)
        .and_then(|t| t.split("</Code>").next())
        .unwrap_or("no error code");
    Err(fail(format!(
        "creating bucket {:?} at {} answered {status} ({code})",
        cfg.bucket, cfg.endpoint
    )))
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
