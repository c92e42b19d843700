//! Persistent state in one redb file: networks and containers as JSON values keyed by id.
//! Each API mutation writes all of its changes in one transaction. The store holds `-e`
//! values: its directory is 0700 and its file 0600 (`access.rs`), also when an older version
//! made them more open.
//!
//! Group commit: once the daemon calls [`Store::group_commits`], a transaction commits without
//! waiting for the disk (under the manager's lock), and a background flush makes everything
//! committed so far durable with one fsync; a command answers only after [`Store::durable`]
//! (`api.rs`). Clients that arrive together share a flush instead of each waiting for its own
//! under the lock. A crash before the flush loses only changes no client was told about: the
//! store is back at the last flush, and the restart's recovery handles the kernel side as for
//! any crash between a step and its commit (docs/architecture.md, "Crash safety").
use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::{watch, Notify};

use crate::{
    error::{Error, Result},
    model::{Container, DockerPool, Network},
};

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// Pools of netd's Docker IpamDriver by PoolID (`docker_plugin`).
const DOCKER_POOLS: TableDefinition<&str, &[u8]> = TableDefinition::new("docker_pools");
/// Facts about this store itself (`instance`: the id that tells this daemon's cgroups apart).
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

pub struct Store {
    db: Arc<Database>,
    /// Set by [`Store::group_commits`]; until then every commit waits for the disk itself.
    flusher: OnceLock<Arc<Flusher>>,
}

/// The background flush's bookkeeping.
struct Flusher {
    /// Commits made so far.
    made: AtomicU64,
    /// How many of them are durable, and the error of the last flush if it failed.
    durable: watch::Sender<(u64, Option<String>)>,
    wake: Notify,
}

/// A set of changes that is committed at once.
#[derive(Default)]
pub struct Changes {
    pub put_networks: Vec<Network>,
    pub del_networks: Vec<String>,
    pub put_containers: Vec<Container>,
    pub del_containers: Vec<String>,
    pub put_pools: Vec<DockerPool>,
    pub del_pools: Vec<String>,
}

/// What can fail in the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Redb(#[from] redb::Error),
    #[error("state store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("state store: cannot write to disk: {0}")]
    Flush(String),
}

fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::Store(StoreError::Redb(e.into()))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Store(StoreError::Json(e))
}

impl Drop for Store {
    fn drop(&mut self) {
        // Wakes the flush so that it can see the store gone and end (it holds no reference
        // that would keep the database open).
        if let Some(flusher) = self.flusher.get() {
            flusher.wake.notify_one();
        }
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        crate::access::private_dir(dir).map_err(|e| Error::os("create state dir", e))?;
        let file = crate::access::open_private_file(&dir.join("netd.redb"))
            .map_err(|e| Error::os("open the state store", e))?;
        let db = Database::builder().create_file(file).map_err(db_err)?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(NETWORKS).map_err(db_err)?;
        tx.open_table(CONTAINERS).map_err(db_err)?;
        tx.open_table(DOCKER_POOLS).map_err(db_err)?;
        tx.open_table(META).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Self { db: Arc::new(db), flusher: OnceLock::new() })
    }

    /// From now on, commits are made durable by a background flush (see the module's doc).
    /// Needs a tokio runtime.
    pub fn group_commits(&self) {
        let flusher =
            Arc::new(Flusher { made: AtomicU64::new(0), durable: watch::Sender::new((0, None)), wake: Notify::new() });
        if self.flusher.set(flusher.clone()).is_ok() {
            tokio::spawn(flush_loop(Arc::downgrade(&self.db), flusher));
        }
    }

    /// Waits until every commit made before this call is on disk.
    pub async fn durable(&self) -> Result<()> {
        let Some(flusher) = self.flusher.get() else { return Ok(()) };
        let target = flusher.made.load(Ordering::SeqCst);
        flusher.wake.notify_one();
        let mut durable = flusher.durable.subscribe();
        let state = durable
            .wait_for(|(done, failed)| *done >= target || failed.is_some())
            .await
            .map_err(|_| Error::Store(StoreError::Flush("the flush stopped".into())))?;
        match &*state {
            (done, _) if *done >= target => Ok(()),
            (_, failed) => Err(Error::Store(StoreError::Flush(failed.clone().unwrap_or_default()))),
        }
    }

    /// A random id made once per store: the name of this daemon's container cgroups, stable
    /// across restarts and distinct between daemons.
    pub fn instance_id(&self) -> Result<String> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let id = {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let existing = meta.get("instance").map_err(db_err)?.map(|v| v.value().to_string());
            match existing {
                Some(id) => id,
                None => {
                    let id = crate::model::new_id()[..16].to_string();
                    meta.insert("instance", id.as_str()).map_err(db_err)?;
                    id
                }
            }
        };
        tx.commit().map_err(db_err)?;
        Ok(id)
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        self.load_all(NETWORKS)
    }

    pub fn containers(&self) -> Result<Vec<Container>> {
        self.load_all(CONTAINERS)
    }

    pub fn docker_pools(&self) -> Result<Vec<DockerPool>> {
        self.load_all(DOCKER_POOLS)
    }

    fn load_all<T: DeserializeOwned>(&self, table: TableDefinition<&str, &[u8]>) -> Result<Vec<T>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(table).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (_, value) = entry.map_err(db_err)?;
            out.push(serde_json::from_slice(value.value()).map_err(json_err)?);
        }
        Ok(out)
    }

    pub fn commit(&self, changes: Changes) -> Result<()> {
        write(&self.db, self.flusher.get().map(Arc::as_ref), changes)
    }

    /// [`Self::commit`] on tokio's blocking pool. A commit waits for redb's write lock, which
    /// the background flush holds through its fsync: a `run` commits this way before it takes
    /// the manager's lock again, so that neither that lock nor a runtime worker waits for the
    /// disk while other runs could go on.
    pub async fn commit_off_runtime(&self, changes: Changes) -> Result<()> {
        let (db, flusher) = (self.db.clone(), self.flusher.get().cloned());
        tokio::task::spawn_blocking(move || write(&db, flusher.as_deref(), changes))
            .await
            .map_err(|e| Error::Store(StoreError::Flush(format!("the commit ended abnormally: {e}"))))?
    }
}

