//! Journals, snapshots, value-entity state and CRDT state: in memory (the default, lost
//! at exit) or SQLite (one owner thread; the async side never blocks on it). Both keep
//! only the latest snapshot of an entity, the one recovery reads; the journal is kept whole
//! (event-log subscribers read it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cloudstate_sdk::payload::Any;
use rusqlite::OptionalExtension;
use tokio::sync::{oneshot, watch};

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// 1-based, contiguous per entity.
    pub sequence: i64,
    /// The event as the user function emitted it.
    pub payload: Any,
}

/// The latest snapshot of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    /// The sequence number of the last event it covers.
    pub sequence: i64,
    /// The snapshot as the user function sent it.
    pub payload: Any,
}

/// What recovery needs: the latest snapshot and the events after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// The latest snapshot, if any.
    pub snapshot: Option<StoredSnapshot>,
    /// Events after the snapshot, in order.
    pub events: Vec<StoredEvent>,
}

/// An event in the journal's global order, as an event-log consumer reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedEvent {
    /// Its place in the journal across all entities: 1-based, increasing
    /// (the CloudEvent `id` of event-log eventing).
    pub offset: i64,
    /// The emitting entity's id.
    pub entity_id: String,
    /// 1-based, contiguous per entity.
    pub sequence: i64,
    /// The event as the user function emitted it.
    pub payload: Any,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

/// Where journals, snapshots and value-entity state live.
#[derive(Debug, Clone)]
pub enum Store {
    /// In this process only.
    Memory(Arc<Mutex<MemoryStore>>),
    /// A SQLite file.
    Sqlite(SqliteStore),
}

impl Store {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// Opens (creating if needed) a SQLite store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or its tables created.
    pub fn sqlite(path: &Path) -> Result<Self, StoreError> {
        SqliteStore::open(path).map(Self::Sqlite)
    }

    /// Parses `memory` or `sqlite:PATH`.
    ///
    /// # Errors
    /// Anything else, or a SQLite file that cannot be opened.
    pub fn from_spec(spec: &str) -> Result<Self, StoreError> {
        match spec.split_once(':') {
            None if spec == "memory" => Ok(Self::memory()),
            Some(("sqlite", path)) if !path.is_empty() => Self::sqlite(Path::new(path)),
            _ => Err(StoreError(format!(
                "unknown store [{spec}]; use `memory` or `sqlite:PATH`"
            ))),
        }
    }

