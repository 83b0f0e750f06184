//! `artifactd export` and `artifactd import`: repos moved between any two backend pairs, byte
//! for byte. An export is a folder:
//!
//! - `artifactd-export.json`: the format and the repos it holds;
//! - `catalog/<provider>/<name>/`: `repo.json` (the repo row), `files.jsonl` (its records, one
//!   per line), `key.json` (its signing keys), `proxy_entries.jsonl`, `blob_holds.jsonl` and
//!   `audit.jsonl`; `tokens.jsonl` when every repo is exported;
//! - `blobs/`: every content blob those rows refer to (`content/sha256/…`) and every derived
//!   file of the repos (`derived/<provider>/<name>/…`: published indexes, snapshots, metadata),
//!   under their storage keys.
//!
//! Rows carry no database ids, so an import gives them new ones in any database. An import
//! refuses a repo that exists already, before it writes anything.

use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use object_store::path::Path as BlobPath;
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::NotSet, ColumnTrait as _, EntityTrait, IntoActiveModel,
    QueryFilter as _, QueryOrder as _, Set,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::db::Db;
use crate::db::entities::{audit, blob_hold, file, proxy_entry, repo, signing_key, token};
use crate::storage::{BlobStore, StorageKey};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The export format this build writes and reads.
const FORMAT: u32 = 1;
const MANIFEST: &str = "artifactd-export.json";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    /// `provider/name`, sorted.
    repos: Vec<String>,
    /// Whether the server's tokens are in it (an export of every repo).
    tokens: bool,
}

/// A row as JSON without its database ids (`id`, `repo_id`), which mean nothing elsewhere.
fn without_ids<T: Serialize>(row: &T) -> Result<serde_json::Value, BoxError> {
    let mut v = serde_json::to_value(row)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("repo_id");
    }
    Ok(v)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BoxError> {
    std::fs::write(path, serde_json::to_vec_pretty(&without_ids(value)?)?)?;
    Ok(())
}

