//! The catalog database: connection, migrations, and the repo table's operations.

pub mod entities;
mod migration;

use std::time::Duration;

use artifactd_plugin_api::RepoSettings;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr,
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
}

impl Db {
    /// Connects and runs the migrations.
    ///
    /// # Errors
    /// [`DbStartError`] when the database is unreachable or cannot be migrated.
    pub async fn open(url: &str) -> Result<Self, DbStartError> {
        probe(url).await?;
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(16)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            // A database restart shorter than this is ridden out by waiting requests; longer
            // outages answer 503 (see `http::error`).
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            // A network database may have dropped a pooled connection (restart, failover);
            // SQLite is a local file, where the check would only add a round trip per query.
            .test_before_acquire(!url.starts_with("sqlite:"))
            .sqlx_logging(false);
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
        Ok(Self { conn })
    }

    /// The connection (a pool).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The repo `provider/name`, if it exists.
    ///
    /// # Errors
    /// Database failures.
    pub async fn repo(&self, provider: &str, name: &str) -> Result<Option<repo::Model>, DbErr> {
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
