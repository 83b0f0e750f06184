//! Debian source packages: a `.dsc` and the files it lists, uploaded together. Every listed
//! file must come with the size and checksums the `.dsc` gives, or nothing is stored. Each file
//! becomes a record in the pool folder of its source; the `.dsc`'s record carries the stanza of
//! `<component>/source/Sources`. A signed `.dsc` is stored as it came, signature included.

use artifactd_plugin_api::serde_json::{Value, json};
use artifactd_plugin_api::{Error, FileRecord, NewRecord, UploadedFile};

#[cfg(test)]
use crate::dsc::parse_dsc;
pub(crate) use crate::dsc::{Dsc, Listed, checksum_lines, digests, read, unsigned_text};

/// The meta `kind` of a `.dsc` record.
pub const DSC: &str = "dsc";
/// The meta `kind` of the other files of a source package.
pub const SOURCE_FILE: &str = "source-file";
/// The `arch` of every record of a source package.
pub const SOURCE_ARCH: &str = "source";

fn bad(rule: impl Into<String>) -> Error {
    Error::invalid(rule)
}

/// The pool folder of a source package's files.
pub fn pool_dir(component: &str, source: &str) -> String {
    format!("pool/{component}/{}/{source}", crate::pool_prefix(source))
}

/// The `.dsc` of an upload made of a source package, when it is one.
pub fn dsc_of<'a>(files: &[&'a UploadedFile]) -> Option<&'a UploadedFile> {
    files.iter().copied().find(|f| f.filename.ends_with(".dsc"))
}

/// The records of a source package upload: `dsc` and `files` (all files of the request),
/// checked against each other, for `component` of `dist`; the listed files named in `pooled`
/// may be missing (the pool holds them with the listed content).
///
/// # Errors
/// [`Error::InvalidInput`] for a `.dsc` that breaks a rule, a listed file that is missing or
/// has other bytes than listed, and a file that the `.dsc` does not list.
pub fn records(
    dsc_file: &UploadedFile,
    files: &[&UploadedFile],
    pooled: &[String],
    dist: &str,
    component: &str,
) -> Result<Vec<NewRecord>, Error> {
    if files
        .iter()
        .filter(|f| f.filename.ends_with(".dsc"))
        .count()
        != 1
    {
        return Err(bad(
            "Upload one source package per request: one .dsc and the files it lists.",
        ));
    }
    let dsc = read(dsc_file)?;
    let version_no_epoch = dsc
        .version
        .split_once(':')
        .map_or(dsc.version.as_str(), |(_, v)| v);
    let dsc_name = format!("{}_{version_no_epoch}.dsc", dsc.source);
    if dsc_file.filename != dsc_name {
        return Err(bad(format!(
            "The .dsc of {} {} is named {dsc_name:?}, not {:?}.",
            dsc.source,
            dsc.version,
            dsc_file.filename.chars().take(80).collect::<String>()
        )));
    }
    for f in files.iter().filter(|f| !f.filename.ends_with(".dsc")) {
        if !dsc.files.iter().any(|l| l.name == f.filename) {
            return Err(bad(format!(
                "The upload carries {:?}, which the .dsc does not list.",
                f.filename.chars().take(80).collect::<String>()
            )));
        }
    }
    let dir = pool_dir(component, &dsc.source);
    let (md5, sha1) = digests(&dsc_file.path)?;
    let own = Listed {
        name: dsc_name.clone(),
        size: dsc_file.size,
        md5,
        sha1: Some(sha1),
        sha256: dsc_file.sha256.clone(),
    };
    let mut out = Vec::new();
    for listed in &dsc.files {
        let Some(f) = files.iter().find(|f| f.filename == listed.name) else {
            if pooled.contains(&listed.name) {
                continue;
            }
            return Err(bad(format!(
                "The .dsc lists {:?}, which the upload does not carry; send every file it lists in the same request.",
                listed.name
            )));
        };
        crate::dsc::check_listed(
            f,
            &listed.name,
            listed.size,
            (&listed.md5, listed.sha1.as_deref(), &listed.sha256),
            ".dsc",
        )?;
        out.push(
            NewRecord::for_upload(
                f,
                format!("{dir}/{}", listed.name),
                &dsc.source,
                &dsc.source,
                &dsc.version,
            )
            .with_scope(dist)
            .with_meta(json!({
                "component": component,
                "arch": SOURCE_ARCH,
                "kind": SOURCE_FILE,
                "source": dsc.source,
            })),
        );
    }
    let stanza = sources_stanza(&dsc, &own, &dir);
    out.insert(
        0,
        NewRecord::for_upload(
            dsc_file,
            format!("{dir}/{dsc_name}"),
            &dsc.source,
            &dsc.source,
            &dsc.version,
        )
        .with_scope(dist)
        .with_meta(json!({
            "component": component,
            "arch": SOURCE_ARCH,
            "kind": DSC,
            "source": dsc.source,
            "binaries": dsc.binaries,
            "sources_stanza": stanza,
        })),
    );
    Ok(out)
}

