//! `apt-get` with a private configuration, and `.deb` files built by `dpkg-deb`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run;

/// `apt-get` with a private configuration below one folder: its own state, cache, sources,
/// keyrings and status file. The machine's apt set-up is never read or touched.
#[derive(Debug)]
pub struct Apt {
    root: PathBuf,
}

impl Apt {
    /// A fresh apt root in `root`, for `arches` (the first is the native one).
    pub fn new(root: &Path, arches: &[&str]) -> Self {
        for d in [
            "etc/apt/sources.list.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/auth.conf.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
            "keys",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("apt dir");
        }
        std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
        std::fs::write(root.join("etc/apt/sources.list"), "").expect("sources");
        let r = root.display();
        let list: Vec<String> = arches.iter().map(|a| format!("\"{a}\";")).collect();
        let conf = format!(
            "Dir \"{r}/\";\nDir::State \"{r}/var/lib/apt/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Cache \"{r}/var/cache/apt/\";\nDir::Etc \"{r}/etc/apt/\";\nDir::Log \"{r}/var/log/apt/\";\nDir::Bin::dpkg \"/usr/bin/dpkg\";\nAPT::Architecture \"{}\";\nAPT::Architectures {{ {} }};\nAPT::Sandbox::User \"root\";\nDebug::NoLocking \"true\";\nAcquire::Languages \"none\";\nAcquire::Retries \"0\";\nAcquire::http::Proxy \"DIRECT\";\n",
            arches[0],
            list.join(" ")
        );
        std::fs::write(root.join("apt.conf"), conf).expect("apt.conf");
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds a `deb` line for `uri` with `signed-by` the key file `key` (in `keys/`).
    pub fn add_source(
        &self,
        name: &str,
        line_options: &str,
        uri: &str,
        dist: &str,
        components: &str,
    ) {
        std::fs::write(
            self.root
                .join(format!("etc/apt/sources.list.d/{name}.list")),
            format!("deb [{line_options}] {uri} {dist} {components}\n"),
        )
        .expect("source");
    }

    /// Adds a `deb-src` line like [`Apt::add_source`]'s `deb` line.
    pub fn add_source_src(
        &self,
        name: &str,
        line_options: &str,
        uri: &str,
        dist: &str,
        components: &str,
    ) {
        std::fs::write(
            self.root
                .join(format!("etc/apt/sources.list.d/{name}-src.list")),
            format!("deb-src [{line_options}] {uri} {dist} {components}\n"),
        )
        .expect("source");
    }

    /// A path in `keys/`.
    pub fn key_path(&self, file: &str) -> PathBuf {
        self.root.join("keys").join(file)
    }

    /// `apt-get ARGS` with this configuration.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", self.root.join("apt.conf"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        c
    }

    /// `apt-get update` that fails on any error or warning; returns its output.
    pub fn update(&self) -> String {
        let out = run(self.cmd().args(["update", "--error-on=any"]));
        assert!(
            !out.contains("W:") && !out.contains("E:"),
            "apt-get update warned:\n{out}"
        );
        out
    }

    /// `apt-get install --download-only -y PKGS`; returns the downloaded files' folder.
    pub fn download(&self, pkgs: &[&str]) -> PathBuf {
        run(self
            .cmd()
            .args([
                "install",
                "--download-only",
                "-y",
                "--no-install-recommends",
            ])
            .args(pkgs));
        self.root.join("var/cache/apt/archives")
    }

    /// `apt-cache policy PKG`.
    pub fn policy(&self, pkg: &str) -> String {
        let mut c = Command::new("apt-cache");
        c.env("APT_CONFIG", self.root.join("apt.conf"))
            .args(["policy", pkg]);
        run(&mut c)
    }
}

/// Builds a .deb with `dpkg-deb --build` from a tiny folder; returns (file name, bytes).
pub fn dpkg_deb(
    work: &Path,
    package: &str,
    version: &str,
    arch: &str,
    extra_control: &str,
) -> (String, Vec<u8>) {
    dpkg_deb_with(work, package, version, arch, extra_control, "gzip")
}

/// [`dpkg_deb`] with a compressor for `dpkg-deb -Z` (`gzip`, `xz`, `zstd`, `none`).
pub fn dpkg_deb_with(
    work: &Path,
    package: &str,
    version: &str,
    arch: &str,
    extra_control: &str,
    compressor: &str,
) -> (String, Vec<u8>) {
    let dir = work.join(format!("{package}-{version}-{arch}").replace(':', "_"));
    std::fs::create_dir_all(dir.join("DEBIAN")).expect("DEBIAN");
    std::fs::create_dir_all(dir.join(format!("usr/share/{package}"))).expect("payload dir");
    std::fs::write(
        dir.join(format!("usr/share/{package}/README")),
        format!("{package} {version}\n"),
    )
    .expect("payload");
    std::fs::write(
        dir.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: artifactd tests <tests@example.invalid>\n{extra_control}Description: {package} for the tests\n Built with dpkg-deb.\n"
        ),
    )
    .expect("control");
    let version_file = version.split_once(':').map_or(version, |(_, v)| v);
    let out = work.join(format!("{package}_{version_file}_{arch}.deb"));
    run(crate::tool("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compressor}"), "--build"])
        .arg(&dir)
        .arg(&out));
    let bytes = std::fs::read(&out).expect("read deb");
    (
        out.file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned(),
        bytes,
    )
}

