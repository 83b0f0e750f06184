//! The database backends the storage-facing tests run on.

use std::path::Path;

use crate::{Options, run};

/// A database backend for the storage-facing tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// MySQL or MariaDB at `ARTIFACTD_TEST_MYSQL_URL` (a server URL without database), by
    /// default the local server on 127.0.0.1:3306 as root.
    Mysql,
    /// PostgreSQL at `ARTIFACTD_TEST_POSTGRES_URL`, by default 127.0.0.1:5432 as postgres.
    Postgres,
}

impl Backend {
    /// The variable that names its server, and the local default.
    fn server(self) -> Option<(&'static str, &'static str, u16)> {
        match self {
            Self::Sqlite => None,
            Self::Mysql => Some((
                "ARTIFACTD_TEST_MYSQL_URL",
                "mysql://root@127.0.0.1:3306",
                3306,
            )),
            Self::Postgres => Some((
                "ARTIFACTD_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432",
                5432,
            )),
        }
    }

    /// The server URL (without a database) the tests use.
    ///
    /// # Panics
    /// When there is none (see [`backends`]).
    pub fn server_url(self) -> String {
        self.url().unwrap_or_else(|why| panic!("{why}"))
    }

    /// The server URL (without a database): the variable's, or the local default when a server
    /// answers on its port. `Err` says why there is none.
    fn url(self) -> Result<String, String> {
        let Some((var, default, port)) = self.server() else {
            return Err("SQLite has no server".to_owned());
        };
        if let Ok(url) = std::env::var(var) {
            return Ok(url);
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)) {
            Ok(_) => Ok(default.to_owned()),
            Err(e) => Err(format!(
                "{var} is not set and nothing answers on 127.0.0.1:{port} ({e})"
            )),
        }
    }
}

/// The backends to test on: SQLite always; MySQL and PostgreSQL from their variables, or on
/// their local default ports when a server answers there. In CI (`CI` set) a missing server
/// fails the test instead of leaving a backend out.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    for b in [Backend::Mysql, Backend::Postgres] {
        match b.url() {
            Ok(_) => out.push(b),
            Err(why) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{b:?} is needed in CI: {why}"
                );
                eprintln!("{b:?} skipped: {why}");
            }
        }
    }
    out
}

/// Creates a fresh database on `backend` and returns its `DATABASE_URL` (`None` for SQLite,
/// which lives in the server's data folder).
pub fn fresh_database(backend: Backend) -> Option<String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "artifactd_t{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    if backend == Backend::Sqlite {
        return None;
    }
    let base = backend.server_url();
    let sql = |statement: &str| -> String {
        match backend {
            Backend::Mysql => {
                let u = ureq::http::Uri::try_from(base.as_str()).expect("mysql url");
                let host = u.host().unwrap_or("127.0.0.1").to_owned();
                let port = u.port_u16().unwrap_or(3306).to_string();
                let user = u
                    .authority()
                    .and_then(|a| a.as_str().split_once('@'))
                    .map_or("root", |(ui, _)| ui.split(':').next().unwrap_or("root"))
                    .to_owned();
                run(crate::tool("mysql")
                    .args(["-h", &host, "-P", &port, "-u", &user, "-N", "-e", statement]))
            }
            _ => run(crate::tool("psql")
                .arg(format!("{}/postgres", base.trim_end_matches('/')))
                .args(["-q", "-At", "-c", statement])),
        }
    };
    // Databases that earlier runs left (their process is gone) are dropped, once per run.
    static SWEPT: std::sync::Mutex<Vec<Backend>> = std::sync::Mutex::new(Vec::new());
    let mut swept = SWEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !swept.contains(&backend) {
        swept.push(backend);
        let list = match backend {
            Backend::Mysql => sql("SHOW DATABASES LIKE 'artifactd\\_t%'"),
            _ => sql("SELECT datname FROM pg_database WHERE datname LIKE 'artifactd\\_t%'"),
        };
        for db in list.lines().map(str::trim) {
            let pid = db
                .strip_prefix("artifactd_t")
                .and_then(|rest| rest.split('_').next())
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let quoted = if backend == Backend::Mysql {
                    format!("`{db}`")
                } else {
                    format!("\"{db}\"")
                };
                sql(&format!("DROP DATABASE {quoted}"));
            }
        }
    }
    drop(swept);
    sql(&format!("CREATE DATABASE {name}"));
    Some(format!("{}/{name}", base.trim_end_matches('/')))
}

impl Options {
    /// On a fresh database of `backend`.
    pub fn on(self, backend: Backend) -> Self {
        match fresh_database(backend) {
            Some(url) => self.arg("--database").arg(url),
            None => self,
        }
    }
}
