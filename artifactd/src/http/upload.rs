//! Streaming multipart intake: the file goes to a temporary file, hashed and size-checked as the
//! bytes arrive; text fields are collected with bounded sizes. Nothing is held whole in memory.

use std::path::Path;

use axum::body::Body;
use futures_util::TryStreamExt as _;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use sha2::{Digest as _, Sha256};
use tempfile::TempPath;

use super::body::BodyTimeout;
use super::error::ApiError;

/// Bytes of an upload written between two background flushes to disk.
const WRITEBACK_BYTES: u64 = 8 << 20;
/// Received chunks waiting for the spool writer (each at most hyper's read buffer).
const SPOOL_QUEUE: usize = 16;

/// Text fields may not exceed this many bytes each.
const MAX_FIELD_BYTES: usize = 1 << 20;
/// Nor this many in all.
const MAX_FIELDS_BYTES: usize = 8 << 20;

/// The spooled file of an upload.
#[derive(Debug)]
pub struct SpooledFile {
    /// The client's file name.
    pub filename: String,
    /// The temporary file, removed on drop.
    pub temp: TempPath,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// A spooled multipart body.
#[derive(Debug, Default)]
pub struct Spooled {
    /// Text fields, in order.
    pub fields: Vec<(String, String)>,
    /// The file parts, in order.
    pub files: Vec<SpooledFile>,
}

/// What to accept.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// Largest file.
    pub max_bytes: u64,
    /// The one field the files must come in, if the protocol names it.
    pub file_field: Option<&'a str>,
    /// How many files one form may carry (a Debian source package is several).
    pub max_files: usize,
}

/// Hashes and writes the chunks of one upload to `file` until the sender is done, then makes the
/// file durable; returns the lower-case hex SHA-256. Large files are flushed to disk while they
/// arrive, so that the final fdatasync (the file is durable before it is acknowledged) has
/// little left.
fn spool_file(
    mut file: std::fs::File,
    mut chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<String> {
    use std::io::Write as _;
    let mut hasher = Sha256::new();
    let mut unsynced = 0u64;
    let mut writeback: Option<std::thread::JoinHandle<std::io::Result<()>>> = None;
    while let Some(chunk) = chunks.blocking_recv() {
        hasher.update(&chunk);
        file.write_all(&chunk)?;
        unsynced += chunk.len() as u64;
        if unsynced >= WRITEBACK_BYTES && writeback.as_ref().is_none_or(|w| w.is_finished()) {
            if let Some(w) = writeback.take() {
                w.join()
                    .map_err(|_| std::io::Error::other("the flush thread panicked"))??;
            }
            let f = file.try_clone()?;
            writeback = Some(std::thread::spawn(move || f.sync_data()));
            unsynced = 0;
        }
    }
    if let Some(w) = writeback {
        w.join()
            .map_err(|_| std::io::Error::other("the flush thread panicked"))??;
    }
    file.sync_data()?;
    Ok(hex::encode(hasher.finalize()))
}

/// The sentence for a body that failed while it was read.
fn body_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    match BodyTimeout::of(e) {
        Some(BodyTimeout::TooSlow(rate)) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The upload was too slow: the request body arrived at less than {rate} bytes per second."
            ),
        ),
        Some(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "The upload stalled: the request body sent nothing for too long.",
        ),
        None => ApiError::bad_request("The request body ended before it was complete."),
    }
}

/// Reads a raw request body (a `PUT` of one file) into a temporary file, hashed and
/// size-checked as the bytes arrive.
///
/// # Errors
/// 413 past `max_bytes` (declared or sent), 408 for a stalled body, 400 for one cut short.
pub async fn spool_raw(
    headers: &HeaderMap,
    body: Body,
    tmp_dir: &Path,
    max_bytes: u64,
    filename: String,
) -> Result<SpooledFile, ApiError> {
    if headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|declared| declared > max_bytes)
    {
        return Err(too_large(max_bytes));
    }
    let named = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(tmp_dir)
        .map_err(|e| ApiError::internal("cannot create a temporary file", e))?;
    let (std_file, temp) = named.into_parts();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SPOOL_QUEUE);
    let writer = tokio::task::spawn_blocking(move || spool_file(std_file, rx));
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| body_error(&e))?;
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(too_large(max_bytes));
        }
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let sha256 = writer
        .await
        .map_err(|e| ApiError::internal("cannot write the temporary file", e))?
        .map_err(|e| ApiError::internal("cannot write the temporary file", e))?;
    Ok(SpooledFile {
        filename,
        temp,
        size,
        sha256,
    })
}

/// Reads and drops a request body, up to `max_bytes`: a client that sends a whole file before
/// it reads the answer (dput) then gets the answer instead of a reset connection.
pub async fn drain(body: Body, max_bytes: u64) {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
        seen += chunk.len() as u64;
        if seen > max_bytes {
            break;
        }
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The upload exceeds the server's limit of {limit} bytes."),
    )
}

