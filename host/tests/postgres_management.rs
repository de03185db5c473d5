//! The management queries (list, bulk rows, counts, purge, finish notices)
//! on the PostgreSQL store (feature `postgres`), each test in a schema of
//! its own: the scenarios every provider passes, in `management/`. Which
//! server, and skipping without one: see `postgres_support`.

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_runs_skipped_without_the_postgres_feature() {
    use std::io::Write;
    // Straight to stderr: the harness captures only `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED the PostgreSQL runs: this build lacks the `postgres` feature \
         (cargo test --features duroxide/postgres runs them).\n"
    );
}

#[cfg(feature = "postgres")]
mod management;
#[cfg(feature = "postgres")]
mod postgres_support;

#[cfg(feature = "postgres")]
mod pg {
    use std::error::Error;

    use duroxide::providers::HistoryStore;
    use duroxide::providers::postgres::PostgresHistoryStore;

    use crate::management::Harness;
    use crate::postgres_support::{Schema, available};

    /// A store in a schema of its own.
    struct Postgres {
        store: PostgresHistoryStore,
        schema: Schema,
    }

    impl Harness for Postgres {
        fn store(&self) -> &dyn HistoryStore {
            &self.store
        }

        async fn stored_rows(&self, id: &str) -> Result<[i64; 4], Box<dyn Error>> {
            let mut counts = [0; 4];
            let tables = [
                "instances",
                "history",
                "orchestrator_queue",
                "activity_queue",
            ];
            for (count, table) in counts.iter_mut().zip(tables) {
                // The id is the test's own, quoted as a literal.
                *count = self
                    .schema
                    .count(&format!(
                        "SELECT COUNT(*) FROM {table} WHERE instance_id = '{}'",
                        id.replace('\'', "''")
                    ))
                    .await?;
            }
            Ok(counts)
        }
    }

    async fn postgres() -> Result<Option<Postgres>, Box<dyn Error>> {
        if !available().await? {
            return Ok(None);
        }
        let schema = Schema::new();
        let store = schema.open(None).await?;
        Ok(Some(Postgres { store, schema }))
    }

    crate::management::management_suite!(schema, postgres);
}
