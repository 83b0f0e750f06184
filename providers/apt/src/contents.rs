//! `<component>/Contents-<arch>` (+ `.gz`): which package installs which file, for `apt-file`.
//!
//! A package's file list is read from its `data.tar` once, at upload, and kept as a derived
//! blob named by the package's SHA-256 (its lines, `PATH  SECTION/PACKAGE`). A Contents file
//! lists the newest version of each package of its component and architecture (and
//! `Architecture: all`), in the chunks `Packages` uses, a package's lines together; a publish
//! after an upload rewrites only the chunks of the packages that changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom};
use std::path::Path;

use artifactd_plugin_api::{Error, FileRecord, ListQuery, RepoContext, Result};

use crate::bounded::Bounded;
use crate::index::{belongs, chunk_of, read_blob, render_chunk};
use crate::plain::Parts;

/// The most files a package's Contents lists.
const MAX_DATA_ENTRIES: usize = 500_000;
/// The most bytes of file names a package's Contents lists.
const MAX_DATA_NAMES: usize = 64 << 20;

/// The files a `.deb` installs (regular files and links of its `data.tar`, without the
/// leading `./`), for `Contents`. Read once, at upload; `None` for a compression the provider
/// does not read (bzip2, lzma), whose package is then left out of `Contents`.
///
/// # Errors
/// [`Error::InvalidInput`] for a data archive that is not a valid tar archive.
pub fn data_files(path: &Path) -> Result<Option<Vec<String>>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(8))?;
    let mut data = None;
    while let Some(m) = crate::deb::read_member(&mut f, len)? {
        if m.name.starts_with("data.tar") {
            data = Some(m);
            break;
        }
    }
    let Some(data) = data else {
        return Err(Error::invalid(
            "The third member of a .deb must be a data.tar archive.",
        ));
    };
    f.seek(SeekFrom::Start(data.offset))?;
    let raw = std::io::BufReader::new(f.take(data.size));
    let reader: Box<dyn Read> = match data.name.as_str() {
        "data.tar" => Box::new(raw),
        "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(raw)),
        "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new(raw)),
        "data.tar.zst" => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(raw).map_err(|e| {
                Error::invalid(format!("The data archive is not valid zstd ({e})."))
            })?)
        }
        _ => return Ok(None),
    };
    let invalid = |e: std::io::Error| {
        Error::invalid(format!(
            "The data archive is not a valid tar archive ({e})."
        ))
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    let mut names = 0usize;
    for entry in archive.entries().map_err(invalid)? {
        let entry = entry.map_err(invalid)?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let p = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = p.trim_start_matches("./").trim_start_matches('/');
        if name.is_empty() || name.split('/').any(|s| s == "..") || name.contains('\n') {
            continue;
        }
        names += name.len();
        if files.len() >= MAX_DATA_ENTRIES || names > MAX_DATA_NAMES {
            return Err(Error::invalid(format!(
                "The data archive lists more than {MAX_DATA_ENTRIES} files or {MAX_DATA_NAMES} bytes of names."
            )));
        }
        files.push(name.to_owned());
    }
    files.sort();
    files.dedup();
    Ok(Some(files))
}

/// File lists read at once by a full publish.
const READ_AHEAD: usize = 32;

/// A chunk's lines by package name; each entry's text ends in a newline.
pub type Chunk = BTreeMap<String, String>;

/// The folder of the packages' Contents lines.
pub const FOLDER: &str = "contents";

/// The Contents lines of packages by their blob (named by the package's SHA-256, so an entry
/// is never stale), as this node wrote or read them: a full publish, such as a promotion's
/// new dist, reads one per package.
#[derive(Debug)]
pub struct ListCache {
    lists: Bounded<String, Arc<str>>,
}

/// What [`ListCache`] holds at most.
const LIST_CACHE_BYTES: usize = 16 << 20;

