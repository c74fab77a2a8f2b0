//! Which server process runs each project's actor: a lease per project, renewed by its owner
//! every few seconds; another process takes over when it lapses.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProjectOwners {
    Table,
    ProjectId,
    /// The owner's identity: the URL other processes forward the project's requests to.
    Owner,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProjectOwners::Table)
                    .col(ColumnDef::new(ProjectOwners::ProjectId).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(ProjectOwners::Owner).string().not_null())
                    .col(ColumnDef::new(ProjectOwners::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ProjectOwners::Table).to_owned()).await
    }
}
