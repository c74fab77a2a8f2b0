//! The deployment's identity: one random id per database, read by every server process that
//! shares it, so that processes of one deployment find each other in a shared Redis (channel
//! names) without colliding with another deployment using the same Redis.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deployment {
    Table,
    /// Always `this`: one row, so concurrent first starts agree (insert-or-ignore, then read).
    Key,
    Id,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deployment::Table)
                    .col(ColumnDef::new(Deployment::Key).string().not_null().primary_key())
                    .col(ColumnDef::new(Deployment::Id).string().not_null())
                    .col(ColumnDef::new(Deployment::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Deployment::Table).to_owned()).await
    }
}