    /// The latest snapshot of `<persistence_id>|<entity_id>` and the events after it.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn recover(
        &self,
        persistence_id: &str,
        entity_id: &str,
    ) -> Result<Recovery, StoreError> {
        let key = journal_key(persistence_id, entity_id);
        match self {
            Self::Memory(m) => Ok(m.lock().map_err(poisoned)?.recover(&key)),
            Self::Sqlite(s) => s.call(move |db| db.recover(&key)).await,
        }
    }

    /// Appends `events` (numbered from `first_sequence`) and, if given, a
    /// snapshot at the last event's sequence number, atomically.
    ///
    /// # Errors
    /// A storage failure, or a sequence number already taken.
    pub async fn append(
        &self,
        persistence_id: &str,
        entity_id: &str,
        first_sequence: i64,
        events: Vec<Any>,
        snapshot: Option<Any>,
    ) -> Result<(), StoreError> {
        let key = journal_key(persistence_id, entity_id);
        match self {
            Self::Memory(m) => {
                let mut m = m.lock().map_err(poisoned)?;
                m.append(
                    &key,
                    persistence_id,
                    entity_id,
                    first_sequence,
                    events,
                    snapshot,
                )?;
                m.written.send_modify(|n| *n += 1);
                Ok(())
            }
            Self::Sqlite(s) => {
                let tag = persistence_id.to_owned();
                s.call(move |db| db.append(&key, &tag, first_sequence, events, snapshot))
                    .await?;
                s.written.send_modify(|n| *n += 1);
                Ok(())
            }
        }
    }

    /// Up to `limit` events tagged `tag` (the plain persistence id of the
    /// entities that emitted them) whose offset is above `after`, in journal order.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn events_by_tag(
        &self,
        tag: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<TaggedEvent>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.lock().map_err(poisoned)?.by_tag(tag, after, limit)),
            Self::Sqlite(s) => {
                let tag = tag.to_owned();
                s.call(move |db| db.by_tag(&tag, after, limit)).await
            }
        }
    }

    /// Changes whenever events are appended: a consumer that marks it seen
    /// before reading [`events_by_tag`](Self::events_by_tag) misses no write.
    ///
    /// # Errors
    /// A poisoned in-memory store.
    pub fn journal_written(&self) -> Result<watch::Receiver<u64>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.lock().map_err(poisoned)?.written.subscribe()),
            Self::Sqlite(s) => Ok(s.written.subscribe()),
        }
    }

    /// The last offset event-log consumer `projection` handled of `tag`.
    /// The in-memory store keeps none: its consumers start from the beginning
    /// of the journal whenever the dev proxy starts, as the official
    /// in-memory mode does.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn load_offset(
        &self,
        projection: &str,
        tag: &str,
    ) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Memory(_) => Ok(None),
            Self::Sqlite(s) => {
                let key = value_key(projection, tag);
                s.call(move |db| db.load_offset(&key)).await
            }
        }
    }

    /// Records that consumer `projection` handled `tag` up to `offset`
    /// (nothing with the in-memory store, see [`load_offset`](Self::load_offset)).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn save_offset(
        &self,
        projection: &str,
        tag: &str,
        offset: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Sqlite(s) => {
                let key = value_key(projection, tag);
                s.call(move |db| db.save_offset(&key, offset)).await
            }
        }
    }

    /// The state of value entity `entity_id` of `persistence_id`, if any.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn get_value(
        &self,
        persistence_id: &str,
        entity_id: &str,
    ) -> Result<Option<Any>, StoreError> {
        let key = value_key(persistence_id, entity_id);
        match self {
            Self::Memory(m) => Ok(m.lock().map_err(poisoned)?.values.get(&key).cloned()),
            Self::Sqlite(s) => s.call(move |db| db.get_value(&key)).await,
        }
    }

    /// Replaces (or creates) the state of a value entity.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn upsert_value(
        &self,
        persistence_id: &str,
        entity_id: &str,
        state: Any,
    ) -> Result<(), StoreError> {
        self.write_value(value_key(persistence_id, entity_id), Some(state))
            .await
    }

    /// Removes the state of a value entity (nothing stored is fine).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn delete_value(
        &self,
        persistence_id: &str,
        entity_id: &str,
    ) -> Result<(), StoreError> {
        self.write_value(value_key(persistence_id, entity_id), None)
            .await
    }

    /// The durable state of CRDT entity `entity_id` of `persistence_id`, if
    /// any: the bytes last given to [`put_crdt`](Self::put_crdt).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn get_crdt(
        &self,
        persistence_id: &str,
        entity_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = value_key(persistence_id, entity_id);
        match self {
            Self::Memory(m) => Ok(m.lock().map_err(poisoned)?.crdts.get(&key).cloned()),
            Self::Sqlite(s) => s.call(move |db| db.get_crdt(&key)).await,
        }
    }

    /// Replaces (or creates) the durable state of a CRDT entity.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn put_crdt(
        &self,
        persistence_id: &str,
        entity_id: &str,
        state: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write_crdt(value_key(persistence_id, entity_id), Some(state))
            .await
    }

    /// Removes the durable state of a CRDT entity (nothing stored is fine).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn delete_crdt(
        &self,
        persistence_id: &str,
        entity_id: &str,
    ) -> Result<(), StoreError> {
        self.write_crdt(value_key(persistence_id, entity_id), None)
            .await
    }

    /// Stores a CRDT's `state`, or removes the row when it is `None`.
    async fn write_crdt(&self, key: ValueKey, state: Option<Vec<u8>>) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                let crdts = &mut m.lock().map_err(poisoned)?.crdts;
                match state {
                    Some(state) => crdts.insert(key, state),
                    None => crdts.remove(&key),
                };
                Ok(())
            }
            Self::Sqlite(s) => s.call(move |db| db.write_crdt(&key, state)).await,
        }
    }

    /// Stores `state`, or removes the row when it is `None`.
    async fn write_value(&self, key: ValueKey, state: Option<Any>) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                let values = &mut m.lock().map_err(poisoned)?.values;
                match state {
                    Some(state) => values.insert(key, state),
                    None => values.remove(&key),
                };
                Ok(())
            }
            Self::Sqlite(s) => s.call(move |db| db.write_value(&key, state)).await,
        }
    }
}

