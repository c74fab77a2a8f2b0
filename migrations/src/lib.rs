//! Schema migrations, shared by the embedded SQLite database and PostgreSQL. Every table below
//! `organisations` is scoped to one organisation, directly or through its project: the schema
//! is multi-tenant from the first migration.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_accounts;
mod m0003_deployment;
mod m0004_hosted_projects;
mod m0005_project_owners;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_accounts::Migration),
            Box::new(m0003_deployment::Migration),
            Box::new(m0004_hosted_projects::Migration),
            Box::new(m0005_project_owners::Migration),
        ]
    }
}
