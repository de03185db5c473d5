//! Activities reach only what their component was granted: a directory
//! (read-only or read-write, with no way out by `..` or a symlink), named
//! environment variables, and HTTP to listed origins on a real server on
//! 127.0.0.1. Anything else fails inside the guest with a clear error, and
//! orchestration sandboxes get nothing even when their component has grants
//! (their sockets reach nothing).

use std::net::TcpListener;
use std::time::Duration;

use duroxide::{ComponentPolicy, DirMode, DuroxideRuntime, Grants, HttpGrant, RuntimeError};
use duroxide_tests::http_server::Server;
use duroxide_tests::{Harness, completed, guests, scenario};
use tempfile::TempDir;

/// Replaces the harness's runtime with one that runs the capability
/// activities under `grants`, and the orchestrations that call them under
/// `orchestration_grants`.
async fn granted(
    h: &mut Harness,
    cache: bool,
    grants: Grants,
    orchestration_grants: Grants,
) -> anyhow::Result<()> {
    h.runtime.stop().await;
    let options = duroxide_tests::options(cache);
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options.clone());
    let mut policy = ComponentPolicy::with_limits(options.limits.clone());
    policy.grants = orchestration_grants;
    runtime
        .load_component_file_with_policy(guests::GRANT_ORCHESTRATIONS, policy.clone())
        .await?;
    policy.grants = grants;
    runtime
        .load_component_file_with_policy(guests::CAPABILITIES, policy)
        .await?;
    runtime.start().await?;
    h.runtime = runtime;
    Ok(())
}

/// A harness whose capability activities run under `grants`.
async fn harness(cache: bool, grants: Grants) -> anyhow::Result<Harness> {
    let mut h = Harness::start(cache, &[]).await?;
    granted(&mut h, cache, grants, Grants::none()).await?;
    Ok(h)
}

/// Calls activity `name` on `input` through the `Call` orchestration:
/// "ok: output" or "err: error".
async fn call(h: &Harness, instance: &str, name: &str, input: &str) -> anyhow::Result<String> {
    completed(h.run(instance, "Call", &format!("{name}|{input}")).await?)
}

/// A directory tree: `root/in/hello.txt`, `root/secret.txt` beside `in`,
/// and `root/in/escape`, a symlink to the secret.
fn tree() -> anyhow::Result<(TempDir, std::path::PathBuf)> {
    let root = tempfile::tempdir()?;
    let inside = root.path().join("in");
    std::fs::create_dir(&inside)?;
    std::fs::write(inside.join("hello.txt"), "hello from the host")?;
    std::fs::write(root.path().join("secret.txt"), "classified contents")?;
    std::os::unix::fs::symlink(root.path().join("secret.txt"), inside.join("escape"))?;
    Ok((root, inside))
}

scenario!(
    a_directory_grant_lets_its_file_be_read_and_nothing_beyond,
    |cache| async move {
        let (root, inside) = tree()?;
        let grants = Grants::none().dir(&inside, "/data", DirMode::ReadOnly);
        let h = harness(cache, grants).await?;
        let read = call(&h, "read", "ReadFile", "/data/hello.txt").await?;
        assert_eq!(read, "ok: hello from the host");
        let listed = call(&h, "list", "ListDir", "/data").await?;
        assert_eq!(listed, "ok: escape,hello.txt");
        // Read-only: a write is refused and leaves no file on the host.
        let write = call(&h, "write", "WriteFile", "/data/new.txt|x").await?;
        assert!(
            write.starts_with("err: cannot write /data/new.txt"),
            "{write}"
        );
        assert!(!inside.join("new.txt").exists());
        // Neither `..`, a symlink that leads out, nor another path gets out.
        for (i, path) in [
            "/data/../secret.txt",
            "/data/escape",
            "/secret.txt",
            "/etc/passwd",
        ]
        .into_iter()
        .enumerate()
        {
            let out = call(&h, &format!("out{i}"), "ReadFile", path).await?;
            assert!(
                out.starts_with(&format!("err: cannot read {path}")),
                "{out}"
            );
            assert!(!out.contains("classified"), "{path}: {out}");
        }
        drop(root);
        Ok(())
    }
);

