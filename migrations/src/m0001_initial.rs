//! Organisations, users, memberships, projects, items, labels and trained models.
//! Times are Unix milliseconds (BIGINT): identical on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrgId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrgId,
    Slug,
    Title,
    ConfigYaml,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Items {
    Table,
    Id,
    ProjectId,
    Key,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Labels {
    Table,
    Id,
    ProjectId,
    ItemId,
    UserId,
    Label,
    Stage,
    Source,
    TimeTakenMs,
    CreatedAt,
    UndoneAt,
}

#[derive(DeriveIden)]
enum Models {
    Table,
    Id,
    ProjectId,
    Version,
    BlobKey,
    Metrics,
    TrainLabels,
    CreatedAt,
}

fn fk(from: (impl IntoIden, impl IntoIden), to: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organisations::Table)
                    .col(ColumnDef::new(Organisations::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Organisations::Slug).string().not_null().unique_key())
                    .col(ColumnDef::new(Organisations::Name).string().not_null())
                    .col(ColumnDef::new(Organisations::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Users::Name).string().not_null().unique_key())
                    .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(ColumnDef::new(Memberships::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(Memberships::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Memberships::Role).string().not_null())
                    .col(ColumnDef::new(Memberships::CreatedAt).big_integer().not_null())
                    .primary_key(Index::create().col(Memberships::OrgId).col(Memberships::UserId))
                    .foreign_key(&mut fk(
                        (Memberships::Table, Memberships::OrgId),
                        (Organisations::Table, Organisations::Id),
                    ))
                    .foreign_key(&mut fk((Memberships::Table, Memberships::UserId), (Users::Table, Users::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .col(ColumnDef::new(Projects::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Projects::OrgId).big_integer().not_null())
                    .col(ColumnDef::new(Projects::Slug).string().not_null())
                    .col(ColumnDef::new(Projects::Title).string().not_null())
                    .col(ColumnDef::new(Projects::ConfigYaml).text().not_null())
                    .col(ColumnDef::new(Projects::CreatedAt).big_integer().not_null())
                    .foreign_key(&mut fk((Projects::Table, Projects::OrgId), (Organisations::Table, Organisations::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("projects_org_slug")
                    .table(Projects::Table)
                    .col(Projects::OrgId)
                    .col(Projects::Slug)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Items::Table)
                    .col(ColumnDef::new(Items::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Items::ProjectId).big_integer().not_null())
                    .col(ColumnDef::new(Items::Key).text().not_null())
                    .col(ColumnDef::new(Items::CreatedAt).big_integer().not_null())
                    .foreign_key(&mut fk((Items::Table, Items::ProjectId), (Projects::Table, Projects::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("items_project_key")
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Labels::Table)
                    .col(ColumnDef::new(Labels::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Labels::ProjectId).big_integer().not_null())
                    .col(ColumnDef::new(Labels::ItemId).big_integer().not_null())
                    .col(ColumnDef::new(Labels::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Labels::Label).string().not_null())
                    .col(ColumnDef::new(Labels::Stage).string().not_null())
                    .col(ColumnDef::new(Labels::Source).string().not_null())
                    .col(ColumnDef::new(Labels::TimeTakenMs).big_integer())
                    .col(ColumnDef::new(Labels::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Labels::UndoneAt).big_integer())
                    .foreign_key(&mut fk((Labels::Table, Labels::ProjectId), (Projects::Table, Projects::Id)))
                    .foreign_key(&mut fk((Labels::Table, Labels::ItemId), (Items::Table, Items::Id)))
                    .foreign_key(&mut fk((Labels::Table, Labels::UserId), (Users::Table, Users::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("labels_project_item")
                    .table(Labels::Table)
                    .col(Labels::ProjectId)
                    .col(Labels::ItemId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Models::Table)
                    .col(ColumnDef::new(Models::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Models::ProjectId).big_integer().not_null())
                    .col(ColumnDef::new(Models::Version).big_integer().not_null())
                    .col(ColumnDef::new(Models::BlobKey).text().not_null())
                    .col(ColumnDef::new(Models::Metrics).text().not_null())
                    .col(ColumnDef::new(Models::TrainLabels).big_integer().not_null())
                    .col(ColumnDef::new(Models::CreatedAt).big_integer().not_null())
                    .foreign_key(&mut fk((Models::Table, Models::ProjectId), (Projects::Table, Projects::Id)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("models_project_version")
                    .table(Models::Table)
                    .col(Models::ProjectId)
                    .col(Models::Version)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Models::Table.into_iden(),
            Labels::Table.into_iden(),
            Items::Table.into_iden(),
            Projects::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Organisations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
