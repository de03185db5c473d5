//! The management queries (list, bulk rows, counts, purge, finish notices)
//! on the SQLite store, on a real file: the scenarios every provider
//! passes, in `management/`.

mod management;

use std::error::Error;

use duroxide::providers::HistoryStore;
use duroxide::providers::sqlite::SqliteHistoryStore;
use tempfile::TempDir;

use management::Harness;

/// A store on a fresh file, and the file's directory.
struct Sqlite {
    store: SqliteHistoryStore,
    dir: TempDir,
}

impl Harness for Sqlite {
    fn store(&self) -> &dyn HistoryStore {
        &self.store
    }

    async fn stored_rows(&self, id: &str) -> Result<[i64; 4], Box<dyn Error>> {
        let conn = rusqlite::Connection::open(self.dir.path().join("store.db"))?;
        let mut counts = [0; 4];
        for (count, table) in counts.iter_mut().zip(TABLES) {
            *count = conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE instance_id = ?1"),
                [id],
                |r| r.get(0),
            )?;
        }
        Ok(counts)
    }
}

/// The tables [`Harness::stored_rows`] counts, in its order.
const TABLES: [&str; 4] = [
    "instances",
    "history",
    "orchestrator_queue",
    "activity_queue",
];

async fn sqlite_file() -> Result<Option<Sqlite>, Box<dyn Error>> {
    let dir = TempDir::new()?;
    let path = dir.path().join("store.db");
    let store = SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await?;
    Ok(Some(Sqlite { store, dir }))
}

management::management_suite!(file, sqlite_file);