scenario!(
    without_a_directory_grant_the_same_read_is_refused,
    |cache| async move {
        let (_root, _inside) = tree()?;
        let h = harness(cache, Grants::none()).await?;
        let read = call(&h, "read", "ReadFile", "/data/hello.txt").await?;
        assert!(
            read.starts_with("err: cannot read /data/hello.txt"),
            "{read}"
        );
        Ok(())
    }
);

scenario!(
    a_read_write_grant_lets_a_file_be_written,
    |cache| async move {
        let dir = tempfile::tempdir()?;
        let grants = Grants::none().dir(dir.path(), "/out", DirMode::ReadWrite);
        let h = harness(cache, grants).await?;
        let write = call(&h, "write", "WriteFile", "/out/result.txt|done").await?;
        assert_eq!(write, "ok: wrote 4 bytes");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("result.txt"))?,
            "done"
        );
        Ok(())
    }
);

scenario!(
    only_granted_environment_variables_are_seen,
    |cache| async move {
        // PATH is granted by name (the host's own value), GREETING with a value.
        let grants = Grants::none().env("PATH").env_value("GREETING", "hi");
        let h = harness(cache, grants).await?;
        let greeting = call(&h, "greeting", "ReadEnv", "GREETING").await?;
        assert_eq!(greeting, "ok: hi (of 2)");
        let path = call(&h, "path", "ReadEnv", "PATH").await?;
        let host_path = std::env::var("PATH")?;
        assert_eq!(path, format!("ok: {host_path} (of 2)"));
        let home = call(&h, "home", "ReadEnv", "HOME").await?;
        assert!(home.starts_with("err: no variable HOME (of 2)"), "{home}");
        Ok(())
    }
);

scenario!(
    a_socket_is_refused_even_to_a_live_port,
    |cache| async move {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let grants = Grants::none().http(HttpGrant::allow([format!("http://{addr}")]));
        let h = harness(cache, grants).await?;
        let connect = call(&h, "connect", "Connect", &addr.to_string()).await?;
        assert!(
            connect.starts_with(&format!("err: cannot connect to {addr}")),
            "{connect}"
        );
        // Nothing reached the listener.
        assert!(listener.accept().is_err());
        Ok(())
    }
);

scenario!(
    an_http_grant_reaches_its_origin_and_nothing_else,
    |cache| async move {
        let other = Server::start(String::new(), 0)?;
        let target = format!("http://{}/hello", other.addr);
        let server = Server::start(target.clone(), 2 << 20)?;
        let port = server.addr.port();
        let grant = HttpGrant::allow([format!("http://127.0.0.1:{port}")])
            .with_timeout(Duration::from_millis(1500))
            .with_max_response_bytes(1 << 20);
        let h = harness(cache, Grants::none().http(grant)).await?;

        let hello = format!("http://127.0.0.1:{port}/hello");
        let ok = call(&h, "ok", "HttpGet", &hello).await?;
        assert_eq!(ok, "ok: status 200: hello");
        assert_eq!(server.accepted(), 1);

        // The same server by another name, and another port: refused before
        // any connection.
        for (i, url) in [
            format!("http://localhost:{port}/hello"),
            format!("http://127.0.0.1:{}/hello", other.addr.port()),
            format!("https://127.0.0.1:{port}/hello"),
        ]
        .iter()
        .enumerate()
        {
            let refused = call(&h, &format!("refused{i}"), "HttpGet", url).await?;
            assert_eq!(
                refused, "err: request refused: ErrorCode::HttpRequestDenied",
                "{url}"
            );
        }
        assert_eq!((server.accepted(), other.accepted()), (1, 0));

        // A redirect comes back to the guest as it is; the host does not
        // follow it, and the guest's own next hop is checked again.
        let redirect = format!("http://127.0.0.1:{port}/redirect");
        let moved = call(&h, "redirect", "HttpGet", &redirect).await?;
        assert_eq!(moved, "ok: status 302: moved");
        let hop = call(&h, "hop", "HttpGet", &target).await?;
        assert_eq!(hop, "err: request refused: ErrorCode::HttpRequestDenied");
        assert_eq!(other.accepted(), 0);

        // A body over the cap, and a server that never answers, fail the
        // request inside the guest.
        let big = call(
            &h,
            "big",
            "HttpGet",
            &format!("http://127.0.0.1:{port}/big"),
        )
        .await?;
        assert!(big.contains("HttpResponseBodySize"), "{big}");
        let slow = call(
            &h,
            "slow",
            "HttpGet",
            &format!("http://127.0.0.1:{port}/slow"),
        )
        .await?;
        assert!(slow.contains("Timeout"), "{slow}");
        Ok(())
    }
);