/// A value or CRDT entity's key: the plain persistence id and the entity id
/// (the official proxy concatenates them into its first column).
type ValueKey = (String, String);

fn value_key(persistence_id: &str, entity_id: &str) -> ValueKey {
    (persistence_id.to_owned(), entity_id.to_owned())
}

fn journal_key(persistence_id: &str, entity_id: &str) -> String {
    format!("{persistence_id}|{entity_id}")
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("in-memory store lock poisoned".into())
}

/// The in-memory store: events per entity and in global order, the latest
/// snapshot, value-entity state, CRDT state.
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: HashMap<String, Vec<StoredEvent>>,
    /// Every event in journal order, with its tag; offset = index + 1.
    log: Vec<(String, TaggedEvent)>,
    written: watch::Sender<u64>,
    snapshots: HashMap<String, StoredSnapshot>,
    values: HashMap<ValueKey, Any>,
    crdts: HashMap<ValueKey, Vec<u8>>,
}

impl MemoryStore {
    fn recover(&self, key: &str) -> Recovery {
        let snapshot = self.snapshots.get(key).cloned();
        let after = snapshot.as_ref().map_or(0, |s| s.sequence);
        let events = self
            .events
            .get(key)
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e.sequence > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Recovery { snapshot, events }
    }

    fn by_tag(&self, tag: &str, after: i64, limit: usize) -> Vec<TaggedEvent> {
        let start = usize::try_from(after.max(0)).unwrap_or(usize::MAX);
        self.log
            .iter()
            .skip(start)
            .filter(|(t, _)| t == tag)
            .take(limit)
            .map(|(_, event)| event.clone())
            .collect()
    }

    fn append(
        &mut self,
        key: &str,
        tag: &str,
        entity_id: &str,
        first: i64,
        events: Vec<Any>,
        snapshot: Option<Any>,
    ) -> Result<(), StoreError> {
        // Looked up before inserting: the key is only copied for a new entity.
        if !self.events.contains_key(key) {
            self.events.insert(key.to_owned(), Vec::new());
        }
        let journal = self.events.get_mut(key).expect("inserted above");
        let next = journal.last().map_or(1, |e| e.sequence + 1);
        if first != next {
            return Err(StoreError(format!(
                "journal of [{key}] expects sequence {next}, got {first}"
            )));
        }
        let last = first + events.len() as i64 - 1;
        for (payload, sequence) in events.into_iter().zip(first..) {
            let offset = self.log.len() as i64 + 1;
            self.log.push((
                tag.to_owned(),
                TaggedEvent {
                    offset,
                    entity_id: entity_id.to_owned(),
                    sequence,
                    payload: payload.clone(),
                },
            ));
            journal.push(StoredEvent { sequence, payload });
        }
        if let Some(payload) = snapshot {
            let snapshot = StoredSnapshot {
                sequence: last,
                payload,
            };
            match self.snapshots.get_mut(key) {
                Some(kept) => *kept = snapshot,
                None => {
                    self.snapshots.insert(key.to_owned(), snapshot);
                }
            }
        }
        Ok(())
    }
}

type Job = Box<dyn FnOnce(&mut SqliteDb) + Send>;

/// A SQLite store: one thread owns the connection; requests arrive on a channel.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    jobs: std::sync::mpsc::Sender<Job>,
    path: PathBuf,
    written: Arc<watch::Sender<u64>>,
}

impl SqliteStore {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let db = SqliteDb::open(path)?;
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("devproxy-sqlite".into())
            .spawn(move || {
                let mut db = db;
                while let Ok(job) = rx.recv() {
                    job(&mut db);
                }
            })
            .map_err(|e| StoreError(format!("starting the SQLite thread: {e}")))?;
        Ok(Self {
            jobs,
            path: path.to_owned(),
            written: Arc::new(watch::Sender::new(0)),
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteDb) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |db| {
                let _ = tx.send(f(db));
            }))
            .map_err(|_| {
                StoreError(format!("SQLite thread for {} stopped", self.path.display()))
            })?;
        rx.await
            .map_err(|_| StoreError(format!("SQLite thread for {} stopped", self.path.display())))?
    }
}

