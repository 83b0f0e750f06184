//! S3 start-up: the bucket is created when missing (object_store has no call for that), with
//! one request that object_store's own SigV4 signer authorizes (a presigned URL).

use object_store::aws::AmazonS3;
use object_store::signer::Signer as _;

use crate::config::S3Config;
use crate::storage::StorageStartError;

/// Creates the bucket of `cfg` through `store`; a bucket that already exists (and is ours) is
/// fine.
///
/// # Errors
/// [`StorageStartError::S3`] when the endpoint is unreachable or refuses.
pub async fn ensure_bucket(store: &AmazonS3, cfg: &S3Config) -> Result<(), StorageStartError> {
    let fail = |m: String| StorageStartError::S3(m);
    let url = store
        .signed_url(
            http::Method::PUT,
            &object_store::path::Path::from(""),
            std::time::Duration::from_secs(300),
        )
        .await
        .map_err(|e| fail(format!("cannot sign the bucket creation: {e}")))?;
    let body = if cfg.region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            cfg.region
        )
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| fail(format!("cannot build an HTTP client: {e}")))?;
    // An empty body goes without a length header, which some stores refuse (411): say
    // `Content-Length: 0` then.
    let mut request = client.put(url);
    if body.is_empty() {
        request = request.header(reqwest::header::CONTENT_LENGTH, "0");
    } else {
        request = request.body(body);
    }
    let resp = request.send().await.map_err(|e| {
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
