//! File-name and version grammars on arbitrary text: PyPI dist file names, PEP 440 and PEP 503,
//! Debian package names and versions, and control paragraphs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(dist) = artifactd_pypi::parse_filename(text) {
        // A parsed name is never empty and normalizes idempotently.
        let n = artifactd_pypi::normalize(&dist.name);
        assert_eq!(artifactd_pypi::normalize(&n), n);
    }
    if let Some(c) = artifactd_pypi::canonical_version(text) {
        // The canonical form is canonical.
        assert_eq!(
            artifactd_pypi::canonical_version(&c).as_deref(),
            Some(c.as_str())
        );
    }
    let _ = artifactd_apt::valid_package_name(text);
    let _ = artifactd_apt::valid_version(text);
    let _ = artifactd_apt::parse_control(text);
});