impl Default for ListCache {
    fn default() -> Self {
        Self {
            lists: Bounded::new(LIST_CACHE_BYTES),
        }
    }
}

impl ListCache {
    fn get(&self, blob: &str) -> Option<Arc<str>> {
        self.lists.get(blob)
    }

    /// Keeps the lines of `blob`; everything is dropped when the cache is full.
    pub(crate) fn insert(&self, blob: &str, text: &str) {
        self.lists
            .insert(blob.to_owned(), Arc::from(text), blob.len() + text.len());
    }
}

/// The derived blob with the Contents lines of the package whose SHA-256 is `sha256`.
pub fn blob(sha256: &str) -> BlobPath {
    BlobPath::from(format!("{FOLDER}/{sha256}"))
}

/// Whether an index path is a Contents file.
pub fn is_contents(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with("Contents-"))
}

/// The Contents lines of a package installing `files`, at `location` (`SECTION/PACKAGE`).
pub fn lines(files: &[String], location: &str) -> String {
    let mut out = String::new();
    for f in files {
        // dak's layout: the name, padded, then the location.
        out.push_str(&format!("{f:<59} {location}\n"));
    }
    out
}

/// The location column of a package: `SECTION/PACKAGE`, the section as its control file
/// gives it (`contrib/net` keeps its area).
pub fn location(section: Option<&str>, package: &str) -> String {
    let section = section.map(str::trim).filter(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'+' | b'.' | b'_'))
    });
    format!("{}/{package}", section.unwrap_or("unknown"))
}

/// The entries of a published chunk, by the package each line's location names. `None` when
/// the text is not what publishing writes.
pub fn parse_chunk(text: &[u8]) -> Option<Chunk> {
    let text = std::str::from_utf8(text).ok()?;
    let mut chunk = Chunk::new();
    for line in text.split_inclusive('\n') {
        let location = line.trim_end().rsplit(' ').next()?;
        let package = location.rsplit('/').next()?;
        chunk.entry(package.to_owned()).or_default().push_str(line);
    }
    Some(chunk)
}

/// The digest under which a package version's file list is kept; `None` when its files were
/// not listed (a compression the provider does not read, or a record older than Contents).
fn listed_sha(r: &FileRecord) -> Option<String> {
    r.meta.get("contents").map(|_| r.sha256.clone())
}

/// The Contents lines of one package version (see [`listed_sha`]), with its key.
async fn read_lines(
    cx: &RepoContext,
    lists: &ListCache,
    key: String,
    sha: Option<String>,
) -> Result<(String, String)> {
    let Some(sha) = sha else {
        return Ok((key, String::new()));
    };
    let path = blob(&sha);
    if let Some(text) = lists.get(path.as_ref()) {
        return Ok((key, text.to_string()));
    }
    let text = read_blob(cx, &path)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if !text.is_empty() {
        lists.insert(path.as_ref(), &text);
    }
    Ok((key, text))
}

/// The records of one Contents file among `records`, newest version per package.
fn newest_by_package<'a>(
    records: impl IntoIterator<Item = &'a FileRecord>,
    comp: &str,
    a: &str,
) -> BTreeMap<&'a str, &'a FileRecord> {
    let mut out: BTreeMap<&str, &FileRecord> = BTreeMap::new();
    for r in records.into_iter().filter(|r| belongs(r, comp, a)) {
        match out.get(r.key.as_str()) {
            Some(have)
                if crate::deb::compare_versions(&have.version, &r.version)
                    != std::cmp::Ordering::Less => {}
            _ => {
                out.insert(&r.key, r);
            }
        }
    }
    out
}