fn write_lines<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), BoxError> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rows {
        serde_json::to_writer(&mut out, &without_ids(r)?)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, BoxError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .enumerate()
    {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, BoxError> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// The folder of one repo's rows in an export.
fn catalog_dir(dir: &Path, provider: &str, name: &str) -> PathBuf {
    dir.join("catalog").join(provider).join(name)
}

/// Exports `names` (`provider/name`; every repo when empty) to the new folder `to`.
///
/// # Errors
/// A repo that does not exist, a folder that is not empty, database, storage and file errors.
pub async fn export(config: &Config, names: &[String], to: &Path) -> Result<String, BoxError> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(format!("{} is not empty: export into a new folder.", to.display()).into());
    }
    let db = Db::open(&config.database_url).await?;
    let blobs = BlobStore::open(&config.blobs).await?;
    let all = repo::Entity::find().all(db.conn()).await?;
    let rows: Vec<repo::Model> = if names.is_empty() {
        all
    } else {
        let mut rows = Vec::new();
        for n in names {
            let found = all
                .iter()
                .find(|r| format!("{}/{}", r.provider, r.name) == *n)
                .ok_or_else(|| format!("There is no repo {n:?} (name repos as PROVIDER/NAME)."))?;
            rows.push(found.clone());
        }
        rows
    };
    std::fs::create_dir_all(to)?;
    let mut shas = BTreeSet::new();
    let mut derived = 0usize;
    for row in &rows {
        let dir = catalog_dir(to, &row.provider, &row.name);
        std::fs::create_dir_all(&dir)?;
        write_json(&dir.join("repo.json"), row)?;
        // Rows in an order of their own, not the database's: the same repo exports the same
        // bytes from every backend (sorted here, as text collations differ between them).
        let mut files = file::Entity::find()
            .filter(file::Column::RepoId.eq(row.id))
            .all(db.conn())
            .await?;
        files.sort_by(|a, b| (&a.scope, &a.path).cmp(&(&b.scope, &b.path)));
        shas.extend(files.iter().map(|f| f.sha256.clone()));
        write_lines(&dir.join("files.jsonl"), &files)?;
        if let Some(key) = signing_key::Entity::find_by_id(row.id)
            .one(db.conn())
            .await?
        {
            write_json(&dir.join("key.json"), &key)?;
        }
        let mut entries = proxy_entry::Entity::find()
            .filter(proxy_entry::Column::RepoId.eq(row.id))
            .all(db.conn())
            .await?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        shas.extend(entries.iter().map(|e| e.sha256.clone()));
        write_lines(&dir.join("proxy_entries.jsonl"), &entries)?;
        let mut holds = blob_hold::Entity::find()
            .filter(blob_hold::Column::RepoId.eq(row.id))
            .all(db.conn())
            .await?;
        holds.sort_by(|a, b| (&a.tag, &a.sha256).cmp(&(&b.tag, &b.sha256)));
        shas.extend(holds.iter().map(|h| h.sha256.clone()));
        write_lines(&dir.join("blob_holds.jsonl"), &holds)?;
        let history = audit::Entity::find()
            .filter(audit::Column::Provider.eq(row.provider.clone()))
            .filter(audit::Column::Repo.eq(row.name.clone()))
            .order_by_asc(audit::Column::Id)
            .all(db.conn())
            .await?;
        write_lines(&dir.join("audit.jsonl"), &history)?;
        let prefix = StorageKey::Derived {
            provider: &row.provider,
            repo: &row.name,
        }
        .path();
        for key in blobs.keys_under(&prefix).await? {
            copy_out(&blobs, &key, to).await?;
            derived += 1;
        }
    }
    for sha in &shas {
        let key = StorageKey::Content(sha).path();
        if !copy_out(&blobs, &key, to).await? {
            return Err(format!(
                "The blob {sha} that a record refers to is missing; `artifactd fsck` names the record."
            )
            .into());
        }
    }
    let tokens = names.is_empty();
    if tokens {
        write_lines(
            &to.join("tokens.jsonl"),
            &token::Entity::find().all(db.conn()).await?,
        )?;
    }
    let mut repos: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r.provider, r.name))
        .collect();
    repos.sort();
    let n = repos.len();
    write_json(
        &to.join(MANIFEST),
        &Manifest {
            format: FORMAT,
            repos,
            tokens,
        },
    )?;
    Ok(format!(
        "exported {n} repo(s), {} content blob(s) and {derived} derived file(s) to {}",
        shas.len(),
        to.display()
    ))
}

/// Copies the blob `key` to its place below `to/blobs/`; `false` when it is missing.
async fn copy_out(blobs: &BlobStore, key: &BlobPath, to: &Path) -> Result<bool, BoxError> {
    let file = to.join("blobs").join(key.as_ref());
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(blobs.get_to_file(key, &file).await?)
}

