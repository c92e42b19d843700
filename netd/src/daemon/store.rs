//! Persistent state in one redb file: networks and containers as JSON values keyed by id.
//! Each API mutation writes all of its changes in one transaction. The store holds `-e`
//! values: its directory is 0700 and its file 0600 (`access.rs`), also when an older version
//! made them more open.
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

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
    db: Database,
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
}

fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::Store(StoreError::Redb(e.into()))
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Store(StoreError::Json(e))
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
        Ok(Self { db })
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
        let tx = self.db.begin_write().map_err(db_err)?;
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
        tx.commit().map_err(db_err)
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(json_err)
}
