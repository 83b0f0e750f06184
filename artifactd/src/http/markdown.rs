//! Package descriptions: Markdown to HTML, with the raw HTML in it (logos, centred headings,
//! badges) kept through an allow-list of tags and attributes like the one PyPI's
//! `readme_renderer` uses: no script, style, forms or event attributes, and only http(s) and
//! mailto URLs.

/// Whether a link may be shown: absolute http(s) URLs without spaces or control characters.
pub fn safe_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Tags kept, with the attributes each may carry (beyond `id`, which is prefixed).
const TAGS: &[(&str, &[&str])] = &[
    ("a", &["href", "title"]),
    ("abbr", &["title"]),
    ("b", &[]),
    ("blockquote", &[]),
    ("br", &[]),
    ("caption", &[]),
    ("cite", &[]),
    ("code", &["class"]),
    ("dd", &[]),
    ("del", &[]),
    ("details", &["open"]),
    ("div", &["align"]),
    ("dl", &[]),
    ("dt", &[]),
    ("em", &[]),
    ("figcaption", &[]),
    ("figure", &[]),
    ("h1", &["align"]),
    ("h2", &["align"]),
    ("h3", &["align"]),
    ("h4", &["align"]),
    ("h5", &["align"]),
    ("h6", &["align"]),
    ("hr", &[]),
    ("i", &[]),
    ("img", &["src", "alt", "title", "width", "height", "align"]),
    ("input", &["type", "checked", "disabled"]),
    ("kbd", &[]),
    ("li", &[]),
    ("ol", &["start"]),
    ("p", &["align"]),
    ("picture", &[]),
    ("pre", &[]),
    ("s", &[]),
    ("source", &["srcset", "media", "type"]),
    ("span", &[]),
    ("strong", &[]),
    ("sub", &[]),
    ("summary", &[]),
    ("sup", &[]),
    ("table", &[]),
    ("tbody", &[]),
    ("td", &["align", "colspan", "rowspan"]),
    ("tfoot", &[]),
    ("th", &["align", "colspan", "rowspan"]),
    ("thead", &[]),
    ("tr", &[]),
    ("tt", &[]),
    ("ul", &[]),
    ("var", &[]),
];

/// Markdown to HTML; raw HTML goes through the allow-list, links and images keep only absolute
/// http(s) (and mailto) URLs, ids are prefixed so they cannot clash with the page's own.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{Options, Parser};
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(text, options));
    sanitizer().clean(&html).to_string()
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: std::sync::OnceLock<ammonia::Builder<'static>> = std::sync::OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::empty();
        b.add_tags(TAGS.iter().map(|(t, _)| *t))
            .add_generic_attributes(["id"])
            .id_prefix(Some("user-content-"))
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("nofollow noopener noreferrer"))
            .strip_comments(true);
        for (tag, attrs) in TAGS {
            b.add_tag_attributes(tag, attrs.iter().copied());
        }
        // A task list's checkbox shows its state; nothing else may be an input, and none works.
        b.set_tag_attribute_value("input", "disabled", "");
        b.attribute_filter(|element, attribute, value| match (element, attribute) {
            ("input", "type") if value != "checkbox" => Some("checkbox".into()),
            _ => Some(value.into()),
        });
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_goes_through_the_allow_list() {
        let html = markdown(
            "<div align=\"center\"><img src=\"https://example.org/logo.svg\" width=\"200\" onerror=\"x()\"></div>\n\n\
             <p align=\"center\"><a href=\"https://example.org/ci\"><img alt=\"badge\" src=\"https://img.example.org/b.svg\"></a></p>\n\n\
             # Title\n\n<script>alert(1)</script><style>body{}</style><iframe src=\"https://x.org\"></iframe>\n\n\
             [js](javascript:alert(1)) [rel](/local) ![i](javascript:alert(2)) <a href=\"https://ok.org\" onclick=\"x()\">ok</a>\n\n\
             <h2 id=\"setup-1\" style=\"color:red\">Setup</h2><form action=\"https://x.org\"><input type=\"text\"></form>\n",
        );
        for kept in [
            "<div align=\"center\"><img src=\"https://example.org/logo.svg\" width=\"200\"></div>",
            "<p align=\"center\"><a href=\"https://example.org/ci\" rel=\"nofollow noopener noreferrer\"><img alt=\"badge\" src=\"https://img.example.org/b.svg\"></a></p>",
            "<h1>Title</h1>",
            "<h2 id=\"user-content-setup-1\">Setup</h2>",
            "<a href=\"https://ok.org\" rel=\"nofollow noopener noreferrer\">ok</a>",
        ] {
            assert!(html.contains(kept), "{kept} missing in {html}");
        }
        for gone in [
            "script",
            "alert",
            "style",
            "iframe",
            "javascript",
            "onerror",
            "onclick",
            "/local",
            "<form",
            "type=\"text\"",
            "style",
        ] {
            assert!(!html.contains(gone), "{gone} left in {html}");
        }
    }
}
