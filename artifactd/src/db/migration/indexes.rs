//! Migrations that add or change indexes of the `files` table, each for a query that
//! scanned rows without it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(Debug)]
pub(super) struct FilesByPath;

impl MigrationName for FilesByPath {
    fn name(&self) -> &str {
        "m20261203_000005_files_by_path"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FilesByPath {
    /// Downloads look a record up by path in any scope; the unique (repo, scope, path) index
    /// cannot serve that, and each download scanned the repo's rows.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("files_path")
                    .table("files")
                    .col("path")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("files_path").table("files").to_owned())
            .await
    }
}

#[derive(Debug)]
pub(super) struct ChangeStamps;

impl MigrationName for ChangeStamps {
    fn name(&self) -> &str {
        "m20261204_000006_change_stamps"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ChangeStamps {
    /// Each row carries the repo generation of its last insert, replace or yank, so a provider
    /// can list what changed since it last published (APT publishes one chunk, not the dist).
    /// Existing rows get 0: a provider whose state predates the column publishes in full.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("files")
                    .add_column(big_integer("changed_gen").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("files_changed")
                    .table("files")
                    .col("repo_id")
                    .col("scope")
                    .col("changed_gen")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("files_changed")
                    .table("files")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("files")
                    .drop_column("changed_gen")
                    .to_owned(),
            )
            .await
    }
}

#[derive(Debug)]
pub(super) struct FilesByScopeKey;

impl MigrationName for FilesByScopeKey {
    fn name(&self) -> &str {
        "m20261207_000010_files_by_scope_key"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FilesByScopeKey {
    /// The versions of one package in one scope (retention after each upload, an APT dist's
    /// versions of a package). Without it SQLite walks the whole scope by `files_changed`,
    /// which names as many columns of such a query as `files_repo_pkey` does.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("files_repo_scope_pkey")
                    .table("files")
                    .col("repo_id")
                    .col("scope")
                    .col("pkey")
                    .col("version")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("files_repo_scope_pkey")
                    .table("files")
                    .to_owned(),
            )
            .await
    }
}

#[derive(Debug)]
pub(super) struct FilesByChange;

impl MigrationName for FilesByChange {
    fn name(&self) -> &str {
        "m20261207_000011_files_by_change"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FilesByChange {
    /// What changed since a generation, in any scope (the dists an API call such as a
    /// promotion changed) or in one (an incremental publish): a range of `changed_gen` with the
    /// scope in the index. `files_changed` put the scope first, so a query across scopes
    /// walked every row of the repo; it is replaced, not added to, so an insert still
    /// updates as many indexes as before.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("files_repo_changed")
                    .table("files")
                    .col("repo_id")
                    .col("changed_gen")
                    .col("scope")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("files_changed")
                    .table("files")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("files_changed")
                    .table("files")
                    .col("repo_id")
                    .col("scope")
                    .col("changed_gen")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("files_repo_changed")
                    .table("files")
                    .to_owned(),
            )
            .await
    }
}
