//! What people see of an APT repo: the UI's set-up snippets and file facts, the HTML listings
//! below the repo root, and the install script.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use artifactd_plugin_api::html::{escape, url_segment};
use artifactd_plugin_api::serde_json::Value;
use artifactd_plugin_api::ui::{Description, FileView, RepoView, Snippet, meta_str};
use artifactd_plugin_api::{Error, FileRecord, ListQuery, RepoContext, Result, ServeResponse};

use crate::{deb, index};

/// The repo page's set-up: the key, sources entries and the install script per dist.
pub(crate) async fn repo_view(cx: &RepoContext) -> Result<RepoView> {
    let mut dists: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in cx.catalog.list(ListQuery::all()).await? {
        let comp = index::component(&r).to_owned();
        dists.entry(r.scope).or_default().insert(comp);
    }
    let base = &cx.base_url;
    let repo = &cx.repo;
    let keyring = format!("/etc/apt/keyrings/artifactd-{repo}.gpg");
    let auth = if cx.settings.private {
        " -u \"token:$ARTIFACTD_TOKEN\""
    } else {
        ""
    };
    let mut setup = vec![Snippet::new(
        "Signing key",
        format!(
            "sudo install -d -m 0755 /etc/apt/keyrings\nsudo curl -fsSL{auth} {base}pubkey.gpg -o {keyring}"
        ),
    )];
    if cx.settings.private {
        setup.push(Snippet::new(
            format!("/etc/apt/auth.conf.d/artifactd-{repo}.conf"),
            format!("machine {base} login token password YOUR_TOKEN"),
        ));
    }
    for (dist, comps) in dists.iter().take(8) {
        let comps: Vec<&str> = comps.iter().map(String::as_str).collect();
        setup.push(Snippet::new(
            format!("/etc/apt/sources.list.d/artifactd-{repo}-{dist}.sources"),
            sources_file(cx, dist, &comps, &keyring),
        ));
        setup.push(Snippet::new(
            format!("One-line style ({dist})"),
            format!(
                "deb [signed-by={keyring}] {base} {dist} {}",
                comps.join(" ")
            ),
        ));
        setup.push(Snippet::new(
            format!("Source packages ({dist}, for apt-get source)"),
            format!(
                "deb-src [signed-by={keyring}] {base} {dist} {}",
                comps.join(" ")
            ),
        ));
        setup.push(Snippet::new(
            format!("Install script ({dist})"),
            format!("curl -fsSL{auth} {base}dists/{dist}/install | sudo sh"),
        ));
    }
    Ok(RepoView::new("Dist", setup))
}

pub(crate) fn file_view(record: &FileRecord) -> FileView {
    let mut view = FileView::from_meta(record);
    let stanza = meta_str(record, "stanza")
        .or_else(|| meta_str(record, "sources_stanza"))
        .unwrap_or_default();
    if let Some(text) = long_description(stanza) {
        view.description = Some(Description {
            text,
            markdown: false,
        });
    }
    let field = |name: &str| deb::field(stanza, name);
    // A source package names the binary packages built from it.
    let binaries = record
        .meta
        .get("binaries")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        });
    view = view
        .fact("Dist", Some(&record.scope))
        .fact("Architecture", meta_str(record, "arch"))
        .fact("Component", meta_str(record, "component"))
        .fact("Source", meta_str(record, "source"))
        .fact("Binary packages", binaries.as_deref())
        .fact("Format", field("Format").as_deref())
        .fact("Build-Depends", field("Build-Depends").as_deref())
        .fact("Depends", meta_str(record, "depends"))
        .fact("Recommends", field("Recommends").as_deref())
        .fact("Section", field("Section").as_deref())
        .fact("Maintainer", field("Maintainer").as_deref());
    if let Some(home) = field("Homepage") {
        view.links.push(("Homepage".to_owned(), home));
    }
    view.group = Some(format!(
        "{} / {}",
        index::component(record),
        index::arch(record)
    ));
    view
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><header class=\"top\"><a class=\"brand\" href=\"/\">artifactd</a><nav><a href=\"/repo/\">Providers</a></nav></header><main>\n{body}</main></body></html>\n",
        t = escape(title)
    )
}