scenario!(
    without_an_http_grant_every_request_is_refused,
    |cache| async move {
        let server = Server::start(String::new(), 0)?;
        let h = harness(cache, Grants::none()).await?;
        let url = format!("http://{}/hello", server.addr);
        let refused = call(&h, "refused", "HttpGet", &url).await?;
        assert_eq!(
            refused,
            "err: request refused: ErrorCode::HttpRequestDenied"
        );
        assert_eq!(server.accepted(), 0);
        Ok(())
    }
);

scenario!(
    orchestration_sandboxes_get_nothing_their_component_was_granted,
    |cache| async move {
        let (_root, inside) = tree()?;
        let grants = Grants::none()
            .dir(&inside, "/data", DirMode::ReadOnly)
            .env_value("GREETING", "hi");
        let mut h = Harness::start(cache, &[]).await?;
        granted(&mut h, cache, Grants::none(), grants).await?;
        // The component's activity reads the file...
        let read = call(&h, "activity", "ReadFileHere", "/data/hello.txt").await?;
        assert_eq!(read, "ok: hello from the host");
        // ...its orchestration finds neither the file nor the variable.
        let probe = completed(h.run("probe", "Probe", "/data/hello.txt|GREETING").await?)?;
        assert!(probe.starts_with("file: Err("), "{probe}");
        assert!(probe.contains("var: Err("), "{probe}");
        assert!(probe.ends_with("vars: 0"), "{probe}");
        Ok(())
    }
);

scenario!(
    an_orchestration_socket_reaches_nothing,
    |cache| async move {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        // Granted to its component, HTTP to the listener changes nothing.
        let grants = Grants::none().http(HttpGrant::allow([format!("http://{addr}")]));
        let mut h = Harness::start(cache, &[]).await?;
        granted(&mut h, cache, Grants::none(), grants).await?;
        let out = completed(h.run("connect", "Connect", &addr.to_string()).await?)?;
        assert_eq!(
            out,
            r#"lookup: Err("uncategorized error"); connect: Err("permission denied")"#
        );
        assert!(listener.accept().is_err());
        Ok(())
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_that_break_a_rule_are_refused_at_load() -> anyhow::Result<()> {
    let h = Harness::start(true, &[]).await?;
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), duroxide_tests::options(true));
    let missing = h.dir().join("missing");
    let refusals = [
        (
            Grants::none().dir(&missing, "/m", DirMode::ReadOnly),
            "granted directory",
        ),
        (
            Grants::none().dir(h.dir(), "relative", DirMode::ReadOnly),
            "must be absolute",
        ),
        (
            Grants::none().http(HttpGrant::allow(["localhost:80"])),
            "must start with http:// or https://",
        ),
    ];
    for (grants, reason) in refusals {
        let mut policy = ComponentPolicy::default();
        policy.grants = grants;
        let error = runtime
            .load_component_file_with_policy(guests::CAPABILITIES, policy)
            .await
            .expect_err("refused");
        assert!(matches!(error, RuntimeError::Grants(_)), "{error}");
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert!(chain.contains(reason), "{chain}");
    }
    Ok(())
}
