//! Structural checks of a distribution's archive before anything is read from it, so that
//! pip, uv and every other zip or tar reader see the same files the server saw: no prepended or
//! trailing bytes, no duplicate names, local headers that agree with the central directory, no
//! links or paths leaving the install folder, supported compression only, and bounded sizes
//! against decompression bombs.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use artifactd_plugin_api::{Error, Result};

/// Largest inflated size of one member.
pub const MAX_MEMBER_BYTES: u64 = 4 << 30;
/// Largest inflated size of all members together.
pub const MAX_TOTAL_BYTES: u64 = 16 << 30;
/// Members larger than this must not compress better than [`MAX_RATIO`] : 1.
const RATIO_FLOOR: u64 = 64 << 20;
/// The compression ratio no real package file reaches (deflate tops out near 1032 : 1).
pub const MAX_RATIO: u64 = 250;
/// Most members an archive may have.
pub const MAX_MEMBERS: usize = 100_000;

fn bad(rule: impl Into<String>) -> Error {
    Error::invalid(rule)
}

/// A member name that stays inside the folder it is unpacked into: relative, no `..`, no
/// backslashes, drive letters or control characters.
fn check_member_name(name: &str, what: &str) -> Result<()> {
    let trimmed = name.strip_prefix("./").unwrap_or(name);
    let escapes = trimmed.starts_with('/')
        || trimmed.contains('\\')
        || trimmed.as_bytes().get(1) == Some(&b':')
        || trimmed.split('/').any(|seg| seg == "..")
        || trimmed.chars().any(char::is_control);
    if trimmed.is_empty() || escapes {
        return Err(bad(format!(
            "The {what} has a member {:?} whose path is absolute, contains '..', a backslash or control characters.",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// Checks a member's sizes and adds them to the running total.
fn check_sizes(
    name: &str,
    inflated: u64,
    compressed: u64,
    total: &mut u64,
    what: &str,
) -> Result<()> {
    if inflated > MAX_MEMBER_BYTES {
        return Err(bad(format!(
            "The {what} member {name:?} inflates to more than {MAX_MEMBER_BYTES} bytes."
        )));
    }
    if inflated > RATIO_FLOOR && inflated / compressed.max(1) > MAX_RATIO {
        return Err(bad(format!(
            "The {what} member {name:?} compresses more than {MAX_RATIO}:1, as only a decompression bomb does."
        )));
    }
    *total = total.saturating_add(inflated);
    if *total > MAX_TOTAL_BYTES {
        return Err(bad(format!(
            "The {what} inflates to more than {MAX_TOTAL_BYTES} bytes."
        )));
    }
    Ok(())
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Checks the structure of a zip archive (wheels, zip sdists, eggs).
///
/// # Errors
/// [`Error::InvalidInput`] naming the broken rule.
pub fn check_zip(path: &Path) -> Result<()> {
    const WHAT: &str = "zip archive";
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut z = zip::ZipArchive::new(File::open(path)?)
        .map_err(|e| bad(format!("The file is not a valid zip archive ({e}).")))?;
    if z.offset() != 0 {
        return Err(bad(
            "The zip archive has data before its first member (a prepended file).",
        ));
    }
    if z.has_duplicate_names() {
        return Err(bad("The zip archive has two members with the same name."));
    }
    if z.len() > MAX_MEMBERS {
        return Err(bad(format!(
            "The zip archive has more than {MAX_MEMBERS} members."
        )));
    }
    // The end-of-central-directory record and its comment end the file exactly.
    let tail = 22 + z.comment().len() as u64;
    let eocd = file_len
        .checked_sub(tail)
        .ok_or_else(|| bad("The zip archive is truncated."))?;
    let mut sig = [0u8; 4];
    file.seek(SeekFrom::Start(eocd))?;
    file.read_exact(&mut sig)?;
    if sig != [0x50, 0x4b, 0x05, 0x06] {
        return Err(bad(
            "The zip archive has data after its end-of-central-directory record.",
        ));
    }
    let mut spans: Vec<(u64, u64, String)> = Vec::with_capacity(z.len());
    let mut total = 0u64;
    for i in 0..z.len() {
        let entry = z
            .by_index_raw(i)
            .map_err(|e| bad(format!("The file is not a valid zip archive ({e}).")))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        check_member_name(&name, WHAT)?;
        if entry.encrypted() {
            return Err(bad(format!("The zip member {name:?} is encrypted.")));
        }
        if !matches!(
            entry.compression(),
            zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
        ) {
            return Err(bad(format!(
                "The zip member {name:?} uses the compression method {}; only stored and deflate are supported.",
                entry.compression()
            )));
        }
        if entry.is_symlink() {
            return Err(bad(format!("The zip member {name:?} is a symbolic link.")));
        }
        check_sizes(
            &name,
            entry.size(),
            entry.compressed_size(),
            &mut total,
            WHAT,
        )?;
        let start = entry.header_start();
        let data_start = entry
            .data_start()
            .ok_or_else(|| bad(format!("The zip member {name:?} has no local header.")))?;
        let raw_name = entry.name_raw().to_vec();
        let compressed = entry.compressed_size();
        let method = entry.compression();
        drop(entry);
        // The local header must name the same file with the same method as the directory.
        let mut local = [0u8; 30];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut local)
            .map_err(|_| bad("The zip archive is truncated inside a local header."))?;
        if local[..4] != [0x50, 0x4b, 0x03, 0x04] {
            return Err(bad(format!(
                "The zip central directory points {name:?} at something that is not a local header."
            )));
        }
        let name_len = le16(&local, 26);
        let mut local_name = vec![0u8; usize::try_from(name_len).unwrap_or(0)];
        file.read_exact(&mut local_name)
            .map_err(|_| bad("The zip archive is truncated inside a local header."))?;
        let local_method = le16(&local, 8);
        let central_method = match method {
            zip::CompressionMethod::Stored => 0,
            _ => 8,
        };
        if local_name != raw_name || local_method != central_method {
            return Err(bad(format!(
                "The zip member {name:?} has a local header that disagrees with the central directory."
            )));
        }
        spans.push((start, data_start.saturating_add(compressed), name));
    }
    // Members follow each other from offset 0 to the central directory, without gaps or overlaps
    // (a data descriptor of 12 to 24 bytes may follow a member's data).
    spans.sort_by_key(|s| s.0);
    let mut at = 0u64;
    for (start, end, name) in &spans {
        let slack = start.checked_sub(at);
        let fits = match slack {
            Some(0) => true,
            Some(n) => at != 0 && matches!(n, 12 | 16 | 20 | 24),
            None => false,
        };
        if !fits {
            return Err(bad(format!(
                "The zip member {name:?} overlaps another or follows a gap (not a plain zip archive)."
            )));
        }
        at = *end;
    }
    let slack = z.central_directory_start().checked_sub(at);
    if !matches!(slack, Some(0 | 12 | 16 | 20 | 24)) {
        return Err(bad(
            "The zip archive has bytes between its last member and its central directory.",
        ));
    }
    Ok(())
}

/// Checks every member of a gzip-compressed tar archive (sdists): regular files and folders
/// only, paths inside the archive, bounded sizes, and nothing after the archive.
///
/// # Errors
/// [`Error::InvalidInput`] naming the broken rule.
pub fn check_tar_gz(path: &Path) -> Result<()> {
    const WHAT: &str = "tar archive";
    let compressed = std::fs::metadata(path)?.len();
    let invalid = |e: std::io::Error| {
        bad(format!(
            "The file is not a valid gzip-compressed tar archive ({e})."
        ))
    };
    let gz = flate2::bufread::GzDecoder::new(BufReader::new(File::open(path)?));
    let mut archive = tar::Archive::new(gz);
    let mut total = 0u64;
    let mut seen = HashSet::new();
    {
        let entries = archive.entries().map_err(invalid)?;
        for (n, entry) in entries.enumerate() {
            if n >= MAX_MEMBERS {
                return Err(bad(format!(
                    "The tar archive has more than {MAX_MEMBERS} members."
                )));
            }
            let entry = entry.map_err(invalid)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            check_member_name(&name, WHAT)?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(bad(format!("The tar member {name:?} is a link.")));
            }
            if kind.is_gnu_sparse() {
                return Err(bad(format!("The tar member {name:?} is a sparse file.")));
            }
            if !(kind.is_file() || kind.is_dir() || kind.is_pax_global_extensions()) {
                return Err(bad(format!(
                    "The tar member {name:?} is neither a file nor a folder."
                )));
            }
            let size = entry.header().size().map_err(invalid)?;
            check_sizes(&name, size, compressed, &mut total, WHAT)?;
            let key = name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            if kind.is_file() && !seen.insert(key) {
                return Err(bad(format!(
                    "The tar archive has two members named {name:?}."
                )));
            }
        }
    }
    if total > RATIO_FLOOR && total / compressed.max(1) > MAX_RATIO {
        return Err(bad(format!(
            "The tar archive compresses more than {MAX_RATIO}:1, as only a decompression bomb does."
        )));
    }
    // What follows the tar end marker inside the gzip stream is padding; after the gzip stream
    // the file must end.
    let mut gz = archive.into_inner();
    std::io::copy(&mut (&mut gz).take(1 << 20), &mut std::io::sink()).map_err(invalid)?;
    let mut rest = gz.into_inner();
    if !rest.fill_buf()?.is_empty() {
        return Err(bad(
            "The file has data after its gzip stream (a second archive or trailing bytes).",
        ));
    }
    Ok(())
}
