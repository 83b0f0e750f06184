//! `/metrics` as Prometheus reads it: the text is parsed by `prometheus_client`'s OpenMetrics
//! and Prometheus text parsers, and the counts follow what the test did (uploads, a refused
//! upload, downloads, publishes, a proxy's misses, hits and upstream errors, a blob store
//! that fails); the endpoint can ask for a token or move to its own port.

use std::collections::BTreeMap;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server, clients, run};

/// Parses the metrics with both of `prometheus_client`'s parsers; every sample as
/// `name{labels}` (labels sorted, as the parser gives them) → value.
fn parse(s: &Server, text: &str) -> BTreeMap<String, f64> {
    let c = clients();
    let scratch = s.scratch("metrics");
    let file = scratch.join("metrics.txt");
    std::fs::write(&file, text).expect("write the metrics");
    let script = r##"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus
text = open(sys.argv[1]).read()
# The Prometheus text parser reads it too (it ignores the OpenMetrics-only lines).
assert list(prometheus(text.replace("# EOF\n", ""))), "no families"
out = {}
for family in openmetrics(text):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"##;
    let out = run(c.cmd("python", &scratch).arg("-c").arg(script).arg(&file));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

fn scrape(s: &Server, path_token: Option<&str>) -> BTreeMap<String, f64> {
    let r = s.get_as(path_token, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        r.header("content-type")
    );
    parse(s, &r.text())
}

#[test]
fn metrics_follow_requests_uploads_publishes_and_the_proxy_cache() {
    let up = Server::start();
    let s = Server::start();
    let (name, bytes) = Dist::new("counted", "1.0").wheel();
    let r = s.addpkg("provider=pypi&reponame=team", &name, &bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    let bad = s.addpkg(
        "provider=pypi&reponame=team",
        "counted-1.0.txt",
        b"not a package",
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let page = s.get("/repo/pypi/team/simple/counted/");
    assert_eq!(page.status, 200);
    let file = s.get(&format!("/repo/pypi/team/files/{name}"));
    assert_eq!(file.body, bytes);

    // A proxy of another server: a miss, then a hit; then the upstream goes and a project
    // never cached fails upstream.
    let (upname, upbytes) = Dist::new("far", "1.0").wheel();
    assert_eq!(
        up.addpkg("provider=pypi&reponame=team", &upname, &upbytes)
            .status,
        201
    );
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({ "provider": "pypi", "name": "up", "kind": "proxy",
            "upstream": { "url": up.url("/repo/pypi/team/simple/"), "ttl": "1h" } }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for expected in ["miss", "hit"] {
        let r = s.get("/repo/pypi/up/simple/far/");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-artifactd-cache"), Some(expected));
    }
    let mut up = up;
    up.stop();
    let r = s.get("/repo/pypi/up/simple/never-cached/");
    assert!(r.status >= 500, "{} {}", r.status, r.text());

    let m = scrape(&s, None);
    let key = |k: &str| value(&m, k);
    assert!(
        key(r#"artifactd_http_requests_total{route="upload",status="201"}"#) >= 1.0,
        "{m:#?}"
    );
    assert!(key(r#"artifactd_http_requests_total{route="repo",status="200"}"#) >= 2.0);
    assert_eq!(
        key(r#"artifactd_uploads_refused_total{reason="invalid"}"#),
        1.0
    );
    assert!(key("artifactd_uploaded_bytes_total{}") >= bytes.len() as f64);
    assert!(key("artifactd_served_bytes_total{}") >= (bytes.len() + page.body.len()) as f64);
    assert!(key(r#"artifactd_index_publishes_total{provider="pypi",result="ok"}"#) >= 1.0);
    assert!(key(r#"artifactd_index_publish_duration_seconds_count{provider="pypi"}"#) >= 1.0);
    assert_eq!(key(r#"artifactd_proxy_cache_total{result="miss"}"#), 1.0);
    assert_eq!(key(r#"artifactd_proxy_cache_total{result="hit"}"#), 1.0);
    assert!(key(r#"artifactd_proxy_upstream_errors_total{kind="unreachable"}"#) >= 1.0);
    // The latency histogram: cumulative buckets up to +Inf, which counts every request.
    let inf = key(r#"artifactd_http_request_duration_seconds_bucket{le="+Inf",route="repo"}"#);
    assert_eq!(
        inf,
        key(r#"artifactd_http_request_duration_seconds_count{route="repo"}"#)
    );
    assert!(inf >= 2.0);
    assert!(key(r#"artifactd_db_pool_connections{state="max"}"#) >= 1.0);
    assert_eq!(key(r#"artifactd_storage_errors_total{op="get"}"#), 0.0);

    // The blob folder goes away (a file stands where it was): the node is not ready, reads
    // fail, and the failures are counted; back in place, all is well again.
    let blobs = s.data_dir().join("blobs");
    let away = s.data_dir().join("blobs.away");
    std::fs::rename(&blobs, &away).expect("move the blobs away");
    std::fs::write(&blobs, b"not a folder").expect("a file in its place");
    let r = s.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("storage: unreachable"), "{}", r.text());
    let r = s.get(&format!("/repo/pypi/team/files/{name}"));
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let m = scrape(&s, None);
    assert!(
        value(&m, r#"artifactd_storage_errors_total{op="get"}"#) >= 2.0,
        "{m:#?}"
    );
    std::fs::remove_file(&blobs).expect("remove the file");
    std::fs::rename(&away, &blobs).expect("move the blobs back");
    assert_eq!(s.get("/readyz").status, 200);
    assert_eq!(s.get(&format!("/repo/pypi/team/files/{name}")).body, bytes);
}

#[test]
fn metrics_can_ask_for_a_token_or_take_their_own_port() {
    let s = Server::start_with(Options::default().arg("--metrics-token").arg("scrape-me"));
    let r = s.get("/metrics");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error().contains("metrics token"), "{}", r.error());
    assert_eq!(s.get_as(Some("wrong"), "/metrics").status, 401);
    let m = scrape(&s, Some("scrape-me"));
    assert!(
        value(
            &m,
            r#"artifactd_http_requests_total{route="metrics",status="401"}"#
        ) >= 2.0
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let s = Server::start_with(
        Options::default()
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{port}")),
    );
    let r = s.get("/metrics");
    assert_eq!(r.status, 404, "not on the public port: {}", r.text());
    let own = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("the metrics port answers");
    assert_eq!(own.status(), 200);
    let text = own.into_body().read_to_string().expect("text");
    let m = parse(&s, &text);
    assert!(
        value(
            &m,
            r#"artifactd_http_requests_total{route="metrics",status="404"}"#
        ) >= 1.0
    );
}
