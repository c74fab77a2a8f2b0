//! Project ownership: one server process runs a project's actor (leases, queue, trainer);
//! it holds a lease row per project and renews it; when the lease lapses (the process died or
//! lost the database) another process claims the project and rebuilds the actor from the
//! database, exactly as a restart does. Not scoped: the server, not a caller, asks.

use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::entities::project_owner;
use super::{now_ms, Store, StoreResult};

impl Store {
    /// Claims project `project_id` for `me` when it has no live owner (or already is `me`'s),
    /// for `ttl_ms`. Returns the owner after the attempt: `me` when the claim held.
    pub async fn claim_project(&self, project_id: i64, me: &str, ttl_ms: i64) -> StoreResult<String> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let now = now_ms();
        let current = project_owner::Entity::find_by_id(project_id).one(&txn).await?;
        match current {
            None => {
                project_owner::ActiveModel {
                    project_id: Set(project_id),
                    owner: Set(me.to_string()),
                    expires_at: Set(now + ttl_ms),
                }
                .insert(&txn)
                .await?;
            }
            Some(row) if row.owner == me || row.expires_at < now => {
                // Conditional, so that of two processes taking over at once one wins.
                project_owner::Entity::update_many()
                    .col_expr(project_owner::Column::Owner, me.into())
                    .col_expr(project_owner::Column::ExpiresAt, (now + ttl_ms).into())
                    .filter(project_owner::Column::ProjectId.eq(project_id))
                    .filter(
                        Condition::any()
                            .add(project_owner::Column::Owner.eq(me))
                            .add(project_owner::Column::ExpiresAt.lt(now)),
                    )
                    .exec(&txn)
                    .await?;
            }
            Some(_) => {}
        }
        let owner = project_owner::Entity::find_by_id(project_id).one(&txn).await?.map(|r| r.owner);
        match txn.commit().await {
            Ok(()) => Ok(owner.unwrap_or_default()),
            // A concurrent first claim inserted the row: whoever it was owns the project.
            Err(_) => Ok(self.project_owner(project_id).await?.map(|(o, _)| o).unwrap_or_default()),
        }
    }

    /// Extends every lease `me` holds; returns the projects still `me`'s.
    pub async fn renew_projects(&self, me: &str, ttl_ms: i64) -> StoreResult<Vec<i64>> {
        let _gate = self.write_gate.lock().await;
        project_owner::Entity::update_many()
            .col_expr(project_owner::Column::ExpiresAt, (now_ms() + ttl_ms).into())
            .filter(project_owner::Column::Owner.eq(me))
            .exec(&self.db)
            .await?;
        Ok(project_owner::Entity::find()
            .filter(project_owner::Column::Owner.eq(me))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.project_id)
            .collect())
    }

    /// The owner of a project and when its lease ends.
    pub async fn project_owner(&self, project_id: i64) -> StoreResult<Option<(String, i64)>> {
        Ok(project_owner::Entity::find_by_id(project_id).one(&self.db).await?.map(|r| (r.owner, r.expires_at)))
    }

    /// Lets go of every project of `me` at once (a clean shutdown), so others need not wait.
    pub async fn release_projects(&self, me: &str) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        project_owner::Entity::update_many()
            .col_expr(project_owner::Column::ExpiresAt, 0i64.into())
            .filter(project_owner::Column::Owner.eq(me))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
