//! Headless Chromium over WebDriver, for the web UI tests.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), one
/// browser per test.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session at `width` × `height`.
    pub fn start(width: u32, height: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        crate::tool("chromium");
        let driver = crate::tool("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver package) must be installed");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if agent
                .get(&format!("{base}/status"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ready, "chromedriver did not start");
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", format!("--window-size={width},{height}"),
                         // Pages may show remote images; the browser resolves only loopback.
                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                         "--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--disable-sync"],
            }
        }}});
        let mut me = Self {
            driver,
            base,
            session: String::new(),
            agent,
        };
        let v = me.call("POST", "/session", Some(caps));
        me.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        me
    }

    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .send_json(b.unwrap_or_else(|| serde_json::json!({}))),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
        assert!(status < 300, "WebDriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(serde_json::json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// The visible text of the page.
    pub fn text(&self) -> String {
        self.eval("return document.body.innerText;")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.session_path("/window/rect"),
            Some(serde_json::json!({ "width": width, "height": height })),
        );
    }

    /// Clicks the first element matching the CSS selector `css`.
    pub fn click(&self, css: &str) {
        self.click_by("css selector", css);
    }

    /// Clicks the first element matching `xpath`.
    pub fn click_xpath(&self, xpath: &str) {
        self.click_by("xpath", xpath);
    }

    /// Waits up to 10 s for the page text to contain `needle`; returns the text.
    pub fn wait_for_text(&self, needle: &str) -> String {
        let text = self.poll(|| Some(self.text()).filter(|t| t.contains(needle)));
        text.unwrap_or_else(|| panic!("the page never showed {needle:?}:\n{}", self.text()))
    }

    /// Waits up to 10 s for `script` to return `expected` (for effects of asynchronous page
    /// code, such as a clipboard write settling).
    pub fn wait_for_eval(&self, script: &str, expected: serde_json::Value) {
        if self
            .poll(|| Some(()).filter(|()| self.eval(script) == expected))
            .is_none()
        {
            panic!("{script} never returned {expected}: {}", self.eval(script));
        }
    }

    fn poll<T>(&self, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
        for _ in 0..200 {
            if let Some(v) = ready() {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn click_by(&self, using: &str, css: &str) {
        let el = self.call(
            "POST",
            &self.session_path("/element"),
            Some(serde_json::json!({ "using": using, "value": css })),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element {css}: {el}"))
            .to_owned();
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            None,
        );
    }

    /// Accepts an open `confirm()` dialog.
    pub fn accept_dialog(&self) {
        self.call("POST", &self.session_path("/alert/accept"), None);
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
