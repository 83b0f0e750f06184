//! `Contents-<arch>` per component: file lists read from each package's `data.tar` at upload,
//! published with the dist and found by `apt-file` (private APT configuration with the
//! apt-file package's index targets).

use artifactd_tests::{Apt, Server, dpkg_deb, run, tool};

const REPO: &str = "/repo/apt/files";

fn upload(s: &Server, package: &str, version: &str, arch: &str, section: &str) {
    let work = s.scratch(&format!("debs-{package}-{version}"));
    let (name, bytes) = dpkg_deb(
        &work,
        package,
        version,
        arch,
        &format!("Section: {section}\n"),
    );
    let component = section.split_once('/').map_or("main", |(c, _)| c);
    let r = s.addpkg(
        &format!("provider=apt&reponame=files&dist=stable&component={component}"),
        &name,
        &bytes,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// `comp/Contents-amd64.gz`, inflated.
fn contents(s: &Server, comp: &str) -> String {
    let gz = s
        .get(&format!("{REPO}/dists/stable/{comp}/Contents-amd64.gz"))
        .body;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
        .expect("Contents-amd64.gz inflates");
    text
}

#[test]
fn apt_file_finds_the_files_of_the_repos_packages() {
    let s = Server::start();
    upload(&s, "hello", "1.0", "amd64", "misc");
    upload(&s, "helper-data", "1.0", "all", "contrib/utils");
    let release = s.get(&format!("{REPO}/dists/stable/Release")).text();
    for listed in [
        " main/Contents-amd64\n",
        " main/Contents-amd64.gz\n",
        " contrib/Contents-amd64.gz\n",
    ] {
        assert!(release.contains(listed), "{listed:?} in {release}");
    }
    let main = contents(&s, "main");
    assert!(
        main.lines()
            .any(|l| l.starts_with("usr/share/hello/README ") && l.ends_with(" misc/hello")),
        "{main}"
    );
    assert!(
        contents(&s, "contrib").contains(" contrib/utils/helper-data\n"),
        "Architecture: all is in every architecture's Contents"
    );

    tool("apt-file");
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    std::fs::copy(
        "/etc/apt/apt.conf.d/50apt-file.conf",
        apt.root().join("etc/apt/apt.conf.d/50apt-file.conf"),
    )
    .expect("apt-file's index targets");
    let key = apt.key_path("files.gpg");
    std::fs::write(&key, s.get(&format!("{REPO}/pubkey.gpg")).body).expect("key");
    let opts = format!("signed-by={}", key.display());
    apt.add_source(
        "files",
        &opts,
        &s.url(&format!("{REPO}/")),
        "stable",
        "main contrib",
    );
    let out = apt.update();
    assert!(
        out.contains("main amd64 Contents (deb)"),
        "apt-get fetched Contents: {out}"
    );
    let search = |pattern: &str| {
        run(tool("apt-file")
            .env("APT_CONFIG", apt.root().join("apt.conf"))
            .args(["search", pattern]))
    };
    let found = search("usr/share/hello/README");
    assert!(found.contains("hello: /usr/share/hello/README"), "{found}");
    assert!(search("helper-data/README").contains("helper-data: /usr/share/helper-data/README"));

    // A new version replaces the old one's lines; a new package shows after the next update
    // (an incremental publish).
    upload(&s, "hello", "1.1", "amd64", "misc");
    upload(&s, "world", "2.0", "amd64", "misc");
    let main = contents(&s, "main");
    assert_eq!(main.matches(" misc/hello\n").count(), 1, "{main}");
    apt.update();
    assert!(search("usr/share/world/README").contains("world: /usr/share/world/README"));

    // A deleted package leaves Contents.
    let r = s.delete_as(
        Some(&s.token),
        &format!("{REPO}/pool/main/w/world/world_2.0_amd64.deb"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!contents(&s, "main").contains("misc/world"));
}
