//! The generation of each repo's latest record removal.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(Debug)]
pub(super) struct RemovalStamps;

impl MigrationName for RemovalStamps {
    fn name(&self) -> &str {
        "m20261208_000012_removal_stamps"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RemovalStamps {
    /// A removed record leaves no stamped row, so a provider that applies the changes since
    /// its last publish had to count a whole dist's rows to see one; the repo row now says when
    /// the latest removal was. Existing repos get their current generation: each provider
    /// checks once, as before.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("repos")
                    .add_column(big_integer("removed_gen").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE repos SET removed_gen = generation")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("repos")
                    .drop_column("removed_gen")
                    .to_owned(),
            )
            .await
    }
}
