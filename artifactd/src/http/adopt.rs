//! Taking over existing repos in place (`artifactd import pypi|apt`): a pypiserver packages
//! folder, or a published APT repo (reprepro, aptly, another archive) read from a folder or a
//! URL. Every file goes through the normal upload flow, so it is checked as an upload is; a
//! file that is refused is reported and the rest goes on. The repo is published once, at the
//! end, not after each file.

use std::io::Read as _;
use std::path::Path;

use artifactd_plugin_api::DynProvider;
use http::StatusCode;
use sha2::Digest as _;

use super::ingest::{Flow, ingest};
use super::upload::SpooledFile;
use super::{ApiError, AppState, validate_repo_name};
use crate::auth::Auth;

/// Distribution file endings a pypiserver folder holds.
const PYPI_FILES: &[&str] = &[".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"];

/// Package file endings `import apt --from-dir` takes.
const APT_FILES: &[&str] = &[".deb", ".udeb"];

/// What an import did, for its report.
#[derive(Debug, Default)]
pub struct Adopted {
    /// Files stored.
    pub stored: usize,
    /// Files that were there already.
    pub present: usize,
    /// `file: why` of each file refused.
    pub refused: Vec<String>,
}

impl std::fmt::Display for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.refused {
            writeln!(f, "refused {r}")?;
        }
        write!(
            f,
            "imported {} file(s), {} already there, {} refused",
            self.stored,
            self.present,
            self.refused.len()
        )
    }
}

/// Where a published APT repo is read from.
#[derive(Debug)]
enum Source {
    Dir(std::path::PathBuf),
    Url(String, reqwest::Client),
}

impl Source {
    fn new(at: &str) -> Result<Self, ApiError> {
        if at.starts_with("http://") || at.starts_with("https://") {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(600))
                .build()
                .map_err(|e| ApiError::internal("cannot build an HTTP client", e))?;
            Ok(Self::Url(at.trim_end_matches('/').to_owned(), client))
        } else {
            Ok(Self::Dir(std::path::PathBuf::from(at)))
        }
    }

    /// A small file of the repo, whole; `None` when it is not there.
    async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, ApiError> {
        match self {
            Self::Dir(d) => match std::fs::read(d.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ApiError::bad_request(format!("Cannot read {rel}: {e}."))),
            },
            Self::Url(base, client) => {
                let url = format!("{base}/{rel}");
                let resp = client.get(&url).send().await.map_err(|e| {
                    ApiError::bad_request(format!(
                        "Cannot fetch {url}: {}.",
                        crate::error_chain(&e)
                    ))
                })?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !resp.status().is_success() {
                    return Err(ApiError::bad_request(format!(
                        "{url} answered {}.",
                        resp.status()
                    )));
                }
                let body = resp.bytes().await.map_err(|e| {
                    ApiError::bad_request(format!("Cannot read {url}: {}.", crate::error_chain(&e)))
                })?;
                Ok(Some(body.to_vec()))
            }
        }
    }

    /// A pool file into `temp`, streamed; its SHA-256 and size.
    async fn fetch(&self, rel: &str, temp: &Path) -> Result<(String, u64), String> {
        match self {
            Self::Dir(d) => hash_copy(&d.join(rel), temp),
            Self::Url(base, client) => {
                use tokio::io::AsyncWriteExt as _;
                let url = format!("{base}/{rel}");
                let mut resp = client
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("cannot fetch {url}: {}", crate::error_chain(&e)))?;
                let mut out = tokio::fs::File::create(temp)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut hasher = sha2::Sha256::new();
                let mut size = 0u64;
                while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    out.write_all(&chunk).await.map_err(|e| e.to_string())?;
                }
                out.flush().await.map_err(|e| e.to_string())?;
                Ok((hex::encode(hasher.finalize()), size))
            }
        }
    }
}

