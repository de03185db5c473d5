//! A Python component's sandboxes, on a real runtime and SQLite file
//! (tests/guests-py/grants): its activities get the real clock and the
//! directories and environment variables granted to the component, and
//! nothing else; its orchestrations get none of it, their sockets reach
//! nothing, and reading the clock through `datetime` raises
//! `NondeterminismError`. An activity-only Python component
//! (tests/guests-py/http-activities) sends HTTP to the origins granted to
//! it on a real server on 127.0.0.1, and to no other. Each runs with the
//! execution cache on and off.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use duroxide::clock::{Clock, SystemClock};
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, ComponentPolicy, DirMode, DuroxideRuntime, Grants, HttpGrant};
use duroxide_tests::http_server::Server;
use duroxide_tests::{WAIT_MS, completed, failed, options};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The Python guest.
const GUEST: &str = env!("GUEST_PY_GRANTS");
/// The activity-only Python guest, which the build gives `wasi:http`.
const HTTP_GUEST: &str = env!("GUEST_PY_HTTP_ACTIVITIES");

/// A runtime serving the guest under `grants`, and a client.
struct Run {
    _dir: TempDir,
    client: Client,
    runtime: DuroxideRuntime,
}

impl Run {
    async fn start(cache: bool, grants: Grants) -> anyhow::Result<Self> {
        Self::start_with(cache, grants, None).await
    }

    /// Also serving the HTTP guest's activities under `http_grants`.
    async fn start_with(
        cache: bool,
        grants: Grants,
        http_grants: Option<Grants>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("grants.db").display());
        let store = Arc::new(SqliteHistoryStore::new(&url).await?);
        let mut options = options(cache);
        // Room for the Python interpreter built to Wasm.
        options.limits.max_memory_bytes = 256 << 20;
        let mut policy = ComponentPolicy::with_limits(options.limits.clone());
        policy.grants = grants;
        let mut runtime = DuroxideRuntime::with_options(store.clone(), options);
        runtime
            .load_component_file_with_policy(GUEST, policy.clone())
            .await?;
        if let Some(grants) = http_grants {
            policy.grants = grants;
            runtime
                .load_component_file_with_policy(HTTP_GUEST, policy)
                .await?;
        }
        runtime.start().await?;
        Ok(Self {
            _dir: dir,
            client: Client::new(store),
            runtime,
        })
    }

    /// Runs `name` on `input` as `id`; its status once it finished.
    async fn run(
        &self,
        id: &str,
        name: &str,
        input: Value,
    ) -> anyhow::Result<duroxide::OrchestrationStatus> {
        self.client
            .start_orchestration(id, name, &input.to_string(), None)
            .await?;
        Ok(self.client.wait_for_completion(id, Some(WAIT_MS)).await?)
    }

    /// The output of `name` on `input`, which must complete.
    async fn output(&self, id: &str, name: &str, input: Value) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&completed(
            self.run(id, name, input).await?,
        )?)?)
    }

    /// Calls activity `activity` on `input` through the `Call`
    /// orchestration: `Ok(output)` or `Err(the activity's error)`.
    async fn call(
        &self,
        id: &str,
        activity: &str,
        input: Value,
    ) -> anyhow::Result<Result<Value, String>> {
        let out = self
            .output(id, "Call", json!({"activity": activity, "input": input}))
            .await?;
        Ok(match (out.get("ok"), out.get("err")) {
            (Some(ok), None) => Ok(ok.clone()),
            (None, Some(err)) => Err(err.as_str().unwrap_or_default().to_string()),
            _ => anyhow::bail!("neither ok nor err: {out}"),
        })
    }
}

/// A directory tree: `in/hello.txt` (to be granted read-only), `secret.txt`
/// beside `in` (not granted), and `out/` (to be granted read-write).
struct Tree {
    root: TempDir,
}

impl Tree {
    fn new() -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("in"))?;
        std::fs::create_dir(root.path().join("out"))?;
        std::fs::write(root.path().join("in/hello.txt"), "hello from the host")?;
        std::fs::write(root.path().join("secret.txt"), "classified contents")?;
        Ok(Self { root })
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// `in` at `/data` read-only, `out` at `/out` read-write, and two
    /// variables: one with a value, one the host's own.
    fn grants(&self) -> Grants {
        Grants::none()
            .dir(self.path("in"), "/data", DirMode::ReadOnly)
            .dir(self.path("out"), "/out", DirMode::ReadWrite)
            .env_value("GREETING", "hi")
            .env("PATH")
    }
}

