//! The catalog database: connection, migrations, and the repo table's operations.

pub mod entities;
mod migration;

use std::time::Duration;

use artifactd_plugin_api::RepoSettings;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr,
};
use sea_orm_migration::MigratorTrait;

use entities::repo;

pub use migration::Migrator;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbStartError {
    /// Connecting failed.
    #[error("cannot connect to the database at {url}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: DbErr,
    },
    /// The server does not answer.
    #[error("cannot reach the database server at {addr}")]
    Unreachable {
        /// host:port.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[source] DbErr),
}

/// For network databases, one TCP connect first, so an unreachable server fails at once with
/// the operating system's reason instead of a pool time-out.
async fn probe(url: &str) -> Result<(), DbStartError> {
    let Ok(u) = url::Url::parse(url) else {
        return Ok(());
    };
    let port = match u.scheme() {
        "mysql" => 3306,
        "postgres" => 5432,
        _ => return Ok(()),
    };
    let Some(host) = u.host_str() else {
        return Ok(());
    };
    let addr = format!("{host}:{}", u.port().unwrap_or(port));
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(DbStartError::Unreachable { addr, source }),
        Err(_) => Err(DbStartError::Unreachable {
            addr,
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s"),
        }),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What clients are told while the database cannot be reached.
/// Values one statement binds at most in a list (`IN (…)`, a multi-row insert's rows): every
/// database limits the values of a statement (SQLite's default is 32,766).
pub const VALUES_PER_STATEMENT: usize = 500;

pub const UNREACHABLE: &str = "The database is unreachable; try again shortly.";

/// Whether a database error means the server could not talk to the database at all.
pub fn unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, SqlxError};
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(x))
        | DbErr::Exec(RuntimeErr::SqlxError(x))
        | DbErr::Query(RuntimeErr::SqlxError(x)) => matches!(
            x.as_ref(),
            SqlxError::Io(_)
                | SqlxError::Tls(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed
        ),
        DbErr::Conn(_) => true,
        _ => false,
    }
}

/// The catalog database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Repo rows kept between reads, for an embedded database only (see [`RowCache`]).
    rows: Option<std::sync::Arc<RowCache>>,
    /// Permits for repo row queries, as many as the pool has connections: a request that
    /// waits for one holds a permit request, not a built query and its futures. Every read
    /// of a repo makes this query (or finds its row cached), so a burst of readers would
    /// otherwise queue a thousand built queries for the pool.
    row_queries: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Connections of the pool, and permits of [`Db::row_queries`].
const POOL_SIZE: u32 = 16;

/// How long a cached repo row may be used without being read again, whatever this process
/// wrote: the bound for changes it cannot see (another process on the same SQLite file, a
/// write whose request was cancelled while its commit was in flight).
const ROW_TTL: Duration = Duration::from_secs(1);

/// Repo rows of an embedded database, so that a read of a cached page or index makes no query.
///
/// A network database is shared by several nodes, and a read there always fetches the row: its
/// generation is what tells this node that another one changed the repo. An SQLite file is
/// written by this process, which invalidates the rows after every committed change
/// ([`Db::repos_changed`]); rows are also read again after [`ROW_TTL`].
#[derive(Debug, Default)]
struct RowCache {
    /// Bumped after every committed change of a repo row.
    epoch: std::sync::atomic::AtomicU64,
    /// provider → name → row.
    rows: std::sync::RwLock<
        std::collections::HashMap<String, std::collections::HashMap<String, Kept>>,
    >,
}

/// A cached row with the epoch read before it was queried and when it was read.
#[derive(Debug)]
struct Kept {
    epoch: u64,
    at: std::time::Instant,
    row: repo::Model,
}

impl RowCache {
    fn get(&self, provider: &str, name: &str) -> Option<repo::Model> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let rows = self
            .rows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = rows.get(provider)?.get(name)?;
        (kept.epoch == epoch && kept.at.elapsed() < ROW_TTL).then(|| kept.row.clone())
    }

    fn put(&self, epoch: u64, row: &repo::Model) {
        let mut rows = self
            .rows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.entry(row.provider.clone()).or_default().insert(
            row.name.clone(),
            Kept {
                epoch,
                at: std::time::Instant::now(),
                row: row.clone(),
            },
        );
    }
}

