//! Command line and environment → a validated [`Config`]; every setting is checked here, at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `artifactd` command line.
#[derive(Debug, Parser)]
#[command(
    name = "artifactd",
    version,
    about = "A software repository server (PyPI, APT and more)."
)]
pub struct Args {
    /// Port to listen on (all interfaces unless --listen names an address).
    #[arg(short = 'p', long, env = "ARTIFACTD_PORT")]
    pub port: Option<u16>,
    /// Address and port to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, env = "ARTIFACTD_LISTEN")]
    pub listen: Option<String>,
    /// Folder for the embedded SQLite database, local blobs and temporary upload files.
    #[arg(long, env = "ARTIFACTD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL: sqlite://PATH, mysql://USER:PASS@HOST/DB or postgres://USER@HOST/DB.
    #[arg(short = 'd', long, env = "DATABASE_URL")]
    pub database: Option<String>,
    /// S3 URL: http(s)://KEY:SECRET@ENDPOINT[:PORT]/BUCKET[?region=REGION]; blobs go to the data
    /// folder without it.
    #[arg(short = 's', long = "s3", env = "S3_URL")]
    pub s3: Option<String>,
    /// S3 region (`?region=` in the S3 URL takes precedence).
    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// The external URL clients reach this server at (default: taken from each request's Host).
    #[arg(long, env = "ARTIFACTD_BASE_URL")]
    pub base_url: Option<String>,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "ARTIFACTD_MAX_UPLOAD_BYTES", default_value_t = 4 << 30)]
    pub max_upload_bytes: u64,
    /// Seconds a client may take to send its request headers, and may leave a request body idle.
    #[arg(long, env = "ARTIFACTD_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub read_timeout_secs: u64,
    /// Slowest accepted request body, in bytes per second, once the read timeout has passed
    /// (a body trickled to hold a connection and a temporary file gets 408).
    #[arg(long, env = "ARTIFACTD_MIN_UPLOAD_RATE", default_value_t = 1024)]
    pub min_upload_rate: u64,
    /// Verbose logging.
    #[arg(long)]
    pub debug: bool,
    /// Log lines as text or as JSON objects (one per line, with the request id of the request
    /// they belong to).
    #[arg(long, env = "ARTIFACTD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Let anonymous clients upload (the seed's open behaviour, for a trusted network only).
    #[arg(long, env = "ARTIFACTD_ALLOW_ANONYMOUS_UPLOAD", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub allow_anonymous_upload: bool,
    /// Repos declared in a TOML file (`[[repo]]` tables: provider, name, kind, upstream,
    /// members, settings), applied at every start; applying the same file again changes nothing.
    #[arg(long, env = "ARTIFACTD_REPOS_FILE")]
    pub repos_file: Option<PathBuf>,
    /// Serve `/metrics` on this address and port only (e.g. 127.0.0.1:9090), not on the
    /// public port.
    #[arg(long, env = "ARTIFACTD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Require this Bearer token for `/metrics`.
    #[arg(long, env = "ARTIFACTD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// The bootstrap admin token (stored hashed on start).
    #[arg(long, env = "ARTIFACTD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply each repo's retention settings (keep_last, keep_min_age, pins), then remove blobs
    /// that nothing refers to (left by crashes, refused races, deletes) and stale temporary
    /// upload files, then exit.
    Gc {
        /// Only remove what is older than this many seconds (uploads in flight are younger).
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
        /// Print what retention and collection would remove; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check that every record's blob is stored with its size, that published indexes match
    /// the catalog and list only stored files, that signed indexes verify, and that no blob
    /// lacks a record beyond the grace period; print each problem, exit 1 when there is one.
    Fsck {
        /// Also read every blob and compare its SHA-256 with its record's.
        #[arg(long)]
        deep: bool,
        /// Quarantine records whose blob is gone or corrupt and rebuild the indexes of each
        /// repo with a problem (never deletes a blob); then check again.
        #[arg(long)]
        repair: bool,
        /// Blobs without a record younger than this many seconds are uploads in flight.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
    /// Write repos (their catalog rows, signing keys, blobs and published files) to a new
    /// folder, for a backup or a move to other backends.
    Export {
        /// PROVIDER/NAME of each repo; every repo (and the tokens) when none is named.
        repos: Vec<String>,
        /// The folder to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Read an export into this server's database and blob store (`import --from DIR`; its
    /// repos must not exist), or take over an existing repo: `import pypi REPO --from-dir DIR`
    /// (a pypiserver packages folder), `import apt REPO --from-apt DIR_OR_URL --dist D [--key
    /// FILE]` (a published APT repo, e.g. of reprepro or aptly, and its old signing key), or
    /// `import apt REPO --from-dir DIR --dist D [--component C]` (a folder of `.deb` files).
    Import {
        /// `pypi` or `apt`, to take over an existing repo.
        provider: Option<String>,
        /// The repo to import into.
        repo: Option<String>,
        /// An export folder (`artifactd export`).
        #[arg(long)]
        from: Option<PathBuf>,
        /// A folder of packages: a pypiserver packages folder, or for `apt` a folder of `.deb`
        /// files (with `--dist`, optionally `--component`).
        #[arg(long)]
        from_dir: Option<PathBuf>,
        /// A published APT repo: the folder or URL that holds `dists/` and `pool/`.
        #[arg(long)]
        from_apt: Option<String>,
        /// The dist to import from the APT repo (or into, with `--from-dir`).
        #[arg(long)]
        dist: Option<String>,
        /// The component `--from-dir` imports into (`main` when not given).
        #[arg(long)]
        component: Option<String>,
        /// The APT repo's armored secret signing key, to sign with it from now on.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Its passphrase.
        #[arg(long, env = "ARTIFACTD_KEY_PASSPHRASE", hide_env_values = true)]
        passphrase: Option<String>,
    },
}

/// A setting that cannot work, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Names the setting and says what is wrong.
    #[error("{setting}: {message}")]
    Invalid {
        /// The flag or variable.
        setting: &'static str,
        /// What is wrong, as one sentence.
        message: String,
    },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

/// Where blobs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// A folder on local disk.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// A parsed `S3_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// Access key id (empty: take it from the AWS environment).
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Region.
    pub region: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A validated configuration.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The sea-orm connection URL.
    pub database_url: String,
    /// Blob storage.
    pub blobs: BlobConfig,
    /// External base URL without a trailing `/`, when configured.
    pub base_url: Option<String>,
    /// Largest accepted upload.
    pub max_upload_bytes: u64,
    /// How long request headers may take and a request body may stay idle.
    pub read_timeout: std::time::Duration,
    /// Slowest accepted request body after the read timeout, in bytes per second.
    pub min_upload_rate: u64,
    /// Verbose logging.
    pub debug: bool,
    /// Anonymous uploads allowed.
    pub allow_anonymous_upload: bool,
    /// The bootstrap admin token.
    pub admin_token: Option<String>,
    /// Where `/metrics` is served, when not on the public port.
    pub metrics_listen: Option<SocketAddr>,
    /// The Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<String>,
    /// Repos declared in a file, applied at start.
    pub repos_file: Option<PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact(&self.database_url))
            .field("blobs", &self.blobs)
            .field("allow_anonymous_upload", &self.allow_anonymous_upload)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Validates the command line.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting.
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let mut listen: SocketAddr = match &args.listen {
            Some(l) => l.parse().map_err(|_| {
                invalid(
                    "--listen",
                    format!("{l:?} is not an ADDRESS:PORT such as 127.0.0.1:8080."),
                )
            })?,
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
        };
        if let Some(port) = args.port {
            listen.set_port(port);
        }
        let database_url = match &args.database {
            Some(url) => normalize_database_url(url)?,
            None => {
                let path = args.data_dir.join("artifactd.sqlite3");
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let blobs = match &args.s3 {
            Some(url) => BlobConfig::S3(parse_s3_url(url, &args.s3_region)?),
            None => BlobConfig::Local(args.data_dir.join("blobs")),
        };
        let base_url = match &args.base_url {
            Some(u) => {
                let parsed = url::Url::parse(u)
                    .map_err(|e| invalid("--base-url", format!("{u:?} is not a URL ({e}).")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("--base-url", "Use an http:// or https:// URL."));
                }
                Some(u.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let metrics_listen = match &args.metrics_listen {
            Some(l) => Some(l.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "--metrics-listen",
                    format!("{l:?} is not an ADDRESS:PORT such as 127.0.0.1:9090."),
                )
            })?),
            None => None,
        };
        if args.read_timeout_secs == 0 {
            return Err(invalid(
                "--read-timeout-secs",
                "The timeout must be above zero.",
            ));
        }
        if args.min_upload_rate == 0 {
            return Err(invalid(
                "--min-upload-rate",
                "The rate must be above zero bytes per second.",
            ));
        }
        if args.max_upload_bytes == 0 {
            return Err(invalid(
                "--max-upload-bytes",
                "The limit must be above zero.",
            ));
        }
        Ok(Self {
            listen,
            data_dir: args.data_dir.clone(),
            database_url,
            blobs,
            base_url,
            max_upload_bytes: args.max_upload_bytes,
            read_timeout: std::time::Duration::from_secs(args.read_timeout_secs),
            min_upload_rate: args.min_upload_rate,
            debug: args.debug,
            allow_anonymous_upload: args.allow_anonymous_upload,
            admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
            metrics_listen,
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            repos_file: args.repos_file.clone(),
        })
    }
}

/// Accepts `sqlite:`, `mysql:`, `mariadb:`, `postgres:`/`postgresql:` URLs, and SQLAlchemy's
/// `dialect+driver://` form, whose driver part is ignored.
fn normalize_database_url(url: &str) -> Result<String, ConfigError> {
    let setting = "--database/DATABASE_URL";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            setting,
            format!(
                "{:?} is not a URL; use sqlite://PATH, mysql://USER:PASS@HOST/DB or postgres://USER@HOST/DB.",
                redact(url)
            ),
        ));
    };
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let scheme = match dialect.as_str() {
        "sqlite" => {
            let mut u = format!("sqlite://{rest}");
            if !rest.contains("mode=") {
                u.push_str(if rest.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            return Ok(u);
        }
        "mysql" | "mariadb" => "mysql",
        "postgres" | "postgresql" => "postgres",
        other => {
            return Err(invalid(
                setting,
                format!(
                    "the database kind {other:?} is not supported; use sqlite, mysql or postgres."
                ),
            ));
        }
    };
    Ok(format!("{scheme}://{rest}"))
}

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn parse_s3_url(raw: &str, region: &str) -> Result<S3Config, ConfigError> {
    let setting = "--s3/S3_URL";
    let shape = "use http(s)://KEY:SECRET@ENDPOINT[:PORT]/BUCKET";
    let u = url::Url::parse(raw).map_err(|e| {
        invalid(
            setting,
            format!("{:?} is not a URL ({e}); {shape}.", redact(raw)),
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(invalid(
            setting,
            format!("the scheme must be http or https; {shape}."),
        ));
    }
    let host = u
        .host_str()
        .ok_or_else(|| invalid(setting, format!("the URL has no endpoint host; {shape}.")))?;
    let bucket = u.path().trim_matches('/');
    if bucket.is_empty() || bucket.contains('/') {
        return Err(invalid(
            setting,
            format!("the path must be exactly one bucket name; {shape}."),
        ));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let endpoint = match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    };
    let mut region = region.to_owned();
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "region" if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) => {
                region = v.into_owned();
            }
            "region" => {
                return Err(invalid(
                    setting,
                    "?region= needs a region name such as eu-west-1 or garage.",
                ));
            }
            other => {
                return Err(invalid(
                    setting,
                    format!(
                        "unknown query parameter {other:?}: the URL takes only ?region=REGION."
                    ),
                ));
            }
        }
    }
    Ok(S3Config {
        endpoint,
        bucket: bucket.to_owned(),
        access_key: decode(u.username()),
        secret_key: u.password().map(decode).unwrap_or_default(),
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["artifactd"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert!(
            c.database_url
                .starts_with("sqlite://./data/artifactd.sqlite3")
        );
        assert_eq!(c.blobs, BlobConfig::Local(PathBuf::from("./data/blobs")));
    }

    #[test]
    fn port_overrides_listen() {
        let c = Config::from_args(&args(&["--listen", "127.0.0.1:1", "-p", "9000"])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn sqlalchemy_urls_drop_the_driver() {
        assert_eq!(
            normalize_database_url("mysql+pymysql://u:p@db/x").unwrap(),
            "mysql://u:p@db/x"
        );
        assert_eq!(
            normalize_database_url("postgresql://u@db/x").unwrap(),
            "postgres://u@db/x"
        );
        assert!(normalize_database_url("oracle://x").is_err());
        assert!(normalize_database_url("nonsense").is_err());
    }

    #[test]
    fn s3_urls() {
        let s = parse_s3_url("http://key:se%2Fcret@127.0.0.1:9000/bucket", "r").unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:9000");
        assert_eq!(s.bucket, "bucket");
        assert_eq!(s.access_key, "key");
        assert_eq!(s.secret_key, "se/cret");
        assert!(parse_s3_url("http://k:s@host/", "r").is_err());
        assert!(parse_s3_url("ftp://k:s@host/b", "r").is_err());
        assert!(parse_s3_url("http://k:s@host/a/b", "r").is_err());
        assert_eq!(s.region, "r");
        let s = parse_s3_url("http://k:s@host:3900/b?region=garage", "us-east-1").unwrap();
        assert_eq!((s.bucket.as_str(), s.region.as_str()), ("b", "garage"));
        assert!(parse_s3_url("http://k:s@host/b?region=", "r").is_err());
        let e = parse_s3_url("http://k:s@host/b?style=path", "r").unwrap_err();
        assert!(e.to_string().contains("only ?region=REGION"), "{e}");
    }
}
