//! Publishing a dist: `Packages` (plain and `.gz`) per component and architecture, written
//! under `by-hash/SHA256/` names before the signed `Release` that lists them; the dist's state
//! (Release, InRelease, Release.gpg and the name → by-hash map) is switched in one write, last.
//!
//! Stanzas come from the catalog (computed once at upload), so publishing never reads package
//! files; an index whose content did not change keeps its by-hash files and is not recompressed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::{Error, FileRecord, ListQuery, RepoContext, Result, time};
use sha2::Digest as _;

/// Architectures announced by a dist that only has `Architecture: all` packages.
const DEFAULT_ARCHES: &[&str] = &["amd64", "arm64", "i386"];

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state file of a dist.
pub fn state_path(dist: &str) -> BlobPath {
    BlobPath::from(format!("dists/{dist}/state.json"))
}

/// Reads a dist's published state.
///
/// # Errors
/// Storage failures other than "not published".
pub async fn load_state(cx: &RepoContext, dist: &str) -> Result<Option<Value>> {
    match cx.blobs.get(&state_path(dist)).await {
        Ok(r) => {
            let bytes = r.bytes().await?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::internal("dist state is unreadable", e))
        }
        Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn component(r: &FileRecord) -> &str {
    r.meta
        .get("component")
        .and_then(Value::as_str)
        .unwrap_or("main")
}

pub fn arch(r: &FileRecord) -> &str {
    r.meta.get("arch").and_then(Value::as_str).unwrap_or("all")
}

/// One Packages stanza: the control paragraph plus what the repository computes.
pub fn stanza(r: &FileRecord) -> String {
    let control = r
        .meta
        .get("stanza")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!(
        "{control}\nFilename: {}\nSize: {}\nSHA256: {}\n",
        r.path, r.size, r.sha256
    )
}

/// `Packages.gz`. No `.xz`: apt reads gzip as well, and xz (preset 6) took ten times as long as
/// everything else in a publish of a large dist.
fn compress(text: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text)?;
    Ok(gz.finish()?)
}

/// Regenerates and signs one dist.
///
/// # Errors
/// Catalog, storage and signing failures.
pub async fn publish(cx: &RepoContext, dist: &str) -> Result<()> {
    let records = cx.catalog.list(ListQuery::all().in_scope(dist)).await?;
    if records.is_empty() {
        match cx.blobs.delete(&state_path(dist)).await {
            Ok(()) | Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let previous = load_state(cx, dist).await?;
    let prev_files = previous
        .as_ref()
        .and_then(|s| s.get("files"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let components: BTreeSet<&str> = records.iter().map(component).collect();
    let mut arches: BTreeSet<&str> = records.iter().map(arch).filter(|a| *a != "all").collect();
    if arches.is_empty() {
        arches.extend(DEFAULT_ARCHES);
    }
    let mut files: BTreeMap<String, Value> = BTreeMap::new();
    for comp in &components {
        for a in &arches {
            let mut selected: Vec<&FileRecord> = records
                .iter()
                .filter(|r| component(r) == *comp && (arch(r) == *a || arch(r) == "all"))
                .collect();
            selected.sort_by(|x, y| {
                (&x.name, &x.version, &x.path).cmp(&(&y.name, &y.version, &y.path))
            });
            let text: String = selected
                .iter()
                .map(|r| stanza(r))
                .collect::<Vec<_>>()
                .join("\n");
            let text = text.into_bytes();
            let rel = format!("{comp}/binary-{a}/Packages");
            let sha = hex(&sha2::Sha256::digest(&text));
            let unchanged = prev_files
                .get(&rel)
                .and_then(|v| v.get("sha256"))
                .and_then(Value::as_str)
                == Some(sha.as_str());
            if unchanged {
                for suffix in ["", ".gz"] {
                    let name = format!("{rel}{suffix}");
                    if let Some(v) = prev_files.get(&name) {
                        files.insert(name, v.clone());
                    }
                }
                continue;
            }
            let gz = compress(&text)?;
            for (suffix, body) in [("", text), (".gz", gz)] {
                let digest = hex(&sha2::Sha256::digest(&body));
                let blob = format!("dists/{dist}/{comp}/binary-{a}/by-hash/SHA256/{digest}");
                let size = body.len();
                cx.blobs
                    .put(
                        &BlobPath::from(blob.as_str()),
                        PutPayload::from(Bytes::from(body)),
                    )
                    .await?;
                files.insert(
                    format!("{rel}{suffix}"),
                    json!({ "sha256": digest, "size": size, "blob": blob }),
                );
            }
        }
    }
    let comps: Vec<&str> = components.into_iter().collect();
    let arch_list: Vec<&str> = arches.into_iter().collect();
    let mut release = format!(
        "Origin: artifactd\nLabel: {repo}\nSuite: {dist}\nCodename: {dist}\nDate: {date}\nArchitectures: {arches}\nComponents: {comps}\nDescription: artifactd repository {repo}, {dist}\nAcquire-By-Hash: yes\nSHA256:\n",
        repo = cx.repo,
        date = time::rfc2822(time::now_millis()),
        arches = arch_list.join(" "),
        comps = comps.join(" "),
    );
    for (name, v) in &files {
        let sha = v.get("sha256").and_then(Value::as_str).unwrap_or_default();
        let size = v.get("size").and_then(Value::as_u64).unwrap_or(0);
        release.push_str(&format!(" {sha} {size:>16} {name}\n"));
    }
    let inrelease = cx.signer.sign_cleartext(&release).await?;
    let release_gpg = cx.signer.sign_detached(release.as_bytes()).await?;
    let state = json!({
        "release": release,
        "inrelease": inrelease,
        "release_gpg": release_gpg,
        "components": comps,
        "architectures": arch_list,
        "files": files,
    });
    let body = serde_json::to_vec(&state).map_err(|e| Error::internal("dist state", e))?;
    cx.blobs
        .put(&state_path(dist), PutPayload::from(body))
        .await?;
    Ok(())
}