pub(crate) async fn root_page(cx: &RepoContext) -> Result<ServeResponse> {
    let records = cx.catalog.list(ListQuery::all()).await?;
    let mut dists: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *dists.entry(r.scope.as_str()).or_default() += 1;
    }
    let mut b = format!("<h1>APT repository {}</h1>\n", escape(&cx.repo));
    let _ = write!(
        b,
        "<p>Signing key: <a href=\"pubkey\">pubkey</a> (armored), <a href=\"pubkey.gpg\">pubkey.gpg</a> (keyring for <code>signed-by</code>).</p>\n<table><thead><tr><th>Dist</th><th class=\"num\">Packages</th><th>Files</th></tr></thead><tbody>\n"
    );
    for (d, n) in &dists {
        let d = url_segment(d);
        let _ = writeln!(
            b,
            "<tr><td><a href=\"dists/{d}/\">{d}</a></td><td class=\"num\">{n}</td><td><a href=\"dists/{d}/InRelease\">InRelease</a> · <a href=\"dists/{d}/Release\">Release</a> · <a href=\"dists/{d}/Release.gpg\">Release.gpg</a> · <a href=\"dists/{d}/install\">install script</a></td></tr>"
        );
    }
    b.push_str("</tbody></table>\n");
    Ok(ServeResponse::bytes(
        "text/html; charset=utf-8",
        page(&cx.repo, &b),
    ))
}

pub(crate) async fn dist_page(cx: &RepoContext, dist: &str) -> Result<ServeResponse> {
    let records = cx.catalog.list(ListQuery::all().in_scope(dist)).await?;
    if records.is_empty() {
        return Err(Error::not_found(format!(
            "There is no dist {dist:?} in this repo."
        )));
    }
    let mut groups: BTreeMap<(String, String), Vec<&FileRecord>> = BTreeMap::new();
    for r in &records {
        let comp = r
            .meta
            .get("component")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        let arch = r
            .meta
            .get("arch")
            .and_then(Value::as_str)
            .unwrap_or("all")
            .to_owned();
        groups.entry((comp, arch)).or_default().push(r);
    }
    let mut b = format!("<h1>{} · {}</h1>\n", escape(&cx.repo), escape(dist));
    for ((comp, arch), rs) in &groups {
        let _ = writeln!(
            b,
            "<h2>{} / {}</h2>\n<table><thead><tr><th>Package</th><th>Version</th><th>Description</th><th class=\"num\">Size</th></tr></thead><tbody>",
            escape(comp),
            escape(arch)
        );
        for r in rs {
            let summary = r
                .meta
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let _ = writeln!(
                b,
                "<tr><td><a href=\"../../{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                r.path
                    .split('/')
                    .map(url_segment)
                    .collect::<Vec<_>>()
                    .join("/"),
                escape(&r.name),
                escape(&r.version),
                escape(summary),
                r.size
            );
        }
        b.push_str("</tbody></table>\n");
    }
    Ok(ServeResponse::bytes(
        "text/html; charset=utf-8",
        page(dist, &b),
    ))
}

/// The long part of a stanza's `Description` (continuation lines, ` .` as an empty line).
fn long_description(stanza: &str) -> Option<String> {
    let mut lines = stanza
        .lines()
        .skip_while(|l| !l.starts_with("Description:"));
    lines.next()?;
    let text: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') || l.starts_with('\t'))
        .map(|l| {
            let l = &l[1..];
            if l == "." { "" } else { l }
        })
        .collect();
    let text = text.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// A deb822 `.sources` file for `dist`.
fn sources_file(cx: &RepoContext, dist: &str, comps: &[&str], keyring: &str) -> String {
    format!(
        "Types: deb\nURIs: {}\nSuites: {dist}\nComponents: {}\nSigned-By: {keyring}\n",
        cx.base_url.trim_end_matches('/'),
        comps.join(" ")
    )
}

pub(crate) fn install_script(cx: &RepoContext, dist: &str, state: &index::State) -> String {
    let base = cx.base_url.trim_end_matches('/');
    let comps: Vec<&str> = state.components.iter().map(String::as_str).collect();
    let repo = &cx.repo;
    format!(
        "#!/bin/sh\n# Adds the artifactd APT repository {repo} ({dist}) to this machine; run as root.\n# Run it again during a key rotation: it fetches every key the repo signs with.\nset -eu\nkeyring=/etc/apt/keyrings/artifactd-{repo}.gpg\ninstall -d -m 0755 /etc/apt/keyrings\nif command -v curl >/dev/null 2>&1; then\n  curl -fsSL '{base}/pubkey.gpg' -o \"$keyring\"\nelse\n  wget -qO \"$keyring\" '{base}/pubkey.gpg'\nfi\nchmod 0644 \"$keyring\"\ncat > /etc/apt/sources.list.d/artifactd-{repo}-{dist}.sources <<EOF\n{sources}EOF\napt-get update\n",
        sources = sources_file(cx, dist, &comps, "$keyring")
    )
}
