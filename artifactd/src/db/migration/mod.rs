//! Schema migrations, run at start-up on SQLite, MySQL/MariaDB and PostgreSQL alike.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, string_len, text, text_null,
};

mod indexes;
mod removals;

use indexes::{ChangeStamps, FilesByChange, FilesByPath, FilesByScopeKey};
use removals::RemovalStamps;

/// All migrations, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(Auth),
            Box::new(KeyRotation),
            Box::new(PublishLocks),
            Box::new(FilesByPath),
            Box::new(ChangeStamps),
            Box::new(RepoKinds),
            Box::new(BlobHolds),
            Box::new(IncomingFiles),
            Box::new(FilesByScopeKey),
            Box::new(FilesByChange),
            Box::new(RemovalStamps),
        ]
    }
}

/// Names are explicit: the derive would name every migration of this file after the module.
#[derive(Debug)]
struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261202_000001_initial"
    }
}

/// MySQL compares strings case-insensitively by default; names and paths are case-sensitive.
fn table(manager: &SchemaManager, name: &'static str) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(name).if_not_exists();
    if manager.get_database_backend() == DbBackend::MySql {
        t.character_set("utf8mb4").collate("utf8mb4_bin");
    }
    t
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(manager, "repos")
                    .col(big_pk_auto("id"))
                    .col(string_len("provider", 32))
                    .col(string_len("name", 64))
                    .col(text("settings"))
                    .col(big_integer("generation").default(0))
                    .col(big_integer("file_count").default(0))
                    .col(big_integer("total_size").default(0))
                    .col(big_integer("last_upload").default(0))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("repos_provider_name")
                    .table("repos")
                    .col("provider")
                    .col("name")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table(manager, "files")
                    .col(big_pk_auto("id"))
                    .col(big_integer("repo_id"))
                    .col(string_len("scope", 128))
                    .col(string_len("path", 512))
                    .col(string_len("name", 255))
                    .col(string_len("pkey", 255))
                    .col(string_len("version", 255))
                    .col(big_integer("size"))
                    .col(string_len("sha256", 64))
                    .col(text("meta"))
                    .col(big_integer("uploaded_at"))
                    .col(string_len("uploader", 255))
                    .col(text_null("yanked"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("files_repo")
                            .from("files", "repo_id")
                            .to("repos", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("files_repo_scope_path")
                    .table("files")
                    .col("repo_id")
                    .col("scope")
                    .col("path")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("files_repo_pkey")
                    .table("files")
                    .col("repo_id")
                    .col("pkey")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("files_sha256")
                    .table("files")
                    .col("sha256")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table(manager, "signing_keys")
                    .col(big_integer("repo_id").primary_key())
                    .col(text("secret_armored"))
                    .col(string_len("fingerprint", 128))
                    .col(big_integer("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("signing_keys_repo")
                            .from("signing_keys", "repo_id")
                            .to("repos", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["signing_keys", "files", "repos"] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Auth;

impl MigrationName for Auth {
    fn name(&self) -> &str {
        "m20261202_000002_auth"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Auth {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(manager, "tokens")
                    .col(big_pk_auto("id"))
                    .col(string_len("name", 128))
                    .col(string_len("token_hash", 64))
                    .col(string_len("scope", 16))
                    .col(text("repos"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("expires_at"))
                    .col(big_integer_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_hash")
                    .table("tokens")
                    .col("token_hash")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table(manager, "audit")
                    .col(big_pk_auto("id"))
                    .col(big_integer("at"))
                    .col(string_len("principal", 255))
                    .col(string_len("action", 64))
                    .col(string_len("provider", 32))
                    .col(string_len("repo", 64))
                    .col(text("detail"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["audit", "tokens"] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct KeyRotation;

impl MigrationName for KeyRotation {
    fn name(&self) -> &str {
        "m20261202_000003_key_rotation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KeyRotation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(text_null("previous_armored"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(big_integer_null("previous_until"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .drop_column("previous_until")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .drop_column("previous_armored")
                    .to_owned(),
            )
            .await
    }
}

#[derive(Debug)]
struct PublishLocks;

impl MigrationName for PublishLocks {
    fn name(&self) -> &str {
        "m20261202_000004_publish_locks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PublishLocks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per repo, locked while its indexes are published; deliberately without a
        // foreign key, so the lock never waits on writes to `repos`.
        manager
            .create_table(
                table(manager, "publish_locks")
                    .col(big_integer("repo_id").primary_key())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("publish_locks").to_owned())
            .await
    }
}

#[derive(Debug)]
struct RepoKinds;

impl MigrationName for RepoKinds {
    fn name(&self) -> &str {
        "m20261206_000007_repo_kinds"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RepoKinds {
    /// Repos get a kind (`hosted`, the existing ones; `proxy`; `virtual`) and its configuration
    /// (a proxy's upstream, a virtual's members), and proxies cache what they fetched: pages and
    /// files by key, their bytes in the blob store by hash, so every node shares the cache.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("repos")
                    .add_column(string_len("kind", 16).default("hosted"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("repos")
                    .add_column(text_null("config"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table(manager, "proxy_entries")
                    .col(big_pk_auto("id"))
                    .col(big_integer("repo_id"))
                    .col(string_len("key", 512))
                    .col(integer("status"))
                    .col(string_len("sha256", 64))
                    .col(big_integer("size"))
                    .col(string_len("content_type", 128))
                    .col(big_integer("fetched_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("proxy_entries_repo")
                            .from("proxy_entries", "repo_id")
                            .to("repos", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("proxy_entries_repo_key")
                    .table("proxy_entries")
                    .col("repo_id")
                    .col("key")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("proxy_entries").to_owned())
            .await?;
        for column in ["config", "kind"] {
            manager
                .alter_table(Table::alter().table("repos").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct BlobHolds;

impl MigrationName for BlobHolds {
    fn name(&self) -> &str {
        "m20261207_000008_blob_holds"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for BlobHolds {
    /// Blobs a provider keeps without a record (an APT snapshot's pool files), by tag: deletes
    /// and `gc` leave a held blob alone.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(manager, "blob_holds")
                    .col(big_pk_auto("id"))
                    .col(big_integer("repo_id"))
                    .col(string_len("tag", 255))
                    .col(string_len("sha256", 64))
                    .foreign_key(
                        ForeignKey::create()
                            .name("blob_holds_repo")
                            .from("blob_holds", "repo_id")
                            .to("repos", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("blob_holds_tag", &["repo_id", "tag"][..]),
            ("blob_holds_sha256", &["sha256"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("blob_holds").if_not_exists();
            for c in cols {
                index.col(*c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("blob_holds").to_owned())
            .await
    }
}

#[derive(Debug)]
struct IncomingFiles;

impl MigrationName for IncomingFiles {
    fn name(&self) -> &str {
        "m20261207_000009_incoming_files"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IncomingFiles {
    /// Files staged by an upload in several requests (dput: each file, then the `.changes`),
    /// per repo and uploader, until the request that completes it.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(manager, "incoming_files")
                    .col(big_pk_auto("id"))
                    .col(big_integer("repo_id"))
                    .col(string_len("uploader", 255))
                    .col(string_len("filename", 255))
                    .col(string_len("sha256", 64))
                    .col(big_integer("size"))
                    .col(big_integer("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("incoming_files_repo")
                            .from("incoming_files", "repo_id")
                            .to("repos", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("incoming_files_name")
                    .table("incoming_files")
                    .col("repo_id")
                    .col("uploader")
                    .col("filename")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("incoming_files_sha256")
                    .table("incoming_files")
                    .col("sha256")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("incoming_files").to_owned())
            .await
    }
}