/// Declare `$test` with the execution cache on and off.
macro_rules! cached_and_not {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cached() -> anyhow::Result<()> {
                super::$test(true).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn uncached() -> anyhow::Result<()> {
                super::$test(false).await
            }
        }
    };
}

async fn python_activities_reach_what_was_granted_and_nothing_else(
    cache: bool,
) -> anyhow::Result<()> {
    let tree = Tree::new()?;
    let mut run = Run::start(cache, tree.grants()).await?;

    let greeting = run.call("greeting", "ReadEnv", json!("GREETING")).await?;
    assert_eq!(greeting, Ok(json!("hi (of 2)")));
    let path = run.call("path", "ReadEnv", json!("PATH")).await?;
    assert_eq!(
        path,
        Ok(json!(format!("{} (of 2)", std::env::var("PATH")?)))
    );
    let home = run.call("home", "ReadEnv", json!("HOME")).await?;
    assert_eq!(home, Err("KeyError: 'no variable HOME (of 2)'".to_string()));

    let read = run
        .call("read", "ReadFile", json!("/data/hello.txt"))
        .await?;
    assert_eq!(read, Ok(json!("hello from the host")));
    let listed = run.call("list", "ListDir", json!("/data")).await?;
    assert_eq!(listed, Ok(json!(["hello.txt"])));
    // Neither `..`, another path, nor a host path gets out of the grant.
    let secret = tree.path("secret.txt").display().to_string();
    for (i, path) in ["/data/../secret.txt", "/secret.txt", &secret]
        .into_iter()
        .enumerate()
    {
        let refused = run
            .call(&format!("out{i}"), "ReadFile", json!(path))
            .await?;
        let Err(error) = refused else {
            anyhow::bail!("{path} was read: {refused:?}");
        };
        assert!(
            error.contains("Error: [Errno") && error.contains(&format!("'{path}'")),
            "{path}: {error}"
        );
    }

    // Read-only: a write is refused and leaves no file on the host.
    let write = json!({"path": "/data/new.txt", "text": "x"});
    let refused = run.call("write-ro", "WriteFile", write).await?;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("'/data/new.txt'")),
        "{refused:?}"
    );
    assert!(!tree.path("in/new.txt").exists());
    let write = json!({"path": "/out/result.txt", "text": "done"});
    assert_eq!(run.call("write", "WriteFile", write).await?, Ok(json!(4)));
    assert_eq!(
        std::fs::read_to_string(tree.path("out/result.txt"))?,
        "done"
    );
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(python_activities_reach_what_was_granted_and_nothing_else);

async fn python_activities_send_http_to_granted_origins_only(cache: bool) -> anyhow::Result<()> {
    let server = Server::start(String::new(), 0)?;
    let other = Server::start(String::new(), 0)?;
    let grants = Grants::none().http(HttpGrant::allow([format!("http://{}", server.addr)]));
    let mut run = Run::start_with(cache, Grants::none(), Some(grants)).await?;

    let fetch = |path: &str, addr| json!({"url": format!("http://{addr}{path}")});
    let hello = run
        .call("hello", "PyFetch", fetch("/hello?lang=py", server.addr))
        .await?;
    assert_eq!(hello, Ok(json!("200: hello")));
    let missing = run
        .call("missing", "PyFetch", fetch("/missing", server.addr))
        .await?;
    assert_eq!(missing, Ok(json!("404: ")));
    let data = json!({"text": "zażółć 🦀", "n": [1, 2]});
    let post = json!({"url": format!("http://{}/echo", server.addr), "data": data});
    let echoed = run.call("post", "PyPost", post).await?;
    let Ok(echoed) = echoed else {
        anyhow::bail!("the post failed: {echoed:?}");
    };
    assert_eq!(echoed["status"], json!(200), "{echoed}");
    assert_eq!(echoed["type"], json!("application/json"), "{echoed}");
    let body: Value = serde_json::from_str(echoed["body"].as_str().unwrap_or_default())?;
    assert_eq!(body, data);
    assert_eq!(server.accepted(), 3);

    // Another origin is refused before anything is sent.
    let refused = run
        .call("other", "PyFetch", fetch("/hello", other.addr))
        .await?;
    let text = refused
        .as_ref()
        .ok()
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        text.starts_with("err: GET http://") && text.ends_with("HttpRequestDenied"),
        "{refused:?}"
    );
    assert_eq!(other.accepted(), 0);
    // And a failed status raised by the activity fails its attempt with
    // the SDK's error.
    let post = json!({"url": format!("http://{}/missing", server.addr), "data": 1});
    let failed = run.call("post-missing", "PyPost", post).await?;
    assert_eq!(failed, Err("HttpError: HTTP 404".to_string()));
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(python_activities_send_http_to_granted_origins_only);

