//! Accounts: password logins, revocable sessions (refresh tokens), per-project API keys and
//! the audit log. Secrets are never stored: passwords as argon2id hashes, refresh tokens and
//! API keys as SHA-256 digests of random values (high entropy, so a fast hash suffices).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    OrgId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrgId,
    ProjectId,
    Name,
    Prefix,
    KeyHash,
    Scopes,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    OrgId,
    UserId,
    Action,
    Detail,
    CreatedAt,
}

fn fk(from: (impl IntoIden, impl IntoIden), to: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite cannot add two at once.
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(ColumnDef::new(Users::Email).string()).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(ColumnDef::new(Users::PasswordHash).string()).to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("users_email").table(Users::Table).col(Users::Email).unique().to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Sessions::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::TokenHash).string().not_null().unique_key())
                    .col(ColumnDef::new(Sessions::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::RevokedAt).big_integer())
                    .foreign_key(&mut fk((Sessions::Table, Sessions::UserId), (Users::Table, Users::Id)))
                    .foreign_key(&mut fk((Sessions::Table, Sessions::OrgId), (Organisations::Table, Organisations::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(ApiKeys::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::ProjectId).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::Name).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Prefix).string().not_null().unique_key())
                    .col(ColumnDef::new(ApiKeys::KeyHash).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Scopes).string().not_null())
                    .col(ColumnDef::new(ApiKeys::CreatedBy).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::LastUsedAt).big_integer())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer())
                    .foreign_key(&mut fk((ApiKeys::Table, ApiKeys::OrgId), (Organisations::Table, Organisations::Id)))
                    .foreign_key(&mut fk((ApiKeys::Table, ApiKeys::ProjectId), (Projects::Table, Projects::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(ColumnDef::new(AuditLog::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(AuditLog::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(AuditLog::UserId).big_integer())
                    .col(ColumnDef::new(AuditLog::Action).string().not_null())
                    .col(ColumnDef::new(AuditLog::Detail).text().not_null())
                    .col(ColumnDef::new(AuditLog::CreatedAt).big_integer().not_null())
                    .foreign_key(&mut fk((AuditLog::Table, AuditLog::OrgId), (Organisations::Table, Organisations::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_org_time")
                    .table(AuditLog::Table)
                    .col(AuditLog::OrgId)
                    .col(AuditLog::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [AuditLog::Table.into_iden(), ApiKeys::Table.into_iden(), Sessions::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager.drop_index(Index::drop().name("users_email").table(Users::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::PasswordHash).to_owned()).await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::Email).to_owned()).await?;
        Ok(())
    }
}
