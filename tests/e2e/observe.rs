//! Watching a node: `/healthz`, `/readyz`, JSON log lines and the request id that ties a
//! response to its log lines. (`/readyz` with its database away: `databases.rs`.)

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server};

/// The server's JSON log lines.
fn json_lines(s: &Server) -> Vec<serde_json::Value> {
    s.log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn readiness_json_logs_and_request_ids() {
    let s = Server::start_with(Options::default().arg("--log-format").arg("json"));
    let r = s.get("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = s.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "database: ok\nstorage: ok\n");

    // The client's id comes back and names the request's log lines; others get one made up.
    let r = s.get_with("/repo/", &[("x-request-id", "e2e-trace-1")]);
    assert_eq!(r.header("x-request-id"), Some("e2e-trace-1"));
    let a = s.get("/repo/").header("x-request-id").map(str::to_owned);
    let b = s.get("/nope").header("x-request-id").map(str::to_owned);
    assert!(
        a.as_ref().is_some_and(|a| !a.is_empty()) && a != b,
        "{a:?} {b:?}"
    );
    let bad = s.get_with("/repo/", &[("x-request-id", "has space")]);
    assert_ne!(bad.header("x-request-id"), Some("has space"));

    let (name, bytes) = Dist::new("traced", "1.0").wheel();
    let r = s.send_with(
        "POST",
        Some(&s.token),
        "/addpkg?provider=pypi&reponame=obs",
        &[],
        &[],
    );
    assert!(r.header("x-request-id").is_some(), "errors carry it too");
    let boundary = "observe-boundary-1";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = s.send_with(
        "POST",
        Some(&s.token),
        "/addpkg?provider=pypi&reponame=obs",
        &[
            (
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
            ("x-request-id", "e2e-upload-7"),
        ],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let lines = json_lines(&s);
    assert!(!lines.is_empty(), "{}", s.log());
    let of = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["id"] == id || l["spans"][0]["id"] == id)
            .collect()
    };
    let traced = of("e2e-trace-1");
    assert!(
        traced
            .iter()
            .any(|l| l["fields"]["message"] == "Request." && l["fields"]["status"] == 200),
        "{traced:?}"
    );
    let upload: Vec<&str> = of("e2e-upload-7")
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(
        upload.contains(&"Stored upload.") && upload.contains(&"Request."),
        "every line of the upload names it: {upload:?}"
    );
}
