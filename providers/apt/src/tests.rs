//! Unit tests of the provider through the plugin API's test host.

use artifactd_plugin_api::Catalog as _;
use artifactd_plugin_api::testing::{Kit, Sample, TestHost, conformance};
use sha2::Digest as _;

use super::*;
use crate::testing::{Compression, Deb};

fn sample(d: &Deb, params: &[(&str, &str)]) -> Sample {
    let (f, b) = d.build();
    Sample::new(&f, b, params)
}

#[tokio::test]
async fn conforms() {
    conformance(
        Arc::new(AptProvider::default()),
        Kit {
            first: sample(
                &Deb::new("alpha", "1.0-1", "amd64"),
                &[("dist", "stable"), ("name", "alpha")],
            ),
            second: sample(&Deb::new("beta", "2.0", "all"), &[("dist", "stable")]),
            first_changed: sample(
                &Deb::new("alpha", "1.0-1", "amd64").payload(b"other"),
                &[("dist", "stable")],
            ),
        },
    )
    .await;
}

#[tokio::test]
async fn publishes_packages_and_release() {
    let host = TestHost::new(Arc::new(AptProvider::default()));
    for d in [
        Deb::new("hello", "1.0", "amd64").compression(Compression::Xz),
        Deb::new("hello", "1.0", "arm64").compression(Compression::None),
        Deb::new("docs", "2:1.0-1", "all").line("Depends: hello (>= 1.0)"),
    ] {
        let (f, b) = d.build();
        host.upload("r", &f, &b, &[("dist", "bookworm")])
            .await
            .unwrap();
    }
    let (_, release) = host.get("r", "dists/bookworm/Release").await.unwrap();
    let release = String::from_utf8_lossy(&release).into_owned();
    assert!(
        release.contains("Suite: bookworm\nCodename: bookworm\n"),
        "{release}"
    );
    assert!(
        release.contains("Architectures: amd64 arm64\n"),
        "{release}"
    );
    assert!(
        release.contains("main/binary-amd64/Packages.gz"),
        "{release}"
    );
    let (_, packages) = host
        .get("r", "dists/bookworm/main/binary-amd64/Packages")
        .await
        .unwrap();
    let packages = String::from_utf8_lossy(&packages).into_owned();
    assert!(
        packages.contains("Package: docs\nVersion: 2:1.0-1\nArchitecture: all"),
        "{packages}"
    );
    assert!(
        packages.contains("Filename: pool/main/h/hello/hello_1.0_amd64.deb"),
        "{packages}"
    );
    assert!(!packages.contains("arm64"), "{packages}");
    let (_, inrelease) = host.get("r", "dists/bookworm/InRelease").await.unwrap();
    assert!(String::from_utf8_lossy(&inrelease).contains("BEGIN PGP SIGNED MESSAGE"));
    let e = host
        .upload("r", "x.deb", b"!<arch>\nbroken", &[("dist", "bookworm")])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let (f, b) = Deb::new("hello", "1.1", "amd64").build();
    let e = host.upload("r", &f, &b, &[]).await.unwrap_err();
    assert!(e.to_string().contains("dist"), "{e}");
}

/// Packages and Packages.gz of `dist`'s `main/binary-<arch>`; the gzip's members read as one
/// stream must give the plain file.
async fn packages(host: &TestHost, arch: &str) -> (Vec<u8>, Vec<u8>) {
    use std::io::Read as _;
    let base = format!("dists/stable/main/binary-{arch}/Packages");
    let plain = host.get("r", &base).await.unwrap().1.to_vec();
    let gz = host
        .get("r", &format!("{base}.gz"))
        .await
        .unwrap()
        .1
        .to_vec();
    let mut unpacked = Vec::new();
    flate2::read::MultiGzDecoder::new(gz.as_slice())
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain, "Packages.gz holds Packages");
    // Both are served by hash, as Release lists them.
    for body in [&plain, &gz] {
        let digest: String = sha2::Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = format!("dists/stable/main/binary-{arch}/by-hash/SHA256");
        let (_, served) = host.get("r", &format!("{dir}/{digest}")).await.unwrap();
        assert_eq!(&served.to_vec(), body);
    }
    (plain, gz)
}

async fn put(host: &TestHost, d: Deb) {
    let (f, b) = d.build();
    host.upload("r", &f, &b, &[("dist", "stable")])
        .await
        .unwrap();
}