impl Db {
    /// Connects and runs the migrations.
    ///
    /// # Errors
    /// [`DbStartError`] when the database is unreachable or cannot be migrated.
    pub async fn open(url: &str) -> Result<Self, DbStartError> {
        probe(url).await?;
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(POOL_SIZE)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            // A database restart shorter than this is ridden out by waiting requests; longer
            // outages answer 503 (see `http::error`).
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            // A network database may have dropped a pooled connection (restart, failover);
            // SQLite is a local file, where the check would only add a round trip per query.
            .test_before_acquire(!url.starts_with("sqlite:"))
            .sqlx_logging(std::env::var_os("ARTIFACTD_SQL_LOG").is_some());
        let conn = Database::connect(opts)
            .await
            .map_err(|source| DbStartError::Connect {
                url: crate::config::redact(url),
                source,
            })?;
        if conn.get_database_backend() == sea_orm::DbBackend::Sqlite {
            conn.execute_unprepared("PRAGMA journal_mode=WAL")
                .await
                .map_err(DbStartError::Migrate)?;
        }
        Migrator::up(&conn, None)
            .await
            .map_err(DbStartError::Migrate)?;
        let rows = (conn.get_database_backend() == sea_orm::DbBackend::Sqlite)
            .then(std::sync::Arc::default);
        Ok(Self {
            conn,
            rows,
            row_queries: std::sync::Arc::new(tokio::sync::Semaphore::new(POOL_SIZE as usize)),
        })
    }

