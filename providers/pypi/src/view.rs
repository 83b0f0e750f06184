//! How the web UI shows a PyPI repo and its files: set-up snippets and file facts.

use artifactd_plugin_api::serde_json::Value;
use artifactd_plugin_api::ui::{Description, FileView, Snippet, meta_str};
use artifactd_plugin_api::{FileRecord, RepoContext};

/// pip, uv and twine set-up for the repo page; private repos get the token in the URL.
pub(crate) fn setup_snippets(cx: &RepoContext) -> Vec<Snippet> {
    let url = &cx.base_url;
    let (shell, file) = if cx.settings.private {
        (
            with_user(url, "__token__:$ARTIFACTD_TOKEN"),
            with_user(url, "__token__:YOUR_TOKEN"),
        )
    } else {
        (url.clone(), url.clone())
    };
    let name = &cx.repo;
    vec![
        Snippet::new(
            "pip install",
            format!("pip install --index-url \"{shell}simple/\" PACKAGE"),
        ),
        Snippet::new("pip.conf", format!("[global]\nindex-url = {file}simple/")),
        Snippet::new(
            "uv (pyproject.toml)",
            format!(
                "[[tool.uv.index]]\nname = \"{name}\"\nurl = \"{file}simple/\"\ndefault = true"
            ),
        ),
        Snippet::new(
            "Upload with twine",
            format!(
                "twine upload --repository-url {url} -u __token__ -p \"$ARTIFACTD_TOKEN\" dist/*"
            ),
        ),
        Snippet::new(
            "Upload with uv",
            format!("uv publish --publish-url {url} --token \"$ARTIFACTD_TOKEN\" dist/*"),
        ),
    ]
}

/// `http://host/x` with `user@` after the scheme.
fn with_user(url: &str, user: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{user}@{rest}"),
        None => url.to_owned(),
    }
}

/// A file's summary, description, facts and links.
pub(crate) fn file_view(record: &FileRecord) -> FileView {
    let mut view = FileView::from_meta(record);
    if let Some(text) = meta_str(record, "description").filter(|t| !t.trim().is_empty()) {
        let markdown = meta_str(record, "description_content_type")
            .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("text/markdown"));
        view.description = Some(Description {
            text: text.to_owned(),
            markdown,
        });
    }
    let requires: Vec<&str> = record
        .meta
        .get("requires_dist")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    view = view
        .fact("Requires Python", meta_str(record, "requires_python"))
        .fact("Requires", Some(&requires.join(", ")))
        .fact("License", meta_str(record, "license"))
        .fact("Author", meta_str(record, "author"))
        .fact("Type", meta_str(record, "filetype"));
    if let Some(home) = meta_str(record, "home_page") {
        view.links.push(("Homepage".to_owned(), home.to_owned()));
    }
    for link in record
        .meta
        .get("project_urls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(label), Some(url)) = (
            link.get("label").and_then(Value::as_str),
            link.get("url").and_then(Value::as_str),
        ) {
            view.links.push((label.to_owned(), url.to_owned()));
        }
    }
    view
}
