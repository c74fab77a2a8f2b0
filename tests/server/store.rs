//! The store against both databases: the same migrations, the same behaviour, and tenant
//! scoping that makes another organisation's rows unreachable. PostgreSQL comes from
//! `TEST_POSTGRES_URL` (default: the local server `.ci/run` starts); each test run gets a fresh
//! database, dropped afterwards.

use lightbulb::store::{LabelSource, NewLabel, ProjectScope, Store, StoreError};
use sea_orm::{ConnectionTrait, Database};

async fn exercise(store: &Store) {
    let org_a = store.ensure_org("a", "A").await.unwrap();
    let org_b = store.ensure_org("b", "B").await.unwrap();
    assert_eq!(store.ensure_org("a", "A").await.unwrap(), org_a, "idempotent");
    let alice = store.ensure_member(org_a, "alice", "labeller").await.unwrap();
    let p = store.upsert_project(org_a, "digits", "Digits", "task: {}").await.unwrap();
    let keys: Vec<String> = (0..2500).map(|i| format!("img/{i:05}.png")).collect();
    let ids = store.sync_items(p, &keys).await.unwrap();
    assert_eq!(ids.len(), 2500);
    // Re-listing with one new item keeps every id.
    let mut more = keys.clone();
    more.push("img/new.png".into());
    let ids2 = store.sync_items(p, &more).await.unwrap();
    assert_eq!(ids2.len(), 2501);
    assert!(keys.iter().all(|k| ids[k] == ids2[k]));

    let label = |item: &str, class: &str| NewLabel {
        item_id: ids[item],
        user_id: alice,
        label: class.into(),
        stage: "train",
        source: LabelSource::Human,
        time_taken_ms: Some(1200),
    };
    store.put_labels(p, &[label("img/00001.png", "a"), label("img/00002.png", "b")]).await.unwrap();
    // Relabelling replaces the live label.
    let relabel = store.put_labels(p, &[label("img/00001.png", "b")]).await.unwrap();
    let live = store.live_labels(p).await.unwrap();
    assert_eq!(live.len(), 2);
    assert!(live.iter().any(|l| l.item_id == ids["img/00001.png"] && l.label == "b"));
    assert!(store.undo_label(p, relabel[0].id).await.unwrap());
    assert!(!store.undo_label(p, relabel[0].id).await.unwrap(), "undone twice");
    assert_eq!(store.live_labels(p).await.unwrap().len(), 1);

    store.add_model(p, 1, "models/v000001", "{}", 2).await.unwrap();
    assert_eq!(store.latest_model(p).await.unwrap().unwrap().version, 1);

    // Org B's scope cannot reach org A's project.
    let foreign = ProjectScope { org_id: org_b.org_id, project_id: p.project_id };
    assert!(matches!(store.live_labels(foreign).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.latest_model(foreign).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.put_labels(foreign, &[label("img/00003.png", "a")]).await, Err(StoreError::NotFound(_))));
    assert!(store.projects(org_b).await.unwrap().is_empty());
    assert_eq!(store.projects(org_a).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    exercise(&store).await;
}

#[tokio::test]
async fn postgres_store_behaves_the_same() {
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| panic!("PostgreSQL at {admin_url}: {e}"));
    let name = format!(
        "lightbulb_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    exercise(&store).await;
    drop(store);
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
}