/// The connection and its statements.
pub struct SqliteDb {
    conn: rusqlite::Connection,
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError(format!("SQLite: {e}"))
}

impl SqliteDb {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS journal (
                 ordering INTEGER PRIMARY KEY AUTOINCREMENT,
                 persistence_id TEXT NOT NULL,
                 sequence_number INTEGER NOT NULL,
                 tag TEXT NOT NULL,
                 type_url TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 written_at INTEGER NOT NULL,
                 UNIQUE (persistence_id, sequence_number)
             );
             CREATE INDEX IF NOT EXISTS journal_tag ON journal (tag, ordering);
             CREATE TABLE IF NOT EXISTS snapshot (
                 persistence_id TEXT NOT NULL,
                 sequence_number INTEGER NOT NULL,
                 type_url TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 created INTEGER NOT NULL,
                 PRIMARY KEY (persistence_id, sequence_number)
             );
             CREATE TABLE IF NOT EXISTS value_entity_state (
                 persistence_id TEXT NOT NULL,
                 entity_id TEXT NOT NULL,
                 type_url TEXT NOT NULL,
                 state BLOB NOT NULL,
                 PRIMARY KEY (persistence_id, entity_id)
             );
             CREATE TABLE IF NOT EXISTS crdt_state (
                 persistence_id TEXT NOT NULL,
                 entity_id TEXT NOT NULL,
                 state BLOB NOT NULL,
                 PRIMARY KEY (persistence_id, entity_id)
             );
             CREATE TABLE IF NOT EXISTS projection_offset (
                 projection_id TEXT NOT NULL,
                 tag TEXT NOT NULL,
                 last_offset INTEGER NOT NULL,
                 PRIMARY KEY (projection_id, tag)
             );",
        )
        .map_err(sql)?;
        Ok(Self { conn })
    }

    fn recover(&mut self, key: &str) -> Result<Recovery, StoreError> {
        let snapshot = self
            .conn
            .query_row(
                "SELECT sequence_number, type_url, payload FROM snapshot
                 WHERE persistence_id = ?1 ORDER BY sequence_number DESC LIMIT 1",
                [key],
                |row| {
                    Ok(StoredSnapshot {
                        sequence: row.get(0)?,
                        payload: Any {
                            type_url: row.get(1)?,
                            value: row.get(2)?,
                        },
                    })
                },
            )
            .optional()
            .map_err(sql)?;
        let after = snapshot.as_ref().map_or(0, |s| s.sequence);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT sequence_number, type_url, payload FROM journal
                 WHERE persistence_id = ?1 AND sequence_number > ?2 ORDER BY sequence_number",
            )
            .map_err(sql)?;
        let events = statement
            .query_map(rusqlite::params![key, after], |row| {
                Ok(StoredEvent {
                    sequence: row.get(0)?,
                    payload: Any {
                        type_url: row.get(1)?,
                        value: row.get(2)?,
                    },
                })
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        Ok(Recovery { snapshot, events })
    }

    fn append(
        &mut self,
        key: &str,
        tag: &str,
        first: i64,
        events: Vec<Any>,
        snapshot: Option<Any>,
    ) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let tx = self.conn.transaction().map_err(sql)?;
        let last = first + events.len() as i64 - 1;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO journal (persistence_id, sequence_number, tag, type_url, payload, written_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for (event, sequence) in events.iter().zip(first..) {
                insert
                    .execute(rusqlite::params![
                        key,
                        sequence,
                        tag,
                        event.type_url,
                        event.value,
                        now
                    ])
                    .map_err(sql)?;
            }
            if let Some(snapshot) = &snapshot {
                tx.execute(
                    "INSERT OR REPLACE INTO snapshot (persistence_id, sequence_number, type_url, payload, created)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![key, last, snapshot.type_url, snapshot.value, now],
                )
                .map_err(sql)?;
                // Recovery reads only the latest: storage grows with the
                // state, not with every snapshot ever taken.
                tx.execute(
                    "DELETE FROM snapshot WHERE persistence_id = ?1 AND sequence_number < ?2",
                    rusqlite::params![key, last],
                )
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn by_tag(
        &mut self,
        tag: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<TaggedEvent>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT ordering, persistence_id, sequence_number, type_url, payload FROM journal
                 WHERE tag = ?1 AND ordering > ?2 ORDER BY ordering LIMIT ?3",
            )
            .map_err(sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        statement
            .query_map(rusqlite::params![tag, after, limit], |row| {
                let key: String = row.get(1)?;
                Ok(TaggedEvent {
                    offset: row.get(0)?,
                    // The journal key is `<persistence id>|<entity id>`.
                    entity_id: key
                        .split_once('|')
                        .map_or(key.as_str(), |(_, id)| id)
                        .to_owned(),
                    sequence: row.get(2)?,
                    payload: Any {
                        type_url: row.get(3)?,
                        value: row.get(4)?,
                    },
                })
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)
    }

    fn load_offset(&mut self, (projection, tag): &ValueKey) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT last_offset FROM projection_offset WHERE projection_id = ?1 AND tag = ?2",
            )
            .and_then(|mut statement| {
                statement
                    .query_row([projection, tag], |row| row.get(0))
                    .optional()
            })
            .map_err(sql)
    }

    fn save_offset(&mut self, (projection, tag): &ValueKey, offset: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO projection_offset (projection_id, tag, last_offset) VALUES (?1, ?2, ?3)
                 ON CONFLICT (projection_id, tag) DO UPDATE SET last_offset = excluded.last_offset",
            )
            .and_then(|mut statement| statement.execute(rusqlite::params![projection, tag, offset]))
            .map(drop)
            .map_err(sql)
    }

    fn get_value(
        &mut self,
        (persistence_id, entity_id): &ValueKey,
    ) -> Result<Option<Any>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT type_url, state FROM value_entity_state
                 WHERE persistence_id = ?1 AND entity_id = ?2",
            )
            .and_then(|mut statement| {
                statement
                    .query_row([persistence_id, entity_id], |row| {
                        Ok(Any {
                            type_url: row.get(0)?,
                            value: row.get(1)?,
                        })
                    })
                    .optional()
            })
            .map_err(sql)
    }

    fn write_value(&mut self, key: &ValueKey, state: Option<Any>) -> Result<(), StoreError> {
        let (persistence_id, entity_id) = key;
        match state {
            Some(state) => self
                .conn
                .prepare_cached(
                    "INSERT INTO value_entity_state (persistence_id, entity_id, type_url, state)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (persistence_id, entity_id)
                     DO UPDATE SET type_url = excluded.type_url, state = excluded.state",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![
                        persistence_id,
                        entity_id,
                        state.type_url,
                        state.value
                    ])
                }),
            None => self
                .conn
                .prepare_cached(
                    "DELETE FROM value_entity_state WHERE persistence_id = ?1 AND entity_id = ?2",
                )
                .and_then(|mut statement| statement.execute([persistence_id, entity_id])),
        }
        .map(drop)
        .map_err(sql)
    }

    fn get_crdt(
        &mut self,
        (persistence_id, entity_id): &ValueKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT state FROM crdt_state WHERE persistence_id = ?1 AND entity_id = ?2",
            )
            .and_then(|mut statement| {
                statement
                    .query_row([persistence_id, entity_id], |row| row.get(0))
                    .optional()
            })
            .map_err(sql)
    }

    fn write_crdt(&mut self, key: &ValueKey, state: Option<Vec<u8>>) -> Result<(), StoreError> {
        let (persistence_id, entity_id) = key;
        match state {
            Some(state) => self
                .conn
                .prepare_cached(
                    "INSERT INTO crdt_state (persistence_id, entity_id, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (persistence_id, entity_id) DO UPDATE SET state = excluded.state",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![persistence_id, entity_id, state])
                }),
            None => self
                .conn
                .prepare_cached(
                    "DELETE FROM crdt_state WHERE persistence_id = ?1 AND entity_id = ?2",
                )
                .and_then(|mut statement| statement.execute([persistence_id, entity_id])),
        }
        .map(drop)
        .map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(v: &str) -> Any {
        Any {
            type_url: "type.googleapis.com/x.E".into(),
            value: v.as_bytes().to_vec(),
        }
    }

    async fn exercise(store: &Store) {
        assert_eq!(store.recover("p", "a").await.unwrap(), Recovery::default());
        store
            .append("p", "a", 1, vec![any("1"), any("2")], None)
            .await
            .unwrap();
        store
            .append("p", "a", 3, vec![any("3")], Some(any("S3")))
            .await
            .unwrap();
        store
            .append("p", "a", 4, vec![any("4")], None)
            .await
            .unwrap();
        store
            .append("p", "b", 1, vec![any("b1")], None)
            .await
            .unwrap();
        let r = store.recover("p", "a").await.unwrap();
        assert_eq!(
            r.snapshot,
            Some(StoredSnapshot {
                sequence: 3,
                payload: any("S3")
            })
        );
        assert_eq!(
            r.events,
            vec![StoredEvent {
                sequence: 4,
                payload: any("4")
            }]
        );
        assert!(
            store
                .append("p", "a", 4, vec![any("x")], None)
                .await
                .is_err(),
            "sequence taken"
        );
        assert_eq!(store.recover("p", "b").await.unwrap().events.len(), 1);
        assert_eq!(store.recover("q", "a").await.unwrap(), Recovery::default());
        exercise_tags(store).await;
    }

    /// Called after `exercise` appended a1..a4 and b1 to `p`.
    async fn exercise_tags(store: &Store) {
        let mut written = store.journal_written().unwrap();
        written.borrow_and_update();
        let all = store.events_by_tag("p", 0, 100).await.unwrap();
        let seen: Vec<(&str, i64, &[u8])> = all
            .iter()
            .map(|e| (e.entity_id.as_str(), e.sequence, e.payload.value.as_slice()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", 1, b"1".as_slice()),
                ("a", 2, b"2"),
                ("a", 3, b"3"),
                ("a", 4, b"4"),
                ("b", 1, b"b1")
            ]
        );
        assert!(all.windows(2).all(|w| w[0].offset < w[1].offset));
        let after = store.events_by_tag("p", all[2].offset, 1).await.unwrap();
        assert_eq!(after, vec![all[3].clone()]);
        assert!(
            store
                .events_by_tag("p", all[4].offset, 9)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.events_by_tag("q", 0, 9).await.unwrap().is_empty());
        assert!(!written.has_changed().unwrap());
        store
            .append("q", "c", 1, vec![any("c1")], None)
            .await
            .unwrap();
        assert!(written.has_changed().unwrap(), "an append is announced");
        let q = store.events_by_tag("q", 0, 9).await.unwrap();
        assert_eq!(q.len(), 1);
        assert!(q[0].offset > all[4].offset, "one order across tags");
    }

    async fn exercise_values(store: &Store) {
        assert_eq!(store.get_value("p", "a").await.unwrap(), None);
        store.upsert_value("p", "a", any("one")).await.unwrap();
        store.upsert_value("p", "a", any("two")).await.unwrap();
        store.upsert_value("p", "b", any("b")).await.unwrap();
        store.upsert_value("q", "a", any("q")).await.unwrap();
        assert_eq!(store.get_value("p", "a").await.unwrap(), Some(any("two")));
        store.delete_value("p", "b").await.unwrap();
        store.delete_value("p", "never").await.unwrap();
        assert_eq!(store.get_value("p", "b").await.unwrap(), None);
        assert_eq!(store.get_value("q", "a").await.unwrap(), Some(any("q")));
        // Not the official concatenation: "p" + "a" and "pa" + "" differ.
        assert_eq!(store.get_value("pa", "").await.unwrap(), None);
        let other_type = Any {
            type_url: "type.googleapis.com/x.Other".into(),
            value: vec![0, 1, 2],
        };
        store
            .upsert_value("q", "a", other_type.clone())
            .await
            .unwrap();
        assert_eq!(store.get_value("q", "a").await.unwrap(), Some(other_type));
    }

    async fn exercise_crdts(store: &Store) {
        assert_eq!(store.get_crdt("p", "a").await.unwrap(), None);
        store.put_crdt("p", "a", vec![1]).await.unwrap();
        store.put_crdt("p", "a", vec![2, 2]).await.unwrap();
        store.put_crdt("p", "b", vec![3]).await.unwrap();
        store.put_crdt("q", "a", Vec::new()).await.unwrap();
        assert_eq!(store.get_crdt("p", "a").await.unwrap(), Some(vec![2, 2]));
        assert_eq!(store.get_crdt("q", "a").await.unwrap(), Some(Vec::new()));
        store.delete_crdt("p", "b").await.unwrap();
        store.delete_crdt("p", "never").await.unwrap();
        assert_eq!(store.get_crdt("p", "b").await.unwrap(), None);
        assert_eq!(store.get_crdt("pa", "").await.unwrap(), None);
        // CRDT state and value-entity state of the same ids are apart.
        assert_eq!(store.get_value("p", "a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_store() {
        let store = Store::memory();
        exercise(&store).await;
        // The in-memory store keeps no consumer offsets (see `load_offset`).
        store.save_offset("c", "p", 3).await.unwrap();
        assert_eq!(store.load_offset("c", "p").await.unwrap(), None);
        exercise_values(&Store::memory()).await;
        exercise_crdts(&Store::memory()).await;
    }

    #[tokio::test]
    async fn sqlite_crdts_survive_reopening() {
        let path = std::env::temp_dir().join(format!("devproxy-crdts-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        exercise_crdts(&Store::sqlite(&path).unwrap()).await;
        let reopened = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        assert_eq!(reopened.get_crdt("p", "a").await.unwrap(), Some(vec![2, 2]));
        assert_eq!(reopened.get_crdt("p", "b").await.unwrap(), None);
        reopened.delete_crdt("p", "a").await.unwrap();
        let again = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        assert_eq!(again.get_crdt("p", "a").await.unwrap(), None);
        assert_eq!(again.get_crdt("q", "a").await.unwrap(), Some(Vec::new()));
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn sqlite_keeps_only_the_latest_snapshot() {
        let path =
            std::env::temp_dir().join(format!("devproxy-snapshots-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let store = Store::sqlite(&path).unwrap();
        for round in 0..4 {
            store
                .append(
                    "p",
                    "a",
                    round * 2 + 1,
                    vec![any("e"), any("f")],
                    Some(any(&format!("s{round}"))),
                )
                .await
                .unwrap();
        }
        let rows: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM snapshot", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        let recovered = store.recover("p", "a").await.unwrap();
        let snapshot = recovered.snapshot.unwrap();
        assert_eq!((snapshot.sequence, snapshot.payload), (8, any("s3")));
        assert!(recovered.events.is_empty());
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn sqlite_store_survives_reopening() {
        let path = std::env::temp_dir().join(format!("devproxy-store-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        exercise(&Store::sqlite(&path).unwrap()).await;
        let reopened = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        let r = reopened.recover("p", "a").await.unwrap();
        assert_eq!(r.snapshot.unwrap().sequence, 3);
        assert_eq!(r.events.len(), 1);
        assert_eq!(reopened.events_by_tag("p", 0, 100).await.unwrap().len(), 5);
        assert_eq!(reopened.load_offset("c", "p").await.unwrap(), None);
        reopened.save_offset("c", "p", 3).await.unwrap();
        reopened.save_offset("c", "p", 4).await.unwrap();
        reopened.save_offset("d", "p", 1).await.unwrap();
        let again = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        assert_eq!(again.load_offset("c", "p").await.unwrap(), Some(4));
        assert_eq!(again.load_offset("d", "p").await.unwrap(), Some(1));
        assert_eq!(again.load_offset("c", "q").await.unwrap(), None);
        assert!(Store::from_spec("postgres:x").is_err());
    }

    #[tokio::test]
    async fn sqlite_values_survive_reopening() {
        let path = std::env::temp_dir().join(format!("devproxy-values-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        exercise_values(&Store::sqlite(&path).unwrap()).await;
        let reopened = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        assert_eq!(
            reopened.get_value("p", "a").await.unwrap(),
            Some(any("two"))
        );
        assert_eq!(reopened.get_value("p", "b").await.unwrap(), None);
        reopened.delete_value("p", "a").await.unwrap();
        let again = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
        assert_eq!(again.get_value("p", "a").await.unwrap(), None);
        assert_eq!(
            again.get_value("q", "a").await.unwrap().map(|a| a.value),
            Some(vec![0, 1, 2])
        );
        let _ = std::fs::remove_file(&path);
    }
}
