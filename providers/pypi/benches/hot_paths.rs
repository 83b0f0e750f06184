//! Micro-benchmarks of the PyPI provider's hot paths: rendering simple pages, `Accept`
//! negotiation, and the upload hook's metadata extraction. `cargo bench -p artifactd-pypi`.

use artifactd_plugin_api::serde_json::json;
use artifactd_plugin_api::testing::TestHost;
use artifactd_plugin_api::{FileRecord, NewRecord};
use artifactd_pypi::testing::Dist;
use artifactd_pypi::{Format, PageFile, negotiate, render_project_page, render_root_page};

fn main() {
    divan::main();
}

fn files(n: usize) -> Vec<FileRecord> {
    (0..n)
        .map(|i| {
            let version = format!("1.{i}");
            let new = NewRecord::new(
                format!("files/demo_pkg-{version}-py3-none-any.whl"),
                "demo-pkg",
                "demo-pkg",
                version,
                12_345,
                format!("{i:064x}"),
            )
            .with_meta(
                json!({ "requires_python": ">=3.9", "metadata_sha256": format!("{i:064x}") }),
            );
            FileRecord::stored(new, 1_780_000_000_000, "token:ci".into(), None)
        })
        .collect()
}

#[divan::bench(args = [10, 1_000])]
fn project_page_html(bencher: divan::Bencher, n: usize) {
    let records = files(n);
    let files: Vec<PageFile<'_>> = records.iter().map(PageFile::from).collect();
    bencher.bench(|| render_project_page(Format::TextHtml, "demo-pkg", &files, "../../files/"));
}

#[divan::bench(args = [10, 1_000])]
fn project_page_json(bencher: divan::Bencher, n: usize) {
    let records = files(n);
    let files: Vec<PageFile<'_>> = records.iter().map(PageFile::from).collect();
    bencher.bench(|| render_project_page(Format::Json, "demo-pkg", &files, "../../files/"));
}

#[divan::bench(args = [100, 10_000])]
fn root_page(bencher: divan::Bencher, n: usize) {
    let projects: Vec<(String, String)> = (0..n)
        .map(|i| (format!("project-{i}"), format!("Project-{i}")))
        .collect();
    bencher.bench(|| render_root_page(Format::TextHtml, &projects));
}

#[divan::bench]
fn accept_negotiation_pip() -> Option<Format> {
    negotiate(divan::black_box(Some(
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
    )))
}

#[divan::bench]
fn wheel_upload_hook(bencher: divan::Bencher) {
    let host = TestHost::new(artifactd_pypi::factory().build().expect("provider"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (name, bytes) = Dist::new("demo-pkg", "1.0").wheel();
    bencher.bench(|| {
        rt.block_on(host.upload("bench", &name, &bytes, &[]))
            .expect("upload")
    });
}
