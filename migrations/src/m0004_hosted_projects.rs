//! Projects created through the API (their dataset uploaded or imported from S3, their ingest
//! status), per-project settings changed at run time, and invitations by link.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    /// JSON: `{"kind": "config"}`, `{"kind": "upload"}` or `{"kind": "s3", "bucket", "prefix"}`.
    Source,
    /// `ready` for config projects; `awaiting_upload`, `importing`, `indexing`, `ready`, `failed`.
    Status,
    StatusError,
    /// JSON of the settings changed through the API (over the config's values).
    SettingsJson,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    OrgId,
    Email,
    Role,
    TokenHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite cannot add two at once.
        let columns = [
            ColumnDef::new(Projects::Source).text().not_null().default("{\"kind\":\"config\"}").to_owned(),
            ColumnDef::new(Projects::Status).string().not_null().default("ready").to_owned(),
            ColumnDef::new(Projects::StatusError).text().to_owned(),
            ColumnDef::new(Projects::SettingsJson).text().to_owned(),
        ];
        for column in columns {
            manager.alter_table(Table::alter().table(Projects::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(ColumnDef::new(Invitations::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Invitations::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(Invitations::Email).string().not_null())
                    .col(ColumnDef::new(Invitations::Role).string().not_null())
                    .col(ColumnDef::new(Invitations::TokenHash).string().not_null().unique_key())
                    .col(ColumnDef::new(Invitations::CreatedBy).big_integer().not_null())
                    .col(ColumnDef::new(Invitations::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Invitations::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(Invitations::UsedAt).big_integer())
                    .col(ColumnDef::new(Invitations::RevokedAt).big_integer())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::OrgId)
                            .to(Organisations::Table, Organisations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Invitations::Table).to_owned()).await?;
        for column in [Projects::SettingsJson, Projects::StatusError, Projects::Status, Projects::Source] {
            manager.alter_table(Table::alter().table(Projects::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