async fn publish(host: &TestHost) -> index::Published {
    index::publish(&host.context("r"), "stable", false, &Default::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn incremental_publishes_equal_full_ones() {
    let provider = Arc::new(AptProvider::default());
    let host = TestHost::new(provider.clone());
    for i in 0..150 {
        let arch = if i % 3 == 0 { "all" } else { "amd64" };
        put(
            &host,
            Deb::new(&format!("p{}", i / 2), &format!("1.{i}"), arch),
        )
        .await;
    }
    // Lay the dist out in chunks for 150 packages, then change it one upload at a time.
    host.reindex("r").await.unwrap();
    assert_eq!(publish(&host).await, index::Published::Unchanged);
    host.set_overwrite("r", true);
    let changes = [
        Deb::new("new-one", "1.0", "amd64"),
        Deb::new("new-all", "2.0", "all").line("Depends: new-one"),
        Deb::new("p3", "1.7", "amd64").payload(b"replaced bytes"),
        Deb::new("p0", "1.0", "all").payload(b"replaced too"),
    ];
    for d in changes {
        let (f, b) = d.build();
        host.upload("r", &f, &b, &[("dist", "stable")])
            .await
            .unwrap();
        assert_eq!(
            provider.published.lock().unwrap().last(),
            Some(&index::Published::Changes)
        );
        let st = index::load_state(&host.context("r"), "stable")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(st.chunks, 4);
        assert_eq!(
            st.count,
            host.catalog("r")
                .count(ListQuery::all().in_scope("stable"))
                .await
                .unwrap()
        );
    }
    put(&host, Deb::new("last", "1.0", "amd64")).await;
    let (plain, gz) = packages(&host, "amd64").await;
    let text = String::from_utf8_lossy(&plain).into_owned();
    assert_eq!(text.matches("Package: ").count(), 153, "{text}");
    assert!(text.contains("Package: new-all\nVersion: 2.0"));
    assert!(gz.windows(2).filter(|w| w == &[0x1f, 0x8b]).count() >= 4);
    let replaced = sha2::Sha256::digest(
        Deb::new("p3", "1.7", "amd64")
            .payload(b"replaced bytes")
            .build()
            .1,
    );
    assert!(text.contains(&format!(
        "SHA256: {}",
        replaced
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )));
    let release = host.get("r", "dists/stable/Release").await.unwrap().1;
    host.reindex("r").await.unwrap();
    assert_eq!(
        packages(&host, "amd64").await,
        (plain, gz),
        "same bytes as a full publish"
    );
    let again = host.get("r", "dists/stable/Release").await.unwrap().1;
    let files = |r: &[u8]| {
        String::from_utf8_lossy(r)
            .lines()
            .filter(|l| l.starts_with(' '))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(files(&release), files(&again));
}

#[tokio::test]
async fn a_dist_whose_last_package_goes_is_removed_with_its_index_files() {
    let host = TestHost::new(Arc::new(AptProvider::default()));
    // The by-hash name of the amd64 Packages.gz that Release lists.
    let gz_by_hash = async || {
        let release = host.get("r", "dists/stable/Release").await.unwrap().1;
        let sha = String::from_utf8_lossy(&release)
            .lines()
            .find(|l| l.ends_with(" main/binary-amd64/Packages.gz"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        format!("dists/stable/main/binary-amd64/by-hash/SHA256/{sha}")
    };
    put(&host, Deb::new("tool", "1.0", "amd64")).await;
    let first = gz_by_hash().await;
    put(&host, Deb::new("tool", "1.1", "amd64")).await;
    let second = gz_by_hash().await;
    assert_ne!(first, second);
    // The first index is retired, not gone yet: clients of the old InRelease read it.
    assert!(host.get("r", &first).await.is_ok());
    put(&host, Deb::new("other", "1.0", "amd64")).await;
    let catalog = host.catalog("r");
    for path in [
        "pool/main/t/tool/tool_1.0_amd64.deb",
        "pool/main/t/tool/tool_1.1_amd64.deb",
    ] {
        assert!(catalog.delete("stable", path).await.unwrap());
    }
    // A dist that still has a package keeps its files.
    assert_eq!(publish(&host).await, index::Published::Full);
    let last = gz_by_hash().await;
    assert!(host.get("r", &last).await.is_ok());
    assert!(
        catalog
            .delete("stable", "pool/main/o/other/other_1.0_amd64.deb")
            .await
            .unwrap()
    );
    assert_eq!(publish(&host).await, index::Published::Full);
    for path in [
        "dists/stable/InRelease",
        "dists/stable/Release",
        "dists/stable/main/binary-amd64/Packages.gz",
        &first,
        &second,
        &last,
    ] {
        assert!(host.get("r", path).await.is_err(), "{path} is still served");
    }
    assert!(
        index::load_state(&host.context("r"), "stable")
            .await
            .unwrap()
            .is_none()
    );
    // An upload brings the dist back.
    put(&host, Deb::new("tool", "2.0", "amd64")).await;
    assert!(String::from_utf8_lossy(&packages(&host, "amd64").await.0).contains("Version: 2.0"));
}

/// A record of `tool` inserted behind the provider's back (no publish follows).
async fn insert_behind(host: &TestHost, version: &str) {
    let path = format!("pool/main/t/tool/tool_{version}_amd64.deb");
    let stanza = format!("Package: tool\nVersion: {version}\nArchitecture: amd64");
    host.catalog("r")
        .insert(
            NewRecord::new(&path, "tool", "tool", version, 1, "00".repeat(32))
                .with_scope("stable")
                .with_meta(json!({"component": "main", "arch": "amd64", "stanza": stanza})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn publishes_in_full_when_changes_cannot_be_applied() {
    use index::Published::{Changes, Full, Unchanged};
    let host = TestHost::new(Arc::new(AptProvider::default()));
    put(&host, Deb::new("docs", "1.0", "all")).await;
    // Only `all` packages: the default architectures, then the real one.
    assert!(!packages(&host, "i386").await.0.is_empty());
    put(&host, Deb::new("tool", "1.0", "amd64")).await;
    let (_, release) = host.get("r", "dists/stable/Release").await.unwrap();
    assert!(String::from_utf8_lossy(&release).contains("Architectures: amd64\n"));
    assert!(
        host.get("r", "dists/stable/main/binary-i386/Packages")
            .await
            .is_err()
    );
    put(&host, Deb::new("tool", "1.1", "amd64")).await;
    // A deletion and an insert that no publish saw, as after a crash between the two.
    assert!(
        host.catalog("r")
            .delete("stable", "pool/main/t/tool/tool_1.0_amd64.deb")
            .await
            .unwrap()
    );
    insert_behind(&host, "1.4").await;
    assert_eq!(publish(&host).await, Full, "the count shows the deletion");
    let text = String::from_utf8_lossy(&packages(&host, "amd64").await.0).into_owned();
    assert!(
        !text.contains("tool_1.0_amd64") && text.contains("tool_1.4_amd64"),
        "{text}"
    );
    insert_behind(&host, "1.5").await;
    assert_eq!(publish(&host).await, Changes);
    assert!(String::from_utf8_lossy(&packages(&host, "amd64").await.0).contains("tool_1.5_amd64"));
    assert_eq!(publish(&host).await, Unchanged);
    // A new architecture or component needs new indexes.
    put(&host, Deb::new("tool", "1.3", "arm64")).await;
    assert!(
        packages(&host, "arm64")
            .await
            .0
            .starts_with(b"Package: docs")
    );
    let (f, b) = Deb::new("extra", "1.0", "amd64").build();
    host.upload("r", &f, &b, &[("dist", "stable"), ("component", "contrib")])
        .await
        .unwrap();
    let (_, release) = host.get("r", "dists/stable/Release").await.unwrap();
    assert!(String::from_utf8_lossy(&release).contains("Components: contrib main\n"));
    assert!(
        host.get("r", "dists/stable/contrib/binary-arm64/Packages.gz")
            .await
            .is_ok()
    );
}

#[test]
fn file_names_follow_the_debian_grammar() {
    for good in [
        "x.deb",
        "python3_3.6.7-1~18.04_amd64.deb",
        "foo_1%3a2.0+b1_all.deb",
    ] {
        assert!(check_filename(good).is_ok(), "{good}");
    }
    for bad in [
        "a b.deb",
        "a\"b.deb",
        "x%41.deb",
        "x\u{7}.deb",
        "../x.deb",
        "x.tar.gz",
        ".deb",
        "x.deb ",
    ] {
        let e = check_filename(bad).unwrap_err().to_string();
        assert!(e.contains("a .deb file name uses"), "{bad}: {e}");
    }
}

#[tokio::test]
async fn every_file_a_replaced_release_listed_stays_served_by_hash_until_swept() {
    let host = TestHost::new(Arc::new(AptProvider::default()));
    // (name, sha256) of the amd64 Packages and Packages.gz the current Release lists.
    let listed = async || -> Vec<(String, String)> {
        let release = host.get("r", "dists/stable/Release").await.unwrap().1;
        String::from_utf8_lossy(&release)
            .lines()
            .filter(|l| l.contains(" main/binary-amd64/Packages"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[2].to_owned(), f[0].to_owned())
            })
            .collect()
    };
    let by_hash = |sha: &str| format!("dists/stable/main/binary-amd64/by-hash/SHA256/{sha}");
    put(&host, Deb::new("tool", "1.0", "amd64")).await;
    let first = listed().await;
    assert_eq!(first.len(), 2, "{first:?}");
    put(&host, Deb::new("tool", "1.1", "amd64")).await;
    let second = listed().await;
    assert_ne!(first, second);
    // Both files of the replaced Release are still there by hash, with the bytes it promised.
    for (name, sha) in first.iter().chain(&second) {
        let body = host
            .get("r", &by_hash(sha))
            .await
            .unwrap_or_else(|e| panic!("{name} {sha}: {e}"))
            .1;
        assert_eq!(
            &artifactd_plugin_api::testing::sha256_hex(&body),
            sha,
            "{name}"
        );
    }
    // A sweep five minutes on deletes the replaced files and the alias, not the current ones.
    let cx = host.context("r");
    let state = index::load_state(&cx, "stable").await.unwrap().unwrap();
    let later = artifactd_plugin_api::time::now_millis() + retire::RETAIN_MS + 1_000;
    let gone = retire::sweep(&cx, "stable", &state, later).await.unwrap();
    assert_eq!(
        gone.len(),
        2,
        "the replaced .gz and the alias of the plain file: {gone:?}"
    );
    for (name, sha) in &first {
        assert!(host.get("r", &by_hash(sha)).await.is_err(), "{name} stays");
    }
    for (name, sha) in &second {
        assert!(
            host.get("r", &by_hash(sha)).await.is_ok(),
            "{name} is current"
        );
    }
}
