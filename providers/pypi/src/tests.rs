//! Unit tests of the provider through the plugin API's test host.

use artifactd_plugin_api::Catalog as _;
use artifactd_plugin_api::testing::{Kit, Sample, TestHost, conformance};

use super::*;
use crate::testing::Dist;
use artifactd_plugin_api::http::StatusCode;
use artifactd_plugin_api::serde_json;

fn sample(d: &Dist, params: &[(&str, &str)]) -> Sample {
    let (f, b) = d.wheel();
    Sample::new(&f, b, params)
}

#[tokio::test]
async fn conforms() {
    conformance(
        Arc::new(PypiProvider::default()),
        Kit {
            first: sample(
                &Dist::new("alpha", "1.0"),
                &[("name", "alpha"), ("version", "1.0")],
            ),
            second: sample(&Dist::new("beta", "2.0"), &[]),
            first_changed: sample(&Dist::new("alpha", "1.0").salt("x"), &[]),
        },
    )
    .await;
}

#[tokio::test]
async fn pages_and_metadata() {
    let host = TestHost::new(Arc::new(PypiProvider::default()));
    let (f, b) = Dist::new("Demo.Pkg", "1.0")
        .requires_python(">=3.8")
        .wheel();
    host.upload("r", &f, &b, &[]).await.unwrap();
    let (sf, sb) = Dist::new("Demo.Pkg", "1.1").sdist();
    host.upload("r", &sf, &sb, &[]).await.unwrap();
    let (_, root) = host.get("r", "").await.unwrap();
    assert!(String::from_utf8_lossy(&root).contains("<a href=\"demo-pkg/\">Demo.Pkg</a>"));
    let (resp, _) = host.get("r", "Demo.Pkg/").await.unwrap();
    assert_eq!(resp.status, StatusCode::MOVED_PERMANENTLY);
    let (_, page) = host.get("r", "demo-pkg/").await.unwrap();
    let page = String::from_utf8_lossy(&page).into_owned();
    assert!(page.contains("data-requires-python=\"&gt;=3.8\""), "{page}");
    assert!(
        page.contains("href=\"../files/demo_pkg-1.0-py3-none-any.whl#sha256="),
        "{page}"
    );
    let json_req = ServeRequest::get("simple/demo-pkg/").with_header(
        ACCEPT,
        HeaderValue::from_static("application/vnd.pypi.simple.v1+json"),
    );
    let (resp, body) = host.serve("r", json_req).await.unwrap();
    assert_eq!(
        resp.headers.get("content-type").unwrap(),
        "application/vnd.pypi.simple.v1+json"
    );
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["meta"]["api-version"], "1.4");
    assert_eq!(j["versions"], json!(["1.0", "1.1"]));
    let wheel = &j["files"][0];
    assert_eq!(wheel["url"], "../../files/demo_pkg-1.0-py3-none-any.whl");
    let (_, meta) = host
        .get("r", "files/demo_pkg-1.0-py3-none-any.whl.metadata")
        .await
        .unwrap();
    let digest: String = sha2::Sha256::digest(&meta)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(wheel["core-metadata"]["sha256"], digest);
    assert_eq!(j["files"][1]["core-metadata"], false);
    // PEP 714: the old key is gone from JSON (pip 22.3 to 23.1 crash on it); HTML keeps both.
    assert!(wheel.get("dist-info-metadata").is_none(), "{wheel}");
    let (_, html) = host.get("r", "demo-pkg/").await.unwrap();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains(&format!("data-dist-info-metadata=\"sha256={digest}\"")));
    assert!(html.contains(&format!("data-core-metadata=\"sha256={digest}\"")));
    assert!(matches!(
        host.get("r", "nope/").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn refuses_mismatches() {
    let host = TestHost::new(Arc::new(PypiProvider::default()));
    let (f, b) = Dist::new("demo", "1.0").wheel();
    let renamed = f.replace("demo-1.0", "other-1.0");
    let e = host.upload("r", &renamed, &b, &[]).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let e = host
        .upload("r", &f, &b, &[("version", "2.0")])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("version parameter"), "{e}");
    let e = host.upload("r", &f, b"not a zip", &[]).await.unwrap_err();
    assert!(e.to_string().contains("zip"), "{e}");
    let e = host
        .upload("r", &f, &b, &[("sha256_digest", "00")])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("sha256_digest"), "{e}");
    assert!(
        host.catalog("r")
            .list(ListQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A gzip-compressed tar of `members` (name, bytes).
fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, *bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn refuses_what_warehouse_refuses() {
    let host = TestHost::new(Arc::new(PypiProvider::default()));
    let pkg_info = Dist::new("demo", "1.0").metadata();
    let refused = [
        (
            "demo__pkg-1.0-py3-none-any.whl".to_owned(),
            Dist::new("demo__pkg", "1.0").wheel().1,
            "no \"__\"",
        ),
        (
            "demo-1.0-py3-none-any.whl".to_owned(),
            crate::testing::zip_of(
                &Dist::new("demo", "1.0")
                    .wheel_members()
                    .into_iter()
                    .map(|(n, b)| {
                        let b = String::from_utf8_lossy(&b)
                            .replace("Metadata-Version: 2.1", "Metadata-Version: 99.0");
                        (n, b.into_bytes())
                    })
                    .collect::<Vec<_>>(),
            ),
            "Metadata-Version \"99.0\" is not one",
        ),
        (
            "demo-1.0.tar.gz".to_owned(),
            tar_gz(&[
                ("demo-1.0/PKG-INFO", pkg_info.as_bytes()),
                ("setup.py", b"import os\n"),
            ]),
            "exactly one top-level folder, named \"demo-1.0\"",
        ),
        (
            "demo-1.0.tar.gz".to_owned(),
            tar_gz(&[("other-1.0/PKG-INFO", pkg_info.as_bytes())]),
            "it also has \"other-1.0\"",
        ),
        (
            "demo-1.0.tar.gz".to_owned(),
            tar_gz(&[("demo-1.0/src/PKG-INFO", pkg_info.as_bytes())]),
            "no demo-1.0/PKG-INFO",
        ),
    ];
    for (filename, bytes, says) in refused {
        let e = host.upload("r", &filename, &bytes, &[]).await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(_)) && e.to_string().contains(says),
            "{filename}: {e}"
        );
    }
    assert!(host.derived_files("r").await.unwrap().is_empty());
    // The layout the builders write is accepted.
    let (f, b) = Dist::new("demo", "1.0").sdist();
    host.upload("r", &f, &b, &[]).await.unwrap();
}
