//! The web UI in headless Chromium: every page of the pypi, apt and tar providers renders with its
//! content, shows package-supplied text as text (no script from a package ever runs), stays
//! usable at 375 px and 1280 px, works without JavaScript, and its buttons work for signed-in
//! users only. Screenshots land in `<target>/test-output/ui/`.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Browser, Options, Server, fake_gzip, output_dir};

const EVIL_SUMMARY: &str = "Evil <script>window.__xss='summary'</script> summary";
const EVIL_MARKDOWN: &str = "# Evil package\n\nSome **bold** text.\n\n<script>window.__xss='script'</script>\n\n<img src=x onerror=\"window.__xss='img'\">\n\n[click me](javascript:window.__xss='link') and [the docs](https://example.org/docs)\n\n![a picture](javascript:window.__xss='image')\n\n```\ncode <b>block</b>\n```\n";

/// A server with one repo per provider, full of hostile text.
fn populated() -> Server {
    let s = Server::start_with(Options::with_tar());
    let wheels = [
        Dist::new("evil-pkg", "1.0")
            .summary(EVIL_SUMMARY)
            .description(EVIL_MARKDOWN)
            .requires_python(">=3.8")
            .requires("good-pkg"),
        Dist::new("good-pkg", "1.0"),
        Dist::new("good-pkg", "1.1").summary("A good package"),
    ];
    for d in wheels {
        let (f, b) = d.wheel();
        assert_eq!(s.addpkg("provider=pypi&reponame=py", &f, &b).status, 201);
    }
    let deb = Deb::new("evil-deb", "1.0-1", "amd64");
    let control = "Package: evil-deb\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: <script>window.__xss='maint'</script> <m@example.invalid>\nDepends: libc6 (>= 2.36)\nHomepage: javascript:window.__xss='home'\nDescription: <script>window.__xss='deb'</script> short\n Long text with <b>tags</b>.\n .\n Second paragraph.\n";
    let (f, b) = deb.build_with_control(control);
    let r = s.addpkg("provider=apt&reponame=deb&dist=stable", &f, &b);
    assert_eq!(r.status, 201, "{}", r.text());
    let (f, b) = Deb::new("tool-data", "2.0", "all").build();
    assert_eq!(
        s.addpkg(
            "provider=apt&reponame=deb&dist=stable&component=contrib",
            &f,
            &b
        )
        .status,
        201
    );
    assert_eq!(
        s.addpkg("provider=apt&reponame=deb&dist=testing", &f, &b)
            .status,
        201
    );
    assert_eq!(
        s.addpkg(
            "provider=tar&reponame=files",
            "tool-1.0.tar.gz",
            &fake_gzip(b"tool")
        )
        .status,
        201
    );
    // A proxy of the server's own PyPI repo and a virtual repo over both: the package page
    // of a virtual repo shows each file's member and why the proxy's copies are not served.
    for body in [
        serde_json::json!({ "provider": "pypi", "name": "mirror", "kind": "proxy", "upstream": { "url": s.url("/repo/pypi/py/simple/") } }),
        serde_json::json!({ "provider": "pypi", "name": "all", "kind": "virtual", "members": ["py", "mirror"] }),
    ] {
        let r = s.json_as("POST", Some(&s.token), "/api/v1/repos", &body);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/pypi/py/settings",
        &serde_json::json!({ "project_status": { "good-pkg": { "status": "deprecated", "reason": "use <b>better-pkg</b> instead" } } }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s
}

/// Every page, with text it must show.
const PAGES: &[(&str, &str, &[&str])] = &[
    ("home", "/", &["py", "deb", "files", "pypi"]),
    ("providers", "/repo/", &["apt", "pypi", "tar"]),
    ("search", "/search?q=good", &["good-pkg", "pypi/py", "1.1"]),
    (
        "pypi-repo",
        "/ui/pypi/py/",
        &[
            "evil-pkg",
            "good-pkg",
            "pip install",
            "pip.conf",
            "uv (pyproject.toml)",
            EVIL_SUMMARY,
        ],
    ),
    (
        "pypi-package",
        "/ui/pypi/py/evil-pkg/",
        &[
            "evil-pkg",
            "Requires Python",
            ">=3.8",
            "good-pkg",
            "Evil package",
            "evil_pkg-1.0-py3-none-any.whl",
            EVIL_SUMMARY,
        ],
    ),
    (
        "pypi-package-versions",
        "/ui/pypi/py/good-pkg/",
        &[
            "1.1",
            "1.0",
            "good_pkg-1.1-py3-none-any.whl",
            "This project is deprecated in this repo: use <b>better-pkg</b> instead.",
        ],
    ),
    (
        "apt-repo",
        "/ui/apt/deb/",
        &[
            "evil-deb",
            "tool-data",
            "Signing key",
            "Signed-By",
            "stable",
            "testing",
            "Install script (stable)",
        ],
    ),
    (
        "apt-dist",
        "/ui/apt/deb/-/stable/",
        &[
            "main / amd64",
            "contrib / all",
            "evil-deb",
            "tool-data",
            "1.0-1",
        ],
    ),
    (
        "apt-package",
        "/ui/apt/deb/evil-deb/",
        &[
            "Depends",
            "libc6 (>= 2.36)",
            "Second paragraph.",
            "<script>window.__xss='deb'</script> short",
        ],
    ),
    (
        "virtual-package",
        "/ui/pypi/all/good-pkg/",
        &[
            "good_pkg-1.1-py3-none-any.whl",
            "Not served",
            "a hosted member has good-pkg",
            "This project is deprecated: use <b>better-pkg</b> instead.",
        ],
    ),
    (
        "proxy-repo",
        "/ui/pypi/mirror/",
        &["a proxy of", "good-pkg", "Cached projects"],
    ),
    ("tar-repo", "/ui/tar/files/", &["tool", "1.0", "index.json"]),
    ("tar-package", "/ui/tar/files/tool/", &["tool-1.0.tar.gz"]),
];

#[test]
fn every_page_renders_escapes_and_fits() {
    let s = populated();
    let out = output_dir("ui");
    let browser = Browser::start(1280, 900);
    for (width, height) in [(1280, 900), (375, 812)] {
        browser.resize(width, height);
        for (name, path, expect) in PAGES {
            browser.goto(&s.url(path));
            let text = browser.text();
            for e in *expect {
                assert!(text.contains(e), "{name} at {width}px lacks {e:?}:\n{text}");
            }
            let checks = browser.eval(
                "return { xss: window.__xss || null, overflow: document.documentElement.scrollWidth - window.innerWidth, \
                 scripts: Array.from(document.scripts).map(s => s.src), \
                 handlers: document.querySelectorAll('[onerror],[onload],[onclick]').length, \
                 jslinks: document.querySelectorAll('a[href^=\"javascript\" i]').length, \
                 styled: document.querySelectorAll('main [style]').length, \
                 local_images: Array.from(document.images).filter(i => i.hasAttribute('src') && !/^https?:\\/\\//i.test(i.getAttribute('src'))).length };",
            );
            assert_eq!(
                checks["xss"],
                serde_json::Value::Null,
                "{name}: a package's script ran"
            );
            assert!(
                checks["overflow"].as_i64().unwrap() <= 0,
                "{name} is wider than {width}px: {checks}"
            );
            assert_eq!(
                checks["scripts"],
                serde_json::json!([s.url("/static/ui.js")]),
                "{name}"
            );
            assert_eq!(checks["handlers"], 0, "{name}");
            assert_eq!(checks["jslinks"], 0, "{name}");
            assert_eq!(checks["styled"], 0, "{name}");
            assert_eq!(checks["local_images"], 0, "{name}: only http(s) images");
            browser.screenshot(&out.join(format!("{name}-{width}.png")));
        }
    }

    // The Markdown description: formatting kept, raw HTML through the allow-list (no script,
    // no event attributes), only http(s) links and images.
    browser.resize(1280, 900);
    browser.goto(&s.url("/ui/pypi/py/evil-pkg/"));
    let md = browser.eval(
        "const d = document.querySelector('.description'); return { bold: d.querySelector('strong').textContent, \
         links: Array.from(d.querySelectorAll('a')).filter(a => a.hasAttribute('href')).map(a => a.href), text: d.textContent, \
         scripts: d.querySelectorAll('script').length, srcs: Array.from(d.querySelectorAll('img')).map(i => i.getAttribute('src')), \
         code: d.querySelector('pre code').textContent };",
    );
    assert_eq!(md["bold"], "bold");
    assert_eq!(md["links"], serde_json::json!(["https://example.org/docs"]));
    assert_eq!(md["scripts"], 0);
    assert_eq!(md["srcs"], serde_json::json!([null, null]), "{md}");
    let text = md["text"].as_str().unwrap();
    assert!(!text.contains("__xss") && !text.contains("<img"), "{text}");
    assert_eq!(md["code"], "code <b>block</b>\n");
    // The APT package's Homepage is not http(s): not linked.
    browser.goto(&s.url("/ui/apt/deb/evil-deb/"));
    assert_eq!(
        browser.eval("return document.querySelectorAll('ul.links a').length;"),
        0
    );

    // The set-up panels fit: every copy button on one line beside its title, at 1280 px.
    for repo in ["/ui/pypi/py/", "/ui/apt/deb/"] {
        browser.goto(&s.url(repo));
        let fit = browser.eval(
            "return Array.from(document.querySelectorAll('button.copy')).map(b => { \
               const r = b.getBoundingClientRect(), t = b.previousElementSibling.getBoundingClientRect(), \
                 lh = parseFloat(getComputedStyle(b).lineHeight); \
               return { one_line: r.height < 1.8 * lh, clipped: b.scrollWidth > b.clientWidth + 1, \
                 beside: r.top < t.bottom && r.left >= t.right - 1 }; });",
        );
        let buttons = fit.as_array().unwrap();
        assert!(!buttons.is_empty(), "{repo}: no copy buttons");
        for b in buttons {
            assert!(
                b["one_line"] == true && b["clipped"] == false && b["beside"] == true,
                "{repo}: a copy button does not fit on one line beside its title: {fit}"
            );
        }
    }

    // Copy buttons appear with JavaScript and copy the snippet.
    browser.goto(&s.url("/ui/pypi/py/"));
    let first = browser.eval("return document.querySelector('.snippet pre').textContent;");
    assert_eq!(
        first.as_str().unwrap(),
        format!(
            "pip install --index-url \"{}\" PACKAGE",
            s.url("/repo/pypi/py/simple/")
        )
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('button.copy:not([hidden])').length > 0;"),
        true
    );
    browser.click("button.copy");
    // The clipboard write settles asynchronously; the label says so for 1.5 s.
    browser.wait_for_eval(
        "return document.querySelector('button.copy').textContent;",
        serde_json::json!("Copied"),
    );

    // Without JavaScript the same content is in the HTML, and the copy buttons stay hidden.
    for (name, path, expect) in PAGES {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{name}");
        // The templates escape '/' too; undo that one for the comparisons.
        let html = r.text().replace("&#x2f;", "/");
        assert!(
            !html.contains("<script>window"),
            "{name} has an unescaped script"
        );
        assert!(
            !html.contains("<b>tags</b>") && !html.contains("<b>block</b>"),
            "{name}"
        );
        for e in expect.iter().filter(|e| !e.contains(['<', '>', '\'', '"'])) {
            assert!(html.contains(*e), "{name}: {e:?} is not server-rendered");
        }
        assert!(
            !html.contains("class=\"copy\" data-copy=\"setup-1\">"),
            "{name}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{name}: {csp}");
    }
}

#[test]
fn buttons_for_signed_in_users_and_html_errors() {
    let s = populated();
    let package = "/ui/pypi/py/good-pkg/";
    // Anonymous and read-only visitors get no buttons.
    let html = s.get(package).text();
    assert!(
        !html.contains("Delete 1.0") && !html.contains("Yank 1.0"),
        "{html}"
    );
    let reader = s.create_token("reader", "read", &[]);
    let html = s.get_as(Some(&reader), package).text();
    assert!(
        !html.contains("Delete 1.0") && !html.contains("Yank 1.0"),
        "{html}"
    );
    let writer = s.create_token("writer", "write", &[]);
    let html = s.get_as(Some(&writer), package).text();
    assert!(
        html.contains("Yank 1.0") && !html.contains("Delete 1.0"),
        "{html}"
    );

    // Posts from other sites, or from no page at all, are refused and change nothing.
    for headers in [
        vec![
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        vec![("Content-Type", "application/x-www-form-urlencoded")],
    ] {
        let r = s.send_with(
            "POST",
            Some(&s.token),
            "/ui/pypi/py/good-pkg/delete",
            &headers,
            b"version=1.0",
        );
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("only from this server"), "{}", r.text());
    }
    assert_eq!(
        s.get("/api/v1/repos/pypi/py/packages/good-pkg").json()["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // An admin signs in in the browser, yanks 1.0, then deletes it.
    let browser = Browser::start(1280, 900);
    let signed_in = s.url("/login?next=/ui/pypi/py/good-pkg/").replacen(
        "http://",
        &format!("http://admin:{}@", s.token),
        1,
    );
    browser.goto(&signed_in);
    assert!(
        browser.text().contains("bootstrap-admin"),
        "{}",
        browser.text()
    );
    browser.goto(&s.url(package));
    browser.eval(
        "document.querySelector(\"form[action$='/yank'] input[name=version][value='1.0']\").form.querySelector('input[name=reason]').value = 'broken build';",
    );
    browser.click_xpath(
        "//form[contains(@action,'/yank')][input[@name='version' and @value='1.0']]//button",
    );
    browser.wait_for_text("Un-yank 1.0");
    let yanked = s.get_with(
        "/repo/pypi/py/simple/good-pkg/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    let files = yanked.json()["files"].clone();
    let by_name = |n: &str| {
        files
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filename"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_name("good_pkg-1.0-py3-none-any.whl")["yanked"],
        "broken build"
    );
    assert_eq!(by_name("good_pkg-1.1-py3-none-any.whl")["yanked"], false);

    browser.click("form[data-confirm='Delete good-pkg 1.0?'] button");
    browser.accept_dialog();
    let mut text = browser.wait_for_text("good_pkg-1.1-py3-none-any.whl");
    for _ in 0..50 {
        if !text.contains("good_pkg-1.0-py3-none-any.whl") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = browser.text();
    }
    assert!(!text.contains("good_pkg-1.0-py3-none-any.whl"), "{text}");
    assert!(text.contains("good_pkg-1.1-py3-none-any.whl"), "{text}");
    let versions = s.get("/api/v1/repos/pypi/py/packages/good-pkg").json();
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );
    let audit = s.get_as(Some(&s.token), "/api/v1/audit").text();
    assert!(
        audit.contains("\"yank\"") && audit.contains("\"delete\""),
        "{audit}"
    );

    // Errors are pages too: unknown package 404, private repo 401 with the sign-in challenge.
    let r = s.get("/ui/pypi/py/no-such-pkg/");
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("There is no package"), "{}", r.text());
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/pypi/py/settings",
        &serde_json::json!({ "private": true }),
    );
    assert_eq!(r.status, 200);
    let r = s.get_as(None, "/ui/pypi/py/");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = s.get_as(Some(&reader), "/ui/pypi/py/");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("__token__:$ARTIFACTD_TOKEN@"),
        "private set-up shows the token"
    );
    assert!(!s.get_as(None, "/").text().contains("/ui/pypi/py/"));
}

#[test]
fn a_real_projects_readme_renders_as_pypi_shows_it() {
    // Hatch's README opens with a centred logo in raw HTML and a table of badges.
    let wheel = artifactd_tests::real_wheel("hatch", "1.18.2");
    let s = Server::start();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let r = s.addpkg(
        "provider=pypi&reponame=real",
        &name,
        &std::fs::read(&wheel).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let browser = Browser::start(1280, 900);
    let out = output_dir("ui");
    for width in [1280, 375] {
        browser.resize(width, 900);
        browser.goto(&s.url("/ui/pypi/real/hatch/"));
        let v = browser.eval(
            "const d = document.querySelector('.description'); \
             const logo = d.querySelector('div[align=\"center\"] img[src^=\"https://raw.githubusercontent.com/pypa/hatch/\"]'); \
             return { logo: logo ? logo.getAttribute('alt') : null, \
               badges: d.querySelectorAll('table a[href^=\"https://\"] img[src^=\"https://\"]').length, \
               headings: Array.from(d.querySelectorAll('h1, h2')).map(h => h.textContent), \
               raw: d.textContent.includes('<div') || d.textContent.includes('<img'), \
               overflow: document.documentElement.scrollWidth - window.innerWidth, \
               handlers: d.querySelectorAll('[onerror],[onload],[onclick],[style],script').length };",
        );
        assert_eq!(v["logo"], "Hatch logo", "{v}");
        assert!(v["badges"].as_i64().unwrap() >= 5, "{v}");
        assert_eq!(v["headings"][0], "Hatch", "{v}");
        assert_eq!(v["raw"], false, "raw HTML shown as text: {v}");
        assert_eq!(v["handlers"], 0, "{v}");
        assert!(
            v["overflow"].as_i64().unwrap() <= 0,
            "wider than {width}px: {v}"
        );
        browser.screenshot(&out.join(format!("real-readme-{width}.png")));
    }
}
