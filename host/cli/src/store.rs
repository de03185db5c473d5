//! Opening the store named by `--db`.

use std::path::Path;
use std::sync::Arc;

use duroxide::Client;
use duroxide::providers::sqlite::SqliteHistoryStore;

use crate::exit::{Code, fail};

/// The file a `--db` value names, if it names one.
fn file_of(db: &str) -> Option<&str> {
    let path = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))
        .unwrap_or(db);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}

/// Opens the store. Only commands that set one up (`deploy`, `run`)
/// create a missing file; the others refuse it, writing nothing.
pub async fn open(db: &str, create: bool) -> anyhow::Result<Arc<SqliteHistoryStore>> {
    if !create
        && let Some(file) = file_of(db)
        && !Path::new(file).exists()
    {
        return Err(fail(
            Code::NotFound,
            format!(
                "no store at '{file}': deploy a component first (`duroxide deploy <file.wasm>`) or pass --db"
            ),
        ));
    }
    let store = SqliteHistoryStore::new(db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the store '{db}': {e}"))?;
    Ok(Arc::new(store))
}

/// A client on the store.
pub async fn client(db: &str) -> anyhow::Result<(Client, Arc<SqliteHistoryStore>)> {
    let store = open(db, false).await?;
    Ok((Client::new(store.clone()), store))
}

/// The full digest of the deployed component `prefix` names uniquely.
pub async fn resolve_digest(client: &Client, prefix: &str) -> anyhow::Result<String> {
    let prefix = prefix.to_ascii_lowercase();
    let matches: Vec<String> = client
        .list_components()
        .await?
        .into_iter()
        .map(|c| c.digest)
        .filter(|d| d.starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(fail(
            Code::NotFound,
            format!(
                "no deployed component has a digest starting with '{prefix}': see `duroxide components`"
            ),
        )),
        _ => Err(fail(
            Code::Usage,
            format!(
                "'{prefix}' names {} components: give more of the digest",
                matches.len()
            ),
        )),
    }
}
