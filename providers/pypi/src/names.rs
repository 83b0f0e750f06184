//! Project names (PEP 503 normalization) and distribution file names (wheel, sdist, egg).

use artifactd_plugin_api::{Error, Result};

use crate::version;

/// PEP 503: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A valid project name (core metadata spec): ASCII letters and digits at both ends, `.`, `_`
/// and `-` inside, at most 128 characters.
pub fn valid_project_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// The kind of distribution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistKind {
    /// `.whl`
    Wheel,
    /// `.tar.gz` source distribution.
    SdistTarGz,
    /// `.zip` source distribution.
    SdistZip,
    /// `.egg`
    Egg,
}

impl DistKind {
    /// The `filetype` of the upload protocol.
    pub fn filetype(self) -> &'static str {
        match self {
            Self::Wheel => "bdist_wheel",
            Self::SdistTarGz | Self::SdistZip => "sdist",
            Self::Egg => "bdist_egg",
        }
    }
}

/// What a distribution's file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistName {
    /// Which kind.
    pub kind: DistKind,
    /// The project name as spelled in the file name.
    pub name: String,
    /// The version as spelled in the file name.
    pub version: String,
}

fn invalid_name(filename: &str, rule: &str) -> Error {
    Error::invalid(format!(
        "Invalid distribution file name {filename:?}: {rule}."
    ))
}

fn tag_ok(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
}

/// Parses and checks a distribution file name.
///
/// # Errors
/// [`Error::InvalidInput`] naming the broken rule.
pub fn parse_filename(filename: &str) -> Result<DistName> {
    if filename.is_empty() || filename.len() > 255 {
        return Err(invalid_name(
            filename,
            "it must be 1 to 255 characters long",
        ));
    }
    if !filename
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'!'))
    {
        return Err(invalid_name(
            filename,
            "it may only contain ASCII letters, digits and '.', '_', '-', '+', '!' (no paths, spaces or control characters)",
        ));
    }
    let (kind, stem) = if let Some(s) = filename.strip_suffix(".whl") {
        (DistKind::Wheel, s)
    } else if let Some(s) = filename.strip_suffix(".tar.gz") {
        (DistKind::SdistTarGz, s)
    } else if let Some(s) = filename.strip_suffix(".zip") {
        (DistKind::SdistZip, s)
    } else if let Some(s) = filename.strip_suffix(".egg") {
        (DistKind::Egg, s)
    } else {
        return Err(invalid_name(
            filename,
            "accepted files are wheels (.whl), sdists (.tar.gz, .zip) and eggs (.egg)",
        ));
    };
    let (name, version) = match kind {
        DistKind::Wheel => {
            let parts: Vec<&str> = stem.split('-').collect();
            if !(parts.len() == 5 || parts.len() == 6) {
                return Err(invalid_name(
                    filename,
                    "a wheel is NAME-VERSION(-BUILD)?-PYTHON-ABI-PLATFORM.whl",
                ));
            }
            if parts.len() == 6 && !parts[2].starts_with(|c: char| c.is_ascii_digit()) {
                return Err(invalid_name(
                    filename,
                    "a wheel's build tag must start with a digit",
                ));
            }
            if !parts[parts.len() - 3..].iter().all(|t| tag_ok(t)) {
                return Err(invalid_name(
                    filename,
                    "a wheel's python, abi and platform tags are letters, digits, '_' and '.'",
                ));
            }
            if !parts[0]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            {
                return Err(invalid_name(
                    filename,
                    "a wheel's name part uses letters, digits, '_' and '.' only",
                ));
            }
            if parts[0].contains("__") {
                return Err(invalid_name(
                    filename,
                    "a wheel's name part escapes each run of '-', '_' and '.' as one '_' (no \"__\")",
                ));
            }
            (parts[0], parts[1])
        }
        DistKind::SdistTarGz | DistKind::SdistZip => stem.rsplit_once('-').ok_or_else(|| {
            invalid_name(
                filename,
                "an sdist is NAME-VERSION.tar.gz or NAME-VERSION.zip",
            )
        })?,
        DistKind::Egg => {
            let parts: Vec<&str> = stem.split('-').collect();
            if parts.len() < 2 || parts.len() > 4 {
                return Err(invalid_name(
                    filename,
                    "an egg is NAME-VERSION(-pyX.Y(-PLATFORM)?)?.egg",
                ));
            }
            (parts[0], parts[1])
        }
    };
    if !valid_project_name(name) {
        return Err(invalid_name(
            filename,
            "the project name must start and end with a letter or digit",
        ));
    }
    if version::canonical(version).is_none() {
        return Err(invalid_name(
            filename,
            &format!("{version:?} is not a PEP 440 version"),
        ));
    }
    Ok(DistName {
        kind,
        name: name.to_owned(),
        version: version.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("Foo.Bar__baz-Qux"), "foo-bar-baz-qux");
        assert_eq!(normalize("requests"), "requests");
    }

    #[test]
    fn file_names() {
        let w = parse_filename("demo_pkg-1.0.2-py3-none-any.whl").unwrap();
        assert_eq!(
            (w.kind, w.name.as_str(), w.version.as_str()),
            (DistKind::Wheel, "demo_pkg", "1.0.2")
        );
        assert_eq!(
            parse_filename("demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl")
                .unwrap()
                .version,
            "1.0"
        );
        assert_eq!(
            parse_filename("my-legacy-name-2.0.tar.gz").unwrap().name,
            "my-legacy-name"
        );
        assert_eq!(
            parse_filename("demo-1.0.zip").unwrap().kind,
            DistKind::SdistZip
        );
        assert_eq!(
            parse_filename("demo-1.0-py3.11.egg").unwrap().version,
            "1.0"
        );
        for bad in [
            "demo-1.0.exe",
            "demo.whl",
            "demo-1.0-py3-none.whl",
            "demo-1.0-x1-py3-none-any.whl",
            "../demo-1.0.tar.gz",
            "demo 1.0.tar.gz",
            "démo-1.0.tar.gz",
            "demo-notaversion.tar.gz",
            "-demo-1.0.tar.gz",
            "demo-1.0.tar.gz\n",
            "demo__pkg-1.0-py3-none-any.whl",
        ] {
            assert!(parse_filename(bad).is_err(), "{bad:?}");
        }
    }
}
