//! Opening the store named by `--db`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use duroxide::providers::{self, HistoryStore};
use duroxide::{Client, Tenant};

use crate::exit::{Code, fail};

/// The file a `--db` value names, if it names one (a PostgreSQL URL names
/// none).
fn file_of(db: &str) -> Option<&str> {
    if providers::is_postgres_url(db) {
        return None;
    }
    let path = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))
        .unwrap_or(db);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}

/// Opens the store `db` names (an SQLite file or URL, or a `postgres://`
/// URL). Only commands that set one up (`deploy`, `run`) create a missing
/// file; the others refuse it, writing nothing.
pub async fn open(db: &str, create: bool) -> anyhow::Result<Arc<dyn HistoryStore>> {
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
    // The store's error as the cause, so the message shows its causes too
    // (a refused connection, say).
    providers::open(db).await.map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot open the store '{}'", shown(db)))
    })
}

/// `db` as messages show it: without the password of a URL.
pub fn shown(db: &str) -> String {
    match db.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((credentials, host)) if credentials.contains(':') => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            _ => db.to_owned(),
        },
        None => db.to_owned(),
    }
}

/// The tenant `--tenant` names, set once before the command runs: every
/// command works within it, as `--db` names the store.
static TENANT: OnceLock<Tenant> = OnceLock::new();

/// Work within `tenant` from now on (called once, at start).
pub fn set_tenant(tenant: Tenant) {
    let _ = TENANT.set(tenant);
}

/// A client on `store`, for the tenant `--tenant` named.
pub fn client_of(store: Arc<dyn HistoryStore>) -> Client {
    let tenant = TENANT.get().cloned().unwrap_or_default();
    Client::new(store).with_tenant(tenant)
}

/// A client on the store, for the tenant `--tenant` named.
pub async fn client(db: &str) -> anyhow::Result<(Client, Arc<dyn HistoryStore>)> {
    let store = open(db, false).await?;
    Ok((client_of(store.clone()), store))
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