async fn without_grants_python_activities_see_nothing(cache: bool) -> anyhow::Result<()> {
    let mut run = Run::start(cache, Grants::none()).await?;
    let greeting = run.call("greeting", "ReadEnv", json!("GREETING")).await?;
    assert_eq!(
        greeting,
        Err("KeyError: 'no variable GREETING (of 0)'".to_string())
    );
    let read = run
        .call("read", "ReadFile", json!("/data/hello.txt"))
        .await?;
    assert!(
        read.as_ref()
            .is_err_and(|e| e.starts_with("FileNotFoundError: ")),
        "{read:?}"
    );
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(without_grants_python_activities_see_nothing);

async fn python_orchestrations_get_nothing_their_component_was_granted(
    cache: bool,
) -> anyhow::Result<()> {
    let tree = Tree::new()?;
    let mut run = Run::start(cache, tree.grants()).await?;
    // The component's activity reads the file...
    let read = run
        .call("activity", "ReadFile", json!("/data/hello.txt"))
        .await?;
    assert_eq!(read, Ok(json!("hello from the host")));
    // ...its orchestration finds neither the file nor a variable.
    let probe = run
        .output(
            "probe",
            "Probe",
            json!({"file": "/data/hello.txt", "var": "GREETING"}),
        )
        .await?;
    assert_eq!(
        probe,
        json!({"file": "FileNotFoundError", "var": null, "vars": 0})
    );
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(python_orchestrations_get_nothing_their_component_was_granted);

async fn python_sockets_reach_nothing(cache: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?.to_string();
    let mut run = Run::start(cache, Grants::none()).await?;
    // An orchestration's name lookup and connection fail inside the guest,
    // which goes on and completes.
    let outcome = run.output("orchestration", "Connect", json!(addr)).await?;
    assert_eq!(
        outcome,
        json!({
            "lookup": "gaierror: [Errno -4] Non-recoverable error",
            "connect": "PermissionError: [Errno 2] Permission denied",
        })
    );
    // So does an activity's connection.
    let connect = run.call("activity", "Connect", json!(addr)).await?;
    assert_eq!(
        connect,
        Err("PermissionError: [Errno 2] Permission denied".to_string())
    );
    // Nothing reached the listener.
    assert!(listener.accept().is_err());
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(python_sockets_reach_nothing);

async fn python_datetime_reads_are_refused_in_orchestrations_only(
    cache: bool,
) -> anyhow::Result<()> {
    let mut run = Run::start(cache, Grants::none()).await?;
    for (name, call, instead) in [
        ("DatetimeNow", "datetime.datetime.now()", "ctx.now()"),
        ("DatetimeUtcnow", "datetime.datetime.utcnow()", "ctx.now()"),
        ("DatetimeToday", "datetime.datetime.today()", "ctx.now()"),
        ("DateToday", "datetime.date.today()", "ctx.now().date()"),
    ] {
        let error = failed(run.run(name, name, json!(null)).await?)?;
        let expected = format!("NondeterminismError: {call} differs on replay");
        assert!(error.starts_with(&expected), "{name}: {error}");
        assert!(
            error.ends_with(&format!("use {instead}")),
            "{name}: {error}"
        );
    }
    // The replay-safe time is a `datetime` still.
    let now = run.output("now", "ContextNow", json!(null)).await?;
    assert_eq!(now[1], json!(true), "{now}");
    assert!(
        now[0].as_str().is_some_and(|t| t.ends_with("+00:00")),
        "{now}"
    );
    // Activities keep the real clock, through `time` and `datetime` alike.
    let host_ms = i64::try_from(SystemClock.now_ms())?;
    let clock = run.call("clock", "Clock", json!(null)).await?;
    let Ok(clock) = clock else {
        anyhow::bail!("the clock activity failed: {clock:?}");
    };
    for reading in [&clock[0], &clock[1]] {
        let ms = reading.as_i64().unwrap_or_default();
        assert!((ms - host_ms).abs() < 60_000, "{clock} against {host_ms}");
    }
    run.runtime.stop().await;
    Ok(())
}
cached_and_not!(python_datetime_reads_are_refused_in_orchestrations_only);