/// The chunks of `comp/Contents-a` laid out from all records of the dist.
pub(crate) async fn full(
    cx: &RepoContext,
    records: &[FileRecord],
    comp: &str,
    a: &str,
    chunks: u64,
    lists: &ListCache,
) -> Result<Parts> {
    use artifactd_plugin_api::futures::{StreamExt as _, TryStreamExt as _};
    let mut split = vec![Chunk::new(); usize::try_from(chunks).unwrap_or(1)];
    // The file lists are read a few at a time: a full publish reads one per package.
    let listed: Vec<(String, Option<String>)> = newest_by_package(records, comp, a)
        .into_iter()
        .map(|(key, r)| (key.to_owned(), listed_sha(r)))
        .collect();
    let texts: Vec<(String, String)> = artifactd_plugin_api::futures::stream::iter(listed)
        .map(|(key, sha)| read_lines(cx, lists, key, sha))
        .buffered(READ_AHEAD)
        .try_collect()
        .await?;
    for (key, text) in texts {
        if let (false, Some(chunk)) = (text.is_empty(), split.get_mut(chunk_of(&key, chunks))) {
            chunk.insert(key, text);
        }
    }
    render(&split)
}

/// `parts` (the published `comp/Contents-a`) with the packages of `changed` listed anew;
/// `None` when a published chunk is not what publishing writes.
pub(crate) async fn apply(
    cx: &RepoContext,
    dist: &str,
    mut parts: Parts,
    changed: &[&FileRecord],
    (comp, a): (&str, &str),
    chunks: u64,
    lists: &ListCache,
) -> Result<Option<Parts>> {
    let keys: BTreeSet<&str> = changed.iter().map(|r| r.key.as_str()).collect();
    for key in keys {
        let i = chunk_of(key, chunks);
        let Some(mut chunk) = parts.text().get(i).and_then(|t| parse_chunk(t)) else {
            return Ok(None);
        };
        let versions = cx.catalog.list(ListQuery::key(key).in_scope(dist)).await?;
        chunk.remove(key);
        if let Some(r) = newest_by_package(&versions, comp, a).get(key) {
            let (key, text) = read_lines(cx, lists, key.to_owned(), listed_sha(r)).await?;
            if !text.is_empty() {
                chunk.insert(key, text);
            }
        }
        let (text, gz) = render_chunk(&chunk)?;
        parts.set(i, text, gz);
    }
    Ok(Some(parts))
}

fn render(split: &[Chunk]) -> Result<Parts> {
    let mut parts = Parts::default();
    for chunk in split {
        let (text, gz) = render_chunk(chunk)?;
        parts.push(text, gz);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_cache_keeps_lines_by_blob_until_it_is_full() {
        let cache = ListCache::default();
        cache.insert("contents/aa", "usr/bin/a   misc/a\n");
        assert_eq!(
            cache.get("contents/aa").as_deref(),
            Some("usr/bin/a   misc/a\n")
        );
        assert!(cache.get("contents/bb").is_none());
        let big = "x".repeat(LIST_CACHE_BYTES);
        cache.insert("contents/bb", &big);
        // Full: what was there is dropped, the new entry is kept.
        assert!(cache.get("contents/aa").is_none());
        assert!(cache.get("contents/bb").is_some());
    }

    #[test]
    fn a_chunk_reads_back_by_package() {
        let files = [
            "usr/bin/hello".to_owned(),
            "usr/share/doc/hello/README".to_owned(),
        ];
        let a = lines(&files, &location(Some("misc"), "hello"));
        let b = lines(
            &["usr/bin/x y".to_owned()],
            &location(Some("contrib/net"), "xy"),
        );
        let chunk = parse_chunk(format!("{a}{b}").as_bytes()).expect("parses");
        assert_eq!(chunk.keys().collect::<Vec<_>>(), ["hello", "xy"]);
        assert_eq!(chunk["hello"], a);
        assert!(chunk["xy"].ends_with(" contrib/net/xy\n"));
        assert_eq!(location(None, "p"), "unknown/p");
        assert_eq!(location(Some("bad section"), "p"), "unknown/p");
        assert!(is_contents("main/Contents-amd64") && !is_contents("main/binary-amd64/Packages"));
    }
}