/// Every file below `dir`, as its path relative to `dir` with `/` between segments.
fn walk(dir: &Path) -> Result<Vec<String>, BoxError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if !d.exists() {
            continue;
        }
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                todo.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(dir) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Imports the export in `from`: its repos (none may exist yet), their rows and blobs, and its
/// tokens (those not known yet).
///
/// # Errors
/// A repo that exists, an export this build cannot read, database, storage and file errors.
pub async fn import(config: &Config, from: &Path) -> Result<String, BoxError> {
    let manifest: Manifest = read_json(&from.join(MANIFEST))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "{} is export format {}; this build reads format {FORMAT}.",
            from.display(),
            manifest.format
        )
        .into());
    }
    let db = Db::open(&config.database_url).await?;
    let blobs = BlobStore::open(&config.blobs).await?;
    let mut rows = Vec::new();
    for name in &manifest.repos {
        let (provider, repo_name) = name
            .split_once('/')
            .ok_or_else(|| format!("{MANIFEST} names the repo {name:?}, not PROVIDER/NAME."))?;
        let row: repo::Model =
            read_json(&catalog_dir(from, provider, repo_name).join("repo.json"))?;
        if db.repo(&row.provider, &row.name).await?.is_some() {
            return Err(format!(
                "The repo {name} exists here already; nothing was imported (delete it first or import elsewhere)."
            )
            .into());
        }
        rows.push(row);
    }
    // Blobs first: a record never exists without its blob.
    let stored = walk(&from.join("blobs"))?;
    for rel in &stored {
        blobs
            .put_file(&BlobPath::from(rel.as_str()), &from.join("blobs").join(rel))
            .await?;
    }
    let mut files = 0usize;
    for row in rows {
        let dir = catalog_dir(from, &row.provider, &row.name);
        let mut am = row.clone().into_active_model().reset_all();
        am.id = NotSet;
        let new = am.insert(db.conn()).await?;
        let mut batch = Vec::new();
        for f in read_lines::<file::Model>(&dir.join("files.jsonl"))? {
            let mut am = f.into_active_model().reset_all();
            am.id = NotSet;
            am.repo_id = Set(new.id);
            batch.push(am);
            files += 1;
            if batch.len() == 500 {
                file::Entity::insert_many(std::mem::take(&mut batch))
                    .exec(db.conn())
                    .await?;
            }
        }
        if !batch.is_empty() {
            file::Entity::insert_many(batch).exec(db.conn()).await?;
        }
        if dir.join("key.json").exists() {
            let key: signing_key::Model = read_json(&dir.join("key.json"))?;
            let mut am = key.into_active_model().reset_all();
            am.repo_id = Set(new.id);
            am.insert(db.conn()).await?;
        }
        for e in read_lines::<proxy_entry::Model>(&dir.join("proxy_entries.jsonl"))? {
            let mut am = e.into_active_model().reset_all();
            am.id = NotSet;
            am.repo_id = Set(new.id);
            am.insert(db.conn()).await?;
        }
        for h in read_lines::<blob_hold::Model>(&dir.join("blob_holds.jsonl"))? {
            let mut am = h.into_active_model().reset_all();
            am.id = NotSet;
            am.repo_id = Set(new.id);
            am.insert(db.conn()).await?;
        }
        for a in read_lines::<audit::Model>(&dir.join("audit.jsonl"))? {
            let mut am = a.into_active_model().reset_all();
            am.id = NotSet;
            am.insert(db.conn()).await?;
        }
    }
    let mut tokens = 0usize;
    if manifest.tokens {
        for t in read_lines::<token::Model>(&from.join("tokens.jsonl"))? {
            let known = token::Entity::find()
                .filter(token::Column::TokenHash.eq(t.token_hash.clone()))
                .one(db.conn())
                .await?
                .is_some();
            if !known {
                let mut am = t.into_active_model().reset_all();
                am.id = NotSet;
                am.insert(db.conn()).await?;
                tokens += 1;
            }
        }
    }
    db.repos_changed();
    Ok(format!(
        "imported {} repo(s), {files} record(s), {} blob(s) and {tokens} token(s) from {}",
        manifest.repos.len(),
        stored.len(),
        from.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_travel_as_json_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = vec![
            token::Model {
                id: 3,
                name: "ci".into(),
                token_hash: "h".into(),
                scope: "write".into(),
                repos: "[]".into(),
                created_at: 1,
                expires_at: None,
                revoked_at: Some(2),
            };
            2
        ];
        let path = dir.path().join("t.jsonl");
        write_lines(&path, &rows).expect("write");
        let back = read_lines::<token::Model>(&path).expect("read");
        assert_eq!(back[0].id, 0, "ids stay behind");
        assert_eq!(back[1].name, "ci");
        assert!(
            read_lines::<token::Model>(&dir.path().join("none"))
                .expect("none")
                .is_empty()
        );
        std::fs::create_dir_all(dir.path().join("b/c")).expect("dirs");
        std::fs::write(dir.path().join("b/c/d"), b"x").expect("file");
        std::fs::write(dir.path().join("b/e"), b"x").expect("file");
        assert_eq!(walk(&dir.path().join("b")).expect("walk"), ["c/d", "e"]);
    }
}