/// The `Sources` stanza (without its blank line): the `.dsc`'s fields with `Source` renamed
/// `Package`, its checksum fields with the `.dsc` itself added, and `Directory`.
fn sources_stanza(dsc: &Dsc, own: &Listed, dir: &str) -> String {
    let mut out = String::new();
    for (k, v) in &dsc.fields {
        let k = if k.eq_ignore_ascii_case("Source") {
            "Package"
        } else {
            k
        };
        out.push_str(&format!("{k}: {v}\n"));
    }
    let all: Vec<&Listed> = std::iter::once(own).chain(&dsc.files).collect();
    out.push_str("Files:\n");
    for f in &all {
        out.push_str(&format!(" {} {} {}\n", f.md5, f.size, f.name));
    }
    if all.iter().all(|f| f.sha1.is_some()) {
        out.push_str("Checksums-Sha1:\n");
        for f in &all {
            out.push_str(&format!(
                " {} {} {}\n",
                f.sha1.as_deref().unwrap_or_default(),
                f.size,
                f.name
            ));
        }
    }
    out.push_str("Checksums-Sha256:\n");
    for f in &all {
        out.push_str(&format!(" {} {} {}\n", f.sha256, f.size, f.name));
    }
    out.push_str(&format!("Directory: {dir}"));
    out
}

/// Whether `r` is a `.dsc`'s record (listed in `Sources`).
pub fn is_dsc(r: &FileRecord) -> bool {
    r.meta.get("kind").and_then(Value::as_str) == Some(DSC)
}

/// The pool paths of the files a `.dsc` record lists (none for other records).
pub fn listed_paths(r: &FileRecord) -> Vec<String> {
    if !is_dsc(r) {
        return Vec::new();
    }
    listed_in(&stanza(r))
        .into_iter()
        .map(|(path, _)| path)
        .filter(|p| *p != r.path)
        .collect()
}

/// The `Sources` stanza of a `.dsc` record.
pub fn stanza(r: &FileRecord) -> String {
    r.meta
        .get("sources_stanza")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
        + "\n"
}