/// Builds a Debian source package with `dpkg-source -b` in `work`: format `3.0 (quilt)` with an
/// upstream tarball when `version` has a Debian revision (made once per `work` folder and
/// upstream version, as revisions share it), else `3.0 (native)`. Returns the
/// `.dsc`'s path; the files it lists are next to it.
pub fn dpkg_source(work: &Path, source: &str, version: &str) -> PathBuf {
    let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
    let native = upstream == version;
    let tree = work.join(format!("{source}-{upstream}"));
    std::fs::create_dir_all(tree.join("debian/source")).expect("debian dir");
    std::fs::write(
        tree.join("README"),
        format!("{source} {upstream}: upstream sources.\n"),
    )
    .expect("upstream file");
    // One upstream tarball serves every Debian revision built in `work`.
    if !native
        && !work
            .join(format!("{source}_{upstream}.orig.tar.gz"))
            .exists()
    {
        run(Command::new("tar")
            .current_dir(work)
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "-czf",
            ])
            .arg(format!("{source}_{upstream}.orig.tar.gz"))
            .arg(format!("{source}-{upstream}/README")));
    }
    let files = [
        (
            "debian/source/format",
            if native {
                "3.0 (native)\n"
            } else {
                "3.0 (quilt)\n"
            }
            .to_owned(),
        ),
        (
            "debian/control",
            format!(
                "Source: {source}\nSection: misc\nPriority: optional\nMaintainer: artifactd tests <tests@example.invalid>\nBuild-Depends: debhelper-compat (= 13)\nStandards-Version: 4.6.2\n\nPackage: {source}\nArchitecture: any\nDescription: {source} for the tests\n Built from source.\n"
            ),
        ),
        (
            "debian/changelog",
            format!(
                "{source} ({version}) unstable; urgency=medium\n\n  * Test release.\n\n -- artifactd tests <tests@example.invalid>  Mon, 07 Dec 2026 12:00:00 +0000\n"
            ),
        ),
        (
            "debian/rules",
            "#!/usr/bin/make -f\n%:\n\tdh $@\n".to_owned(),
        ),
        ("debian/copyright", "Test data.\n".to_owned()),
    ];
    for (path, text) in files {
        std::fs::write(tree.join(path), text).expect("debian file");
    }
    run(crate::tool("dpkg-source")
        .current_dir(work)
        .args(["--build"])
        .arg(format!("{source}-{upstream}")));
    work.join(format!("{source}_{version}.dsc"))
}

/// Makes the `.changes` of an upload with `dpkg-genchanges`, as `dpkg-buildpackage` does after
/// a build: the source package [`dpkg_source`] built in `work` for `version`, the binary
/// packages `debs` next to it (made with [`dpkg_deb`] for the source's own package name and
/// `amd64`) and a `.buildinfo` from `dpkg-genbuildinfo`, for the dist `dist`. The upstream
/// tarball is included for a first revision (`-1`) only, as `dpkg-buildpackage` does by
/// default. Returns its path.
pub fn dpkg_changes(work: &Path, version: &str, dist: &str, debs: &[&str]) -> PathBuf {
    let dsc = std::fs::read_dir(work)
        .expect("work folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("_{version}.dsc")))
        })
        .expect("the .dsc of that version");
    let source = dsc
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('_').next())
        .expect("source name")
        .to_owned();
    let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
    let tree = work.join(format!("{source}-{upstream}"));
    // The tree holds the version being uploaded.
    let changelog = std::fs::read_to_string(tree.join("debian/changelog")).expect("changelog");
    let first = changelog.lines().next().unwrap_or_default();
    std::fs::write(
        tree.join("debian/changelog"),
        changelog.replacen(
            first,
            &format!("{source} ({version}) {dist}; urgency=medium"),
            1,
        ),
    )
    .expect("changelog");
    let _ = std::fs::remove_file(tree.join("debian/files"));
    for deb in debs {
        run(crate::tool("dpkg-distaddfile")
            .current_dir(&tree)
            .args([deb, "misc", "optional"]));
    }
    run(crate::tool("dpkg-genbuildinfo")
        .current_dir(&tree)
        .arg("--build=source,any"));
    let out = work.join(format!("{source}_{version}_amd64.changes"));
    let orig = if version.ends_with("-1") {
        "-sa"
    } else {
        "-sd"
    };
    run(crate::tool("dpkg-genchanges")
        .current_dir(&tree)
        .args(["--build=source,any", orig])
        .arg(format!("-O{}", out.display())));
    out
}
