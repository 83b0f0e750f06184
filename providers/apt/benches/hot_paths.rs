//! Micro-benchmarks of the APT provider's hot paths: `.deb` control extraction and `Packages`
//! stanza rendering. `cargo bench -p artifactd-apt`.

use artifactd_apt::testing::Deb;
use artifactd_apt::{control_text, parse_control, stanza};
use artifactd_plugin_api::serde_json::json;
use artifactd_plugin_api::{FileRecord, NewRecord};

fn main() {
    divan::main();
}

#[divan::bench]
fn deb_control_extraction(bencher: divan::Bencher) {
    let dir = std::env::temp_dir().join(format!("artifactd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (name, bytes) = Deb::new("bench-tool", "1.0-1", "amd64")
        .line("Depends: libc6 (>= 2.36)")
        .build();
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("deb");
    bencher.bench(|| parse_control(&control_text(&path).expect("control")).expect("parse"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[divan::bench]
fn packages_stanza(bencher: divan::Bencher) {
    let control = Deb::new("bench-tool", "1.0-1", "amd64")
        .line("Depends: libc6 (>= 2.36)")
        .control();
    let parsed = parse_control(&control).expect("control");
    let new = NewRecord::new(
        "pool/main/b/bench-tool/bench-tool_1.0-1_amd64.deb",
        "bench-tool",
        "bench-tool",
        "1.0-1",
        12_345,
        "ab".repeat(32),
    )
    .with_scope("stable")
    .with_meta(json!({ "component": "main", "arch": "amd64", "stanza": parsed.stanza, "md5": "00", "sha1": "00", "sha512": "00" }));
    let record = FileRecord::stored(new, 1_780_000_000_000, "token:ci".into(), None);
    bencher.bench(|| stanza(divan::black_box(&record)));
}
