//! The measured rows, the targets they are checked against, and the table, CSV and JSON.

use super::*;

/// One measured row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) group: String,
    pub(crate) what: String,
    pub(crate) n: usize,
    pub(crate) subject: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    pub(crate) extra: String,
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) checks: Vec<(String, bool, String)>,
}

impl Report {
    #[allow(clippy::too_many_arguments)] // One argument per column of the table.
    pub(crate) fn add(
        &mut self,
        group: &str,
        what: &str,
        n: usize,
        subject: &str,
        value: f64,
        unit: &'static str,
        extra: String,
    ) {
        eprintln!("  {group:<8} {what:<34} N={n:<6} {subject:<12} {value:>12.2} {unit} {extra}");
        self.rows.push(Row {
            group: group.into(),
            what: what.into(),
            n,
            subject: subject.into(),
            value,
            unit,
            extra,
        });
    }

    /// Whether any subject was measured for `what` (not with `--only` the other provider).
    pub(crate) fn measured(&self, group: &str, what: &str, n: usize) -> bool {
        self.rows
            .iter()
            .any(|r| r.group == group && r.what == what && r.n == n)
    }

    pub(crate) fn get(&self, group: &str, what: &str, n: usize, subject: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.group == group && r.what == what && r.n == n && r.subject == subject)
            .map(|r| r.value)
    }

    pub(crate) fn check(&mut self, target: String, ok: bool, detail: String) {
        eprintln!(
            "  target {}: {target} ({detail})",
            if ok { "met" } else { "MISSED" }
        );
        self.checks.push((target, ok, detail));
    }
}

pub(crate) fn targets(rep: &mut Report, cfg: &Config) {
    for &n in &cfg.ns {
        for page in ["root page", "project page"] {
            if !rep.measured("read", page, n) {
                continue;
            }
            let ours = rep.get("read", page, n, "artifactd").unwrap_or(0.0);
            let py = rep.get("read", page, n, "pypiserver").unwrap_or(f64::NAN);
            let ng = rep.get("read", page, n, "nginx").unwrap_or(f64::NAN);
            rep.check(
                format!("{page} N={n}: >= 10x pypiserver"),
                ours >= 10.0 * py,
                format!("{:.1}x", ours / py),
            );
            if let Some(dv) = rep.get("read", page, n, "devpi") {
                rep.check(
                    format!("{page} N={n}: >= 10x devpi"),
                    ours >= 10.0 * dv,
                    format!("{:.1}x", ours / dv),
                );
            }
            rep.check(
                format!("{page} N={n}: >= 50% of nginx"),
                ours >= 0.5 * ng,
                format!("{:.0}%", 100.0 * ours / ng),
            );
            let p99 = rep
                .get("read", &format!("{page} p99"), n, "artifactd")
                .unwrap_or(f64::NAN);
            let p99n = rep
                .get("read", &format!("{page} p99"), n, "nginx")
                .unwrap_or(f64::NAN);
            rep.check(
                format!("{page} N={n}: p99 <= 2x nginx"),
                p99 <= 2.0 * p99n,
                format!("{p99:.2} ms vs {p99n:.2} ms"),
            );
        }
        let hosted = rep
            .get("read", "project page", n, "artifactd")
            .unwrap_or(f64::NAN);
        for page in ["project page (proxy, cached)", "project page (virtual)"] {
            if let Some(v) = rep.get("read", page, n, "artifactd") {
                rep.check(
                    format!("{page} N={n}: >= 90% of the hosted page"),
                    v >= 0.9 * hosted,
                    format!("{:.0}%", 100.0 * v / hosted),
                );
            }
        }
        for what in [
            "snapshot a dist".to_owned(),
            format!("promote {} packages", (n / 10).max(1)),
        ] {
            if let Some(v) = rep.get("lifecycle", &what, n, "artifactd") {
                rep.check(
                    format!("{what} N={n}: <= 100 ms"),
                    v <= 100.0,
                    format!("{v:.0} ms"),
                );
            }
        }
        if let Some(v) = rep.get("lifecycle", "no package bytes stored twice", n, "artifactd") {
            rep.check(
                format!("snapshot and promotion N={n}: no package bytes stored twice"),
                v == 0.0,
                format!("{v:.0} bytes"),
            );
        }
        let ours = rep
            .get("publish", "add 1 package and republish", n, "artifactd")
            .unwrap_or(f64::NAN);
        let published = rep.measured("publish", "add 1 package and republish", n);
        for peer in ["aptly", "reprepro"].into_iter().filter(|_| published) {
            let t = rep
                .get("publish", "add 1 package and republish", n, peer)
                .unwrap_or(f64::NAN);
            rep.check(
                format!("publish one N={n}: >= 10x faster than {peer}"),
                t >= 10.0 * ours,
                format!("{:.1}x", t / ours),
            );
        }
        for (what, subject) in [
            ("apt-get update (cold)", "nginx"),
            ("uv pip install 20 packages", "nginx"),
        ] {
            if !rep.measured("client", what, n) {
                continue;
            }
            let ours = rep.get("client", what, n, "artifactd").unwrap_or(f64::NAN);
            let st = rep.get("client", what, n, subject).unwrap_or(f64::NAN);
            rep.check(
                format!("{what} N={n}: within 1.2x of static"),
                ours <= 1.2 * st,
                format!("{:.2}x", ours / st),
            );
        }
        // Measured by the PyPI side only (not with `--only apt`).
        if let Some(rss) = rep.get("memory", "RSS under read load", n, "artifactd") {
            rep.check(
                format!("RSS under read load N={n} <= 64 MiB"),
                rss <= 64.0,
                format!("{rss:.1} MiB"),
            );
        }
    }
    let sha = rep
        .get("limit", "sha256 (openssl speed, 16 KiB)", 0, "openssl")
        .unwrap_or(f64::NAN);
    let disk = rep
        .get("limit", "sequential write + fdatasync", 0, "disk")
        .unwrap_or(f64::NAN);
    let limit = sha.min(disk);
    for r in rep
        .rows
        .clone()
        .iter()
        .filter(|r| r.group == "upload" && r.unit == "MB/s")
    {
        rep.check(
            format!("{}: >= 50% of min(sha256, disk)", r.what),
            r.value >= 0.5 * limit,
            format!("{:.0} MB/s vs {limit:.0} MB/s", r.value),
        );
    }
    let peak = rep
        .rows
        .iter()
        .find(|r| r.what.starts_with("peak RSS"))
        .map_or(f64::NAN, |r| r.value);
    rep.check(
        "peak RSS during the large upload <= idle + 32 MiB".into(),
        peak <= 32.0,
        format!("+{peak:.1} MiB"),
    );
    proxy_targets(rep, cfg);
}

