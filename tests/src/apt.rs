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
