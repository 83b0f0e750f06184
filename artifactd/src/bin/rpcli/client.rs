//! The HTTP client of rpcli: JSON calls and streamed uploads, failures as one line.

use std::fs::File;
use std::io::{Cursor, IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::Cli;

pub(crate) struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(cli: &Cli) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            base: cli.server.trim_end_matches('/').to_owned(),
            token: cli.token.clone(),
            agent,
        }
    }

    fn finish(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<Value> {
        let mut resp = resp.with_context(|| format!("{what}: the server did not answer"))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
        if !status.is_success() {
            let reason = body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| text.trim().to_owned());
            bail!("{what}: {} {reason}", status.as_u16());
        }
        Ok(body)
    }

    pub(crate) fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let data = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let req = req
            .body(data.into_bytes())
            .context("building the request")?;
        Self::finish(self.agent.run(req), &format!("{method} {path}"))
    }

    /// Streams one file as the multipart field `f` of `/addpkg`.
    /// Uploads `files` in one multipart form, streamed from disk; the first names the upload.
    pub(crate) fn upload(&self, query: &str, files: &[PathBuf]) -> Result<Value> {
        let boundary = "rpcli-boundary-4f1c2d9e8a7b";
        let mut parts: Vec<Box<dyn Read + Send>> = Vec::new();
        let (mut length, mut size) = (0u64, 0u64);
        let mut names = Vec::new();
        for file in files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a file name", file.display()))?;
            let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
            let len = f.metadata()?.len();
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                name.replace('"', "")
            );
            length += head.len() as u64 + len + 2;
            size += len;
            parts.push(Box::new(Cursor::new(head.into_bytes())));
            parts.push(Box::new(f));
            parts.push(Box::new(Cursor::new(b"\r\n".to_vec())));
            names.push(name.to_owned());
        }
        let name = names.first().context("no file to upload")?.clone();
        let tail = format!("--{boundary}--\r\n");
        length += tail.len() as u64;
        parts.push(Box::new(Cursor::new(tail.into_bytes())));
        // A progress bar (bytes, rate, ETA) on a terminal; scripts get the result line only.
        let bar = if std::io::stdout().is_terminal() {
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .context("progress bar template")?
            .progress_chars("=> ");
            indicatif::ProgressBar::with_draw_target(
                Some(size),
                indicatif::ProgressDrawTarget::stdout(),
            )
            .with_style(style)
            .with_message(name.clone())
        } else {
            indicatif::ProgressBar::hidden()
        };
        let body = bar.wrap_read(Chained(parts.into_iter().collect()));
        let mut req = self
            .agent
            .post(format!("{}/addpkg?{query}", self.base))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Content-Length", length.to_string())
            // The server answers a refusal (no token, bad repo) before the body is sent.
            .header("Expect", "100-continue");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let result = Self::finish(
            req.send(ureq::SendBody::from_owned_reader(body)),
            &format!("upload {name}"),
        );
        bar.finish_and_clear();
        result
    }
}

/// Readers read one after the other.
struct Chained(std::collections::VecDeque<Box<dyn Read + Send>>);

impl Read for Chained {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(r) = self.0.front_mut() {
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.0.pop_front();
        }
        Ok(0)
    }
}

/// The files a Debian source package's `.dsc` lists, next to it: what `rpcli upload` sends
/// along with it.
pub(crate) fn dsc_companions(dsc: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(dsc).with_context(|| format!("cannot read {}", dsc.display()))?;
    let dir = dsc.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let mut in_files = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        if !line.starts_with(' ') {
            in_files = line.trim_end() == "Checksums-Sha256:";
            continue;
        }
        if in_files && let Some(name) = line.split_whitespace().nth(2) {
            if name.contains('/') {
                bail!(
                    "{}: lists {name:?}, which is not a file name",
                    dsc.display()
                );
            }
            let path = dir.join(name);
            if !path.is_file() {
                bail!("{} lists {name}, which is not next to it", dsc.display());
            }
            out.push(path);
        }
    }
    if out.is_empty() {
        bail!("{}: no Checksums-Sha256 list of files", dsc.display());
    }
    Ok(out)
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One line per element of the array `list` of a JSON answer: its `fields`, joined by `sep`.
pub fn rows(answer: &serde_json::Value, list: &str, fields: &[&str], sep: &str) -> String {
    answer[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    fields
                        .iter()
                        .map(|f| item[*f].as_str().unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(sep)
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