/// The proxied first fetch of a large file: first byte within 1 s of the upstream's, RSS
/// growth <= 32 MiB, total within 1.2x of a direct download from the upstream.
fn proxy_targets(rep: &mut Report, cfg: &Config) {
    let what = proxied_what(cfg);
    let get = |rep: &Report, part: &str, subject: &str| {
        rep.get("proxy", &format!("{what}: {part}"), 0, subject)
            .unwrap_or(f64::NAN)
    };
    let (first, direct) = (
        get(rep, "first byte", "artifactd"),
        get(rep, "first byte", "upstream"),
    );
    rep.check(
        format!("{what}: first byte within 1 s of the upstream's"),
        first - direct <= 1000.0,
        format!("{first:.0} ms vs {direct:.0} ms"),
    );
    let (total, direct) = (
        get(rep, "total", "artifactd"),
        get(rep, "total", "upstream"),
    );
    rep.check(
        format!("{what}: total within 1.2x of a direct download"),
        total <= 1.2 * direct,
        format!("{total:.2} s vs {direct:.2} s, {:.2}x", total / direct),
    );
    let rss = get(rep, "RSS growth", "artifactd");
    rep.check(
        format!("{what}: RSS growth <= 32 MiB"),
        rss <= 32.0,
        format!("+{rss:.1} MiB"),
    );
}

pub(crate) fn write_report(rep: &Report, cfg: &Config, quick: bool) {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| group | measurement | N | subject | value | notes |\n|---|---|---:|---|---:|---|"
    );
    for r in &rep.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2} {} | {} |",
            r.group,
            r.what,
            if r.n == 0 {
                "—".into()
            } else {
                r.n.to_string()
            },
            r.subject,
            r.value,
            r.unit,
            r.extra
        );
    }
    let _ = writeln!(md, "\n| target | met | measured |\n|---|---|---|");
    for (t, ok, d) in &rep.checks {
        let _ = writeln!(md, "| {t} | {} | {d} |", if *ok { "yes" } else { "**no**" });
    }
    let mut csv = String::from("group,measurement,n,subject,value,unit,notes\n");
    for r in &rep.rows {
        let _ = writeln!(
            csv,
            "{},{:?},{},{},{},{},{:?}",
            r.group, r.what, r.n, r.subject, r.value, r.unit, r.extra
        );
    }
    let json: Vec<serde_json::Value> = rep
        .rows
        .iter()
        .map(|r| serde_json::json!({"group": r.group, "measurement": r.what, "n": r.n, "subject": r.subject, "value": r.value, "unit": r.unit, "notes": r.extra}))
        .collect();
    let checks: Vec<serde_json::Value> = rep
        .checks
        .iter()
        .map(|(t, ok, d)| serde_json::json!({"target": t, "met": ok, "measured": d}))
        .collect();
    let stem = if quick { "quick" } else { "full" };
    std::fs::write(cfg.out.join(format!("{stem}.md")), &md).expect("md");
    std::fs::write(cfg.out.join(format!("{stem}.csv")), csv).expect("csv");
    std::fs::write(
        cfg.out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&serde_json::json!({"rows": json, "targets": checks}))
            .unwrap_or_default(),
    )
    .expect("json");
    println!("{md}");
    eprintln!("written to {}", cfg.out.display());
}