    /// The connection (a pool).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// How the connection pool is used right now (`None` for a backend without a pool).
    pub fn pool_use(&self) -> Option<crate::metrics::PoolUse> {
        let (open, idle, max) = match self.conn.get_database_backend() {
            DbBackend::Sqlite => {
                let p = self.conn.get_sqlite_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
            DbBackend::MySql => {
                let p = self.conn.get_mysql_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
            DbBackend::Postgres => {
                let p = self.conn.get_postgres_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
            _ => return None,
        };
        Some(crate::metrics::PoolUse {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        })
    }

    /// Tells the repo row cache that a change of repo rows was committed. Every write of the
    /// repo table calls this after its commit.
    pub fn repos_changed(&self) {
        if let Some(c) = &self.rows {
            c.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Commits `txn`, which changed a repo row, and tells the row cache.
    ///
    /// # Errors
    /// Database failures.
    pub async fn commit(&self, txn: sea_orm::DatabaseTransaction) -> Result<(), DbErr> {
        let result = txn.commit().await;
        self.repos_changed();
        result
    }

    /// The repo `provider/name` for a read: from the row cache of an embedded database when
    /// nothing changed since it was read, else as [`Db::repo`].
    ///
    /// # Errors
    /// Database failures.
    pub async fn repo_for_read(
        &self,
        provider: &str,
        name: &str,
    ) -> Result<Option<repo::Model>, DbErr> {
        let Some(cache) = &self.rows else {
            return self.repo(provider, name).await;
        };
        if let Some(row) = cache.get(provider, name) {
            return Ok(Some(row));
        }
        let _permit = self.row_query_permit().await?;
        // Readers that missed the row together queued for permits: the first one's query
        // serves those behind it.
        if let Some(row) = cache.get(provider, name) {
            return Ok(Some(row));
        }
        // The epoch before the query: a change committed meanwhile makes this entry stale.
        let epoch = cache.epoch.load(std::sync::atomic::Ordering::Acquire);
        let row = Box::pin(self.repo_query(provider, name)).await?;
        if let Some(r) = &row {
            cache.put(epoch, r);
        }
        Ok(row)
    }

    async fn row_query_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, DbErr> {
        self.row_queries
            .acquire()
            .await
            .map_err(|_| DbErr::Custom("the repo row queries were closed".into()))
    }

    /// The repo `provider/name`, if it exists.
    ///
    /// # Errors
    /// Database failures.
    pub async fn repo(&self, provider: &str, name: &str) -> Result<Option<repo::Model>, DbErr> {
        let _permit = self.row_query_permit().await?;
        Box::pin(self.repo_query(provider, name)).await
    }

    async fn repo_query(&self, provider: &str, name: &str) -> Result<Option<repo::Model>, DbErr> {
        repo::Entity::find()
            .filter(repo::Column::Provider.eq(provider))
            .filter(repo::Column::Name.eq(name))
            .one(&self.conn)
            .await
    }

    /// The repo `provider/name`, created with default settings if it does not exist. Safe
    /// against concurrent creation: the unique index decides, the loser reads the winner's row.
    ///
    /// # Errors
    /// Database failures.
    pub async fn repo_or_create(&self, provider: &str, name: &str) -> Result<repo::Model, DbErr> {
        if let Some(r) = self.repo(provider, name).await? {
            return Ok(r);
        }
        let settings = serde_json::to_string(&RepoSettings::default())
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let new = repo::ActiveModel {
            provider: Set(provider.to_owned()),
            name: Set(name.to_owned()),
            settings: Set(settings),
            generation: Set(0),
            file_count: Set(0),
            total_size: Set(0),
            last_upload: Set(0),
            created_at: Set(now_millis()),
            ..Default::default()
        };
        match new.insert(&self.conn).await {
            Ok(r) => {
                self.repos_changed();
                tracing::info!(provider, repo = name, "Created repo.");
                Ok(r)
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => self
                .repo(provider, name)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(format!("{provider}/{name}"))),
            Err(e) => Err(e),
        }
    }

    /// The repos of one provider, by name.
    ///
    /// # Errors
    /// Database failures.
    pub async fn repos(&self, provider: &str) -> Result<Vec<repo::Model>, DbErr> {
        repo::Entity::find()
            .filter(repo::Column::Provider.eq(provider))
            .order_by_asc(repo::Column::Name)
            .all(&self.conn)
            .await
    }

    /// The number of distinct packages per repo id, of one repo or of all.
    ///
    /// # Errors
    /// Database failures.
    pub async fn package_counts(
        &self,
        repo_id: Option<i64>,
    ) -> Result<std::collections::HashMap<i64, i64>, DbErr> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        use sea_orm::{ColumnTrait as _, QueryFilter as _, QuerySelect as _};
        let mut q = entities::file::Entity::find()
            .select_only()
            .column(entities::file::Column::RepoId)
            .column_as(
                Expr::col(entities::file::Column::Pkey).count_distinct(),
                "packages",
            )
            .group_by(entities::file::Column::RepoId);
        if let Some(id) = repo_id {
            q = q.filter(entities::file::Column::RepoId.eq(id));
        }
        Ok(q.into_tuple::<(i64, i64)>()
            .all(&self.conn)
            .await?
            .into_iter()
            .collect())
    }

    /// Every repo, by provider and name.
    ///
    /// # Errors
    /// Database failures.
    pub async fn all_repos(&self) -> Result<Vec<repo::Model>, DbErr> {
        repo::Entity::find()
            .order_by_asc(repo::Column::Provider)
            .order_by_asc(repo::Column::Name)
            .all(&self.conn)
            .await
    }
}

/// The settings stored with a repo (defaults when the JSON is unreadable).
pub fn settings_of(r: &repo::Model) -> RepoSettings {
    serde_json::from_str(&r.settings).unwrap_or_default()
}

/// Whether a file record, a proxy's cache, a provider's hold or a staged upload refers to the content blob
/// `sha256` (before a delete removes it).
///
/// # Errors
/// Database failures.
pub async fn blob_in_use(conn: &DatabaseConnection, sha256: &str) -> Result<bool, DbErr> {
    use entities::{blob_hold, file, incoming_file, proxy_entry};
    use sea_orm::PaginatorTrait as _;
    Ok(file::Entity::find()
        .filter(file::Column::Sha256.eq(sha256))
        .count(conn)
        .await?
        > 0
        || proxy_entry::Entity::find()
            .filter(proxy_entry::Column::Sha256.eq(sha256))
            .count(conn)
            .await?
            > 0
        || blob_hold::Entity::find()
            .filter(blob_hold::Column::Sha256.eq(sha256))
            .count(conn)
            .await?
            > 0
        || incoming_file::Entity::find()
            .filter(incoming_file::Column::Sha256.eq(sha256))
            .count(conn)
            .await?
            > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes the repo's settings behind the cache's back, as another process would.
    async fn set_behind(db: &Db, id: i64, settings: &str) {
        repo::Entity::update_many()
            .col_expr(
                repo::Column::Settings,
                sea_orm::sea_query::Expr::value(settings),
            )
            .filter(repo::Column::Id.eq(id))
            .exec(db.conn())
            .await
            .expect("update");
    }

    /// SQLite's plan for `sql`, one detail line per step.
    async fn plan(db: &Db, sql: &str) -> Vec<String> {
        use sea_orm::{ConnectionTrait as _, Statement};
        db.conn()
            .query_all_raw(Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await
            .expect("plan")
            .iter()
            .filter_map(|r| r.try_get::<String>("", "detail").ok())
            .collect()
    }

    #[tokio::test]
    async fn catalog_lookups_use_their_indexes() {
        use sea_orm::ConnectionTrait as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("i.db").display());
        let db = Db::open(&url).await.expect("open");
        let r = db.repo_or_create("pypi", "r").await.expect("create");
        // Enough rows that a scan is not the cheapest plan for SQLite.
        db.conn()
            .execute_unprepared(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
                 INSERT INTO files (repo_id, scope, path, name, pkey, version, size, sha256, meta, uploaded_at, uploader, changed_gen) \
                 SELECT {}, '', 'files/p' || i || '.whl', 'p' || i, 'p' || (i / 5), '1.0', 1, 'x', '{{}}', 0, 'u', i FROM n",
                r.id
            ))
            .await
            .expect("rows");
        // The catalog's query for a path in any scope (`Catalog::get`); with `repo_id = 1`
        // SQLite chose the (repo, key) index and walked all of a repo's rows.
        let detail = plan(
            &db,
            "SELECT * FROM files WHERE path = 'files/p7.whl' AND +repo_id = 1",
        )
        .await;
        assert!(
            detail.iter().any(|d| d.contains("USING INDEX files_path")),
            "{detail:?}"
        );
        // What changed since a publish, in one scope (the APT provider's incremental publish)
        // and in any (the scopes an API call changed).
        for sql in [
            "SELECT * FROM files WHERE repo_id = 1 AND scope = '' AND changed_gen > 2990",
            "SELECT DISTINCT scope FROM files WHERE repo_id = 1 AND changed_gen > 2990",
        ] {
            let detail = plan(&db, sql).await;
            assert!(
                detail
                    .iter()
                    .any(|d| d.contains("USING") && d.contains("INDEX files_repo_changed")),
                "{sql}: {detail:?}"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_reads_keep_repo_rows_until_a_change_or_the_ttl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Db::open(&url).await.expect("open");
        assert!(db.repo_for_read("pypi", "r").await.expect("read").is_none());
        let r = db.repo_or_create("pypi", "r").await.expect("create");
        let first = db.repo_for_read("pypi", "r").await.expect("read");
        assert_eq!(first.as_ref().map(|r| r.id), Some(r.id));

        set_behind(&db, r.id, "{\"private\":true}").await;
        let cached = db.repo_for_read("pypi", "r").await.expect("read");
        assert_eq!(cached, first, "served from the cache");
        assert_ne!(db.repo("pypi", "r").await.expect("read"), first);

        db.repos_changed();
        let fresh = db.repo_for_read("pypi", "r").await.expect("read");
        assert_eq!(
            fresh.map(|r| r.settings).as_deref(),
            Some("{\"private\":true}")
        );

        set_behind(&db, r.id, "{}").await;
        tokio::time::sleep(ROW_TTL + Duration::from_millis(50)).await;
        let expired = db.repo_for_read("pypi", "r").await.expect("read");
        assert_eq!(expired.map(|r| r.settings).as_deref(), Some("{}"));
    }
}
