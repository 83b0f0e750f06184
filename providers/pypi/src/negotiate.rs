//! `Accept` negotiation between the simple API's formats (PEP 691), by real q-values.

/// The answer when no offered format is acceptable.
pub fn not_acceptable() -> artifactd_plugin_api::ServeResponse {
    use artifactd_plugin_api::http::{HeaderValue, StatusCode, header::VARY};
    artifactd_plugin_api::ServeResponse::bytes(
        "text/plain; charset=utf-8",
        "None of the offered formats is acceptable: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html.\n",
    )
    .with_status(StatusCode::NOT_ACCEPTABLE)
    .with_header(VARY, HeaderValue::from_static("Accept"))
}

/// The formats of the simple API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    Html,
    /// `text/html` (PEP 503, browsers).
    TextHtml,
}

impl Format {
    /// The `Content-Type` to send.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/vnd.pypi.simple.v1+json",
            Self::Html => "application/vnd.pypi.simple.v1+html",
            Self::TextHtml => "text/html; charset=utf-8",
        }
    }

    /// A short tag for ETags.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Json => "j",
            Self::Html => "h",
            Self::TextHtml => "t",
        }
    }
}

/// Our preference on equal q-values: JSON, then the versioned HTML, then text/html.
const OFFERS: [(Format, &str, &str); 3] = [
    (Format::Json, "application", "vnd.pypi.simple.v1+json"),
    (Format::Html, "application", "vnd.pypi.simple.v1+html"),
    (Format::TextHtml, "text", "html"),
];

/// Picks the format for an `Accept` header; `None` when nothing offered is acceptable (406).
/// No header means `text/html`, as for PEP 503 clients. `application/vnd.pypi.simple.latest+json`
/// and `+html` alias v1.
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(Format::TextHtml);
    };
    // For each offer, the q of the most specific matching range (exact > type/* > */*).
    let mut best: [(i8, f32); 3] = [(-1, 0.0); 3];
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        let Some((ty, sub)) = media.split_once('/') else {
            continue;
        };
        let sub = sub.replace("simple.latest+", "simple.v1+");
        for (i, (_, oty, osub)) in OFFERS.iter().enumerate() {
            let specificity = if ty == *oty && sub == *osub {
                2
            } else if ty == *oty && sub == "*" {
                1
            } else if ty == "*" && sub == "*" {
                0
            } else {
                continue;
            };
            if specificity > best[i].0 {
                best[i] = (specificity, q);
            }
        }
    }
    // Ties on q go to the more specific match; among wildcard matches, browsers' text/html wins,
    // among exact ones, our order (JSON first).
    let mut pick: Option<(Format, (f32, i8, usize))> = None;
    for (i, (fmt, _, _)) in OFFERS.iter().enumerate() {
        let (spec, q) = best[i];
        if spec < 0 || q <= 0.0 {
            continue;
        }
        let pref = if spec == 2 { OFFERS.len() - i } else { i };
        let score = (q, spec, pref);
        if pick.is_none_or(|(_, s)| score > s) {
            pick = Some((*fmt, score));
        }
    }
    pick.map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(negotiate(Some(pip)), Some(Format::Json));
        let uv = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
        assert_eq!(negotiate(Some(uv)), Some(Format::Json));
        assert_eq!(negotiate(None), Some(Format::TextHtml));
        assert_eq!(negotiate(Some("*/*")), Some(Format::TextHtml));
        assert_eq!(
            negotiate(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Some(Format::TextHtml)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+html")),
            Some(Format::Html)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.latest+json")),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(Some(
                "text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4"
            )),
            Some(Format::TextHtml)
        );
        assert_eq!(negotiate(Some("application/json")), None);
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0")),
            None
        );
        assert_eq!(
            negotiate(Some("*/*;q=0.1, application/vnd.pypi.simple.v1+json;q=0")),
            Some(Format::TextHtml)
        );
    }
}