/// One transaction with all of `changes`: durable at once without group commit, else made
/// durable by the flush (`flusher`).
fn write(db: &Database, flusher: Option<&Flusher>, changes: Changes) -> Result<()> {
    let mut tx = db.begin_write().map_err(db_err)?;
    if flusher.is_some() {
        tx.set_durability(Durability::None).map_err(db_err)?;
    }
    {
        let mut networks = tx.open_table(NETWORKS).map_err(db_err)?;
        for n in &changes.put_networks {
            networks.insert(n.id.as_str(), to_json(n)?.as_slice()).map_err(db_err)?;
        }
        for id in &changes.del_networks {
            networks.remove(id.as_str()).map_err(db_err)?;
        }
        let mut containers = tx.open_table(CONTAINERS).map_err(db_err)?;
        for c in &changes.put_containers {
            containers.insert(c.id.as_str(), to_json(c)?.as_slice()).map_err(db_err)?;
        }
        for id in &changes.del_containers {
            containers.remove(id.as_str()).map_err(db_err)?;
        }
        let mut pools = tx.open_table(DOCKER_POOLS).map_err(db_err)?;
        for p in &changes.put_pools {
            pools.insert(p.id.as_str(), to_json(p)?.as_slice()).map_err(db_err)?;
        }
        for id in &changes.del_pools {
            pools.remove(id.as_str()).map_err(db_err)?;
        }
    }
    tx.commit().map_err(db_err)?;
    if let Some(flusher) = flusher {
        flusher.made.fetch_add(1, Ordering::SeqCst);
        flusher.wake.notify_one();
    }
    Ok(())
}

/// Makes the commits durable: one empty durable transaction (redb writes everything committed
/// before it) whenever there are commits it has not covered.
/// Ends when the store is dropped.
async fn flush_loop(db: std::sync::Weak<Database>, flusher: Arc<Flusher>) {
    loop {
        if db.strong_count() == 0 {
            return;
        }
        let target = flusher.made.load(Ordering::SeqCst);
        if target <= flusher.durable.borrow().0 {
            flusher.wake.notified().await;
            continue;
        }
        let Some(db) = db.upgrade() else { return };
        let flushed = tokio::task::spawn_blocking(move || -> std::result::Result<(), redb::Error> {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::Immediate)?;
            Ok(tx.commit()?)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|flushed| flushed.map_err(|e| e.to_string()));
        match flushed {
            Ok(()) => flusher.durable.send_modify(|state| *state = (target, None)),
            Err(e) => {
                tracing::error!(error = %e, "state store: flush failed");
                flusher.durable.send_modify(|state| state.1 = Some(e));
                // Tried again at the next commit or wait, not in a tight loop.
                flusher.wake.notified().await;
            }
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(json_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a directory of its own, removed at the end.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn put(store: &Store, id: &str) {
        let changes = Changes { put_containers: vec![Container::fixture(id, id)], ..Changes::default() };
        store.commit(changes).unwrap();
    }

    impl Dir {
        fn new() -> Self {
            Dir(std::env::temp_dir().join(format!("netd-store-{}-{}", std::process::id(), crate::model::new_id())))
        }
    }

    #[tokio::test]
    async fn grouped_commits_are_all_there_after_a_reopen() {
        let dir = Dir::new();
        let store = Store::open(&dir.0).unwrap();
        store.group_commits();
        put(&store, "a");
        put(&store, "b");
        store.durable().await.unwrap();
        // Nothing to flush: returns at once.
        store.durable().await.unwrap();
        put(&store, "c");
        store.durable().await.unwrap();
        drop(store);
        let reopened = Store::open(&dir.0).unwrap();
        let mut ids: Vec<String> = reopened.containers().unwrap().into_iter().map(|c| c.id).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    /// A commit on the blocking pool, made while the flush holds redb's write lock (as during
    /// its fsync), waits for it and is durable with the next flush.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_off_the_runtime_waits_for_the_flush_and_is_kept() {
        let dir = Dir::new();
        let store = Store::open(&dir.0).unwrap();
        store.group_commits();
        let flushing = store.db.begin_write().unwrap();
        let changes = Changes { put_containers: vec![Container::fixture("a", "a")], ..Changes::default() };
        {
            let commit = store.commit_off_runtime(changes);
            tokio::pin!(commit);
            // Not done while the write lock is taken; the runtime goes on meanwhile.
            assert!(tokio::time::timeout(std::time::Duration::from_millis(200), &mut commit).await.is_err());
            flushing.abort().unwrap();
            commit.await.unwrap();
        }
        store.durable().await.unwrap();
        drop(store);
        let ids: Vec<String> = Store::open(&dir.0).unwrap().containers().unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["a"]);
    }

    #[tokio::test]
    async fn without_group_commit_durable_has_nothing_to_wait_for() {
        let dir = Dir::new();
        let store = Store::open(&dir.0).unwrap();
        put(&store, "a");
        store.durable().await.unwrap();
        drop(store);
        assert_eq!(Store::open(&dir.0).unwrap().containers().unwrap().len(), 1);
    }
}