fn multipart_error(e: multer::Error, limit: u64) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large(limit)
        }
        multer::Error::StreamReadFailed(e) if BodyTimeout::of(e.as_ref()).is_some() => {
            let sentence = match BodyTimeout::of(e.as_ref()) {
                Some(BodyTimeout::TooSlow(rate)) => format!(
                    "The upload was too slow: the request body arrived at less than {rate} bytes per second."
                ),
                _ => "The upload stalled: the request body sent nothing for too long.".to_owned(),
            };
            ApiError::new(StatusCode::REQUEST_TIMEOUT, sentence)
        }
        multer::Error::StreamReadFailed(_) => {
            ApiError::bad_request("The request body ended before the multipart form was complete.")
        }
        other => ApiError::bad_request(format!("The multipart form is malformed: {other}.")),
    }
}

impl super::AppState {
    /// [`spool`] into the server's temporary folder, under its upload size limit.
    ///
    /// # Errors
    /// As [`spool`].
    pub async fn spool_form(
        &self,
        headers: &HeaderMap,
        body: Body,
        file_field: Option<&str>,
        max_files: usize,
    ) -> Result<Spooled, ApiError> {
        let limits = Limits {
            max_bytes: self.inner.config.max_upload_bytes,
            file_field,
            max_files,
        };
        spool(headers, body, &self.inner.tmp_dir, limits).await
    }
}

/// Reads a `multipart/form-data` body.
///
/// # Errors
/// 400 for a body that is not multipart or is malformed, for more files than expected and for
/// a file in an unexpected field; 413 past the size limit (per file and for all files
/// together), detected while streaming.
pub async fn spool(
    headers: &HeaderMap,
    body: Body,
    tmp_dir: &Path,
    limits: Limits<'_>,
) -> Result<Spooled, ApiError> {
    let expected = limits.file_field.unwrap_or("f");
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::bad_request(format!(
            "Send the package as multipart/form-data with the file in the field {expected:?}."
        ))
    })?;
    let slack = MAX_FIELDS_BYTES as u64 + (1 << 20);
    // A body declared larger than any acceptable form is refused before a byte of it is read.
    if let Some(declared) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && declared > limits.max_bytes.saturating_add(slack)
    {
        return Err(too_large(limits.max_bytes));
    }
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.max_bytes.saturating_add(slack))
            .per_field(limits.max_bytes.saturating_add(1)),
    );
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut out = Spooled::default();
    let mut text_bytes = 0usize;
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limits.max_bytes))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                if let Some(want) = limits.file_field
                    && name != want
                {
                    return Err(ApiError::bad_request(format!(
                        "Unexpected file in the form field {name:?}; send the package in the field {want:?}."
                    )));
                }
                if out.files.len() >= limits.max_files {
                    return Err(ApiError::bad_request(if limits.max_files == 1 {
                        "The form carries more than one file; upload one file per request."
                            .to_owned()
                    } else {
                        format!(
                            "The form carries more than {} files; upload at most that many per request.",
                            limits.max_files
                        )
                    }));
                }
                let before: u64 = out.files.iter().map(|f| f.size).sum();
                let named = tempfile::Builder::new()
                    .prefix("upload-")
                    .tempfile_in(tmp_dir)
                    .map_err(|e| ApiError::internal("cannot create a temporary file", e))?;
                let (std_file, temp) = named.into_parts();
                // Hashing and writing run on a blocking thread while this task receives and
                // parses the next bytes: on two cores the two halves overlap.
                let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SPOOL_QUEUE);
                let writer = tokio::task::spawn_blocking(move || spool_file(std_file, rx));
                let mut size = 0u64;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(e, limits.max_bytes))?
                {
                    size += chunk.len() as u64;
                    if before + size > limits.max_bytes {
                        return Err(too_large(limits.max_bytes));
                    }
                    if tx.send(chunk).await.is_err() {
                        // The writer stopped: its error is the answer.
                        break;
                    }
                }
                drop(tx);
                let sha256 = writer
                    .await
                    .map_err(|e| ApiError::internal("cannot write the temporary file", e))?
                    .map_err(|e| ApiError::internal("cannot write the temporary file", e))?;
                out.files.push(SpooledFile {
                    filename,
                    temp,
                    size,
                    sha256,
                });
            }
            None => {
                let mut value = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(e, limits.max_bytes))?
                {
                    if value.len() + chunk.len() > MAX_FIELD_BYTES {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "The form field {name:?} is larger than {MAX_FIELD_BYTES} bytes."
                            ),
                        ));
                    }
                    value.extend_from_slice(&chunk);
                }
                text_bytes += value.len();
                if text_bytes > MAX_FIELDS_BYTES {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("The form's text fields exceed {MAX_FIELDS_BYTES} bytes in all."),
                    ));
                }
                let value = String::from_utf8(value).map_err(|_| {
                    ApiError::bad_request(format!("The form field {name:?} is not valid UTF-8."))
                })?;
                out.fields.push((name, value));
            }
        }
    }
    if out.files.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Missing the multipart field {expected:?} with the package file."
        )));
    }
    Ok(out)
}