/// The pool path of a `Sources` stanza's `.dsc`: its key in a published chunk.
pub fn stanza_path(stanza: &str) -> Option<String> {
    let dir = stanza.lines().find_map(|l| l.strip_prefix("Directory: "))?;
    let dsc = stanza
        .lines()
        .skip_while(|l| !l.starts_with("Checksums-Sha256:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().nth(2))
        .find(|n| n.ends_with(".dsc"))?;
    Some(format!("{}/{dsc}", dir.trim()))
}

/// `path → sha256` of every file a `Sources` text lists.
pub fn listed_in(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let Some(dir) = stanza.lines().find_map(|l| l.strip_prefix("Directory: ")) else {
            continue;
        };
        for l in stanza
            .lines()
            .skip_while(|l| !l.starts_with("Checksums-Sha256:"))
            .skip(1)
            .take_while(|l| l.starts_with(' '))
        {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if let [sha, _, name] = parts.as_slice() {
                out.push((format!("{}/{name}", dir.trim()), (*sha).to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC_TEXT: &str = "Format: 3.0 (quilt)\nSource: hello\nBinary: hello, hello-doc\nArchitecture: any all\nVersion: 1.0-1\nMaintainer: A <a@example.org>\nPackage-List:\n hello deb misc optional arch=any\n hello-doc deb doc optional arch=all\nChecksums-Sha1:\n 0000000000000000000000000000000000000001 10 hello_1.0.orig.tar.gz\n 0000000000000000000000000000000000000002 20 hello_1.0-1.debian.tar.xz\nChecksums-Sha256:\n 00000000000000000000000000000000000000000000000000000000000000aa 10 hello_1.0.orig.tar.gz\n 00000000000000000000000000000000000000000000000000000000000000bb 20 hello_1.0-1.debian.tar.xz\nFiles:\n 0000000000000000000000000000000a 10 hello_1.0.orig.tar.gz\n 0000000000000000000000000000000b 20 hello_1.0-1.debian.tar.xz\n";

    #[test]
    fn a_dsc_parses_with_its_files() {
        let dsc = parse_dsc(DSC_TEXT).expect("parses");
        assert_eq!(dsc.source, "hello");
        assert_eq!(dsc.binaries, ["hello", "hello-doc"]);
        assert_eq!(dsc.files.len(), 2);
        assert_eq!(dsc.files[1].name, "hello_1.0-1.debian.tar.xz");
        assert_eq!(dsc.files[1].md5, "0000000000000000000000000000000b");
        assert!(dsc.fields.iter().all(|(k, _)| !k.starts_with("Checksums")));
        let list = dsc
            .fields
            .iter()
            .find(|(k, _)| k == "Package-List")
            .expect("kept");
        assert_eq!(
            list.1,
            "\n hello deb misc optional arch=any\n hello-doc deb doc optional arch=all"
        );
    }

    #[test]
    fn a_signed_dsc_is_read_without_its_armor() {
        let signed = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{}- -dash line\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n",
            DSC_TEXT
        );
        let text = unsigned_text(&signed).expect("unsigned");
        assert!(text.starts_with("Format: 3.0"));
        assert!(text.ends_with("-dash line\n"));
        let cut = signed.split("-----END").next().unwrap_or_default();
        assert!(unsigned_text(cut).is_err());
    }

    #[test]
    fn broken_dscs_are_refused_with_the_rule() {
        let cases = [
            (
                DSC_TEXT.replace("Source: hello", "Source: Hello"),
                "breaks Debian policy",
            ),
            (
                DSC_TEXT.replace("hello_1.0.orig.tar.gz", "../x.tar.gz"),
                "a source package's files",
            ),
            (
                DSC_TEXT.replace(
                    " 0000000000000000000000000000000a 10",
                    " 0000000000000000000000000000000a 11",
                ),
                "same size in Files",
            ),
            (DSC_TEXT.replace("Format: 3.0 (quilt)\n", ""), "no Format"),
            (
                DSC_TEXT.replace(
                    " 00000000000000000000000000000000000000000000000000000000000000aa 10",
                    " zz 10",
                ),
                "not hexadecimal",
            ),
        ];
        for (text, needle) in cases {
            let e = parse_dsc(&text).expect_err(needle).to_string();
            assert!(e.contains(needle), "{e} should say {needle:?}");
        }
    }

    #[test]
    fn a_sources_stanza_lists_the_dsc_and_reads_back() {
        let dsc = parse_dsc(DSC_TEXT).expect("parses");
        let own = Listed {
            name: "hello_1.0-1.dsc".into(),
            size: 5,
            md5: "m".into(),
            sha1: Some("s".into()),
            sha256: "cc".into(),
        };
        let stanza = sources_stanza(&dsc, &own, "pool/main/h/hello");
        assert!(
            stanza.starts_with("Format: 3.0 (quilt)\nPackage: hello\n"),
            "{stanza}"
        );
        assert!(
            stanza.contains("Checksums-Sha256:\n cc 5 hello_1.0-1.dsc\n 00"),
            "{stanza}"
        );
        assert_eq!(
            stanza_path(&stanza).as_deref(),
            Some("pool/main/h/hello/hello_1.0-1.dsc")
        );
        let listed = listed_in(&format!("{stanza}\n\n"));
        assert_eq!(listed.len(), 3);
        assert_eq!(
            listed[0],
            (
                "pool/main/h/hello/hello_1.0-1.dsc".to_owned(),
                "cc".to_owned()
            )
        );
    }
}