/// Copies `from` to `to`, hashing as it goes.
fn hash_copy(from: &Path, to: &Path) -> Result<(String, u64), String> {
    let mut input =
        std::fs::File::open(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let mut out = std::fs::File::create(to).map_err(|e| e.to_string())?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| e.to_string())?;
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Every file below `dir` whose name ends in one of `endings`, sorted.
fn files_below(dir: &Path, endings: &[&str]) -> Result<Vec<std::path::PathBuf>, ApiError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| ApiError::bad_request(format!("Cannot read {}: {e}.", d.display())))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| endings.iter().any(|end| n.ends_with(end)))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The value of field `name` in one deb822 paragraph.
fn field<'a>(paragraph: &'a str, name: &str) -> Option<&'a str> {
    paragraph.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl AppState {
    /// Uploads one local file (`temp`, with its hash and size) to `kind/name` as `/addpkg`
    /// would, with `params`.
    async fn adopt_one(
        &self,
        auth: &Auth,
        provider: &DynProvider,
        name: &str,
        file: SpooledFile,
        params: Vec<(String, String)>,
        done: &mut Adopted,
    ) -> Result<(), ApiError> {
        let filename = file.filename.clone();
        let base = self.task_base();
        match ingest(
            self,
            auth,
            &base,
            provider,
            name,
            None,
            params,
            vec![file],
            Flow::Bulk,
        )
        .await
        {
            Ok(i) if i.response.status() == StatusCode::CREATED => done.stored += 1,
            Ok(_) => done.present += 1,
            Err(e) if e.status() == StatusCode::CONFLICT => done.present += 1,
            Err(e) if e.status().is_client_error() => {
                done.refused
                    .push(format!("{filename}: {}", e.public_message()));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The one publish of an import, once its files are in.
    async fn publish_imported(
        &self,
        provider: &DynProvider,
        name: &str,
        done: &Adopted,
    ) -> Result<(), ApiError> {
        if done.stored == 0 {
            return Ok(());
        }
        let Some(row) = self.inner.db.repo(provider.kind(), name).await? else {
            return Ok(());
        };
        let auth = Auth::system("import");
        let cx = self.task_context(&auth, &row);
        self.reindex(provider, row.id, &cx, artifactd_plugin_api::IndexScope::All)
            .await
    }

    fn temp_file(&self) -> Result<tempfile::TempPath, ApiError> {
        Ok(tempfile::Builder::new()
            .prefix("import-")
            .tempfile_in(&self.inner.tmp_dir)
            .map_err(|e| ApiError::internal("cannot create a temporary file", e))?
            .into_temp_path())
    }

    /// Imports every distribution file below the pypiserver folder `dir` into `pypi/name`.
    ///
    /// # Errors
    /// A folder that cannot be read; database and storage failures.
    pub async fn adopt_pypi_dir(&self, name: &str, dir: &Path) -> Result<Adopted, ApiError> {
        self.adopt_dir("pypi", name, dir, PYPI_FILES, Vec::new())
            .await
    }

    /// Imports every `.deb` and `.udeb` below `dir` into `component` of `dist` of `apt/name`.
    ///
    /// # Errors
    /// A folder that cannot be read; database and storage failures.
    pub async fn adopt_apt_dir(
        &self,
        name: &str,
        dir: &Path,
        dist: &str,
        component: &str,
    ) -> Result<Adopted, ApiError> {
        let params = vec![
            ("dist".to_owned(), dist.to_owned()),
            ("component".to_owned(), component.to_owned()),
        ];
        self.adopt_dir("apt", name, dir, APT_FILES, params).await
    }

    /// Imports every file below `dir` whose name ends in one of `endings` into `kind/name`,
    /// each uploaded with `params`, and publishes once.
    async fn adopt_dir(
        &self,
        kind: &str,
        name: &str,
        dir: &Path,
        endings: &[&str],
        params: Vec<(String, String)>,
    ) -> Result<Adopted, ApiError> {
        validate_repo_name(name)?;
        let provider = self.inner.registry.get(kind)?.clone();
        let auth = Auth::system("import");
        let mut done = Adopted::default();
        for path in files_below(dir, endings)? {
            let filename = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let temp = self.temp_file()?;
            let (sha256, size) = hash_copy(&path, &temp).map_err(ApiError::bad_request)?;
            let file = SpooledFile {
                filename,
                temp,
                size,
                sha256,
            };
            self.adopt_one(&auth, &provider, name, file, params.clone(), &mut done)
                .await?;
        }
        self.publish_imported(&provider, name, &done).await?;
        Ok(done)
    }

    /// Imports dist `dist` of the published APT repo at `at` (a folder or a URL: the folder
    /// that holds `dists/` and `pool/`) into `apt/name`: every package its `Packages` files
    /// list, checked against their size and SHA-256; with `key`, the repo's old signing key
    /// (armored secret key and passphrase) signs it from then on.
    ///
    /// # Errors
    /// A repo that cannot be read, a key that cannot be used; database and storage failures.
    pub async fn adopt_apt(
        &self,
        name: &str,
        at: &str,
        dist: &str,
        key: Option<(String, Option<String>)>,
    ) -> Result<Adopted, ApiError> {
        validate_repo_name(name)?;
        let provider = self.inner.registry.get("apt")?.clone();
        let auth = Auth::system("import");
        let source = Source::new(at)?;
        let release = source
            .read(&format!("dists/{dist}/Release"))
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("{at} has no dists/{dist}/Release.")))?;
        let release = String::from_utf8_lossy(&release).into_owned();
        let words = |f: &str| -> Vec<String> {
            field(&release, f)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let mut done = Adopted::default();
        let mut seen = std::collections::BTreeSet::new();
        for comp in words("Components") {
            for arch in words("Architectures") {
                let base = format!("dists/{dist}/{comp}/binary-{arch}/Packages");
                let text = match source.read(&base).await? {
                    Some(t) => t,
                    None => match source.read(&format!("{base}.gz")).await? {
                        Some(gz) => {
                            let mut t = Vec::new();
                            flate2::read::MultiGzDecoder::new(&gz[..])
                                .read_to_end(&mut t)
                                .map_err(|e| {
                                    ApiError::bad_request(format!("{base}.gz is not gzip: {e}."))
                                })?;
                            t
                        }
                        None => continue,
                    },
                };
                let text = String::from_utf8_lossy(&text).into_owned();
                for stanza in text.split("\n\n") {
                    let (Some(file), Some(sha), Some(size)) = (
                        field(stanza, "Filename"),
                        field(stanza, "SHA256"),
                        field(stanza, "Size").and_then(|s| s.parse::<u64>().ok()),
                    ) else {
                        continue;
                    };
                    if file.split('/').any(|s| s == "..") || !seen.insert(file.to_owned()) {
                        continue;
                    }
                    let filename = file.rsplit('/').next().unwrap_or(file).to_owned();
                    let temp = self.temp_file()?;
                    match source.fetch(file, &temp).await {
                        Ok((got, got_size)) if got == sha && got_size == size => {
                            let f = SpooledFile {
                                filename,
                                temp,
                                size,
                                sha256: got,
                            };
                            let params = vec![
                                ("dist".to_owned(), dist.to_owned()),
                                ("component".to_owned(), comp.clone()),
                            ];
                            self.adopt_one(&auth, &provider, name, f, params, &mut done)
                                .await?;
                        }
                        Ok(_) => done.refused.push(format!(
                            "{file}: its size or SHA-256 is not the one Packages lists"
                        )),
                        Err(why) => done.refused.push(format!("{file}: {why}")),
                    }
                }
            }
        }
        if let Some((armored, passphrase)) = key {
            // Its publish signs with the old key.
            self.adopt_key(&provider, name, &armored, passphrase.as_deref())
                .await?;
        } else {
            self.publish_imported(&provider, name, &done).await?;
        }
        Ok(done)
    }

    /// Makes `armored` the signing key of `apt/name` alone (the key made at its first upload
    /// is retired) and publishes again with it.
    async fn adopt_key(
        &self,
        provider: &DynProvider,
        name: &str,
        armored: &str,
        passphrase: Option<&str>,
    ) -> Result<(), ApiError> {
        let row = self.inner.db.repo("apt", name).await?.ok_or_else(|| {
            ApiError::bad_request("Nothing was imported, so there is no repo to give the key to.")
        })?;
        let fingerprint = crate::keys::import_key(
            &self.inner.db,
            &self.inner.keys,
            row.id,
            armored,
            passphrase,
            0,
        )
        .await?;
        for k in crate::keys::list_keys(&self.inner.db, row.id).await? {
            if k.fingerprint != fingerprint {
                crate::keys::retire_key(&self.inner.db, &self.inner.keys, row.id, &k.fingerprint)
                    .await?;
            }
        }
        let auth = Auth::system("import");
        let cx = self.task_context(&auth, &row);
        self.reindex(provider, row.id, &cx, artifactd_plugin_api::IndexScope::All)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraph_fields_are_read_by_name() {
        let p = "Package: a\nFilename: pool/main/a/a_1_all.deb\nsize: 12\n";
        assert_eq!(field(p, "Filename"), Some("pool/main/a/a_1_all.deb"));
        assert_eq!(field(p, "Size"), Some("12"));
        assert_eq!(field(p, "SHA256"), None);
    }
}
