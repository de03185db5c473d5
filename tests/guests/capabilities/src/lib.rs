//! Test guest: activities that reach outside their sandbox (files,
//! environment variables, sockets, HTTP hosts), each reporting what it got
//! or the error it saw; and activities that never end, one busy and one
//! blocked in a host call, for cancellation. Activities only: a component
//! that imports `wasi:http` may provide no orchestrations.

use std::io::Read;
use std::time::Duration;

use duroxide_guest::Registry;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Reads the file at path `input`.
fn read_file(input: String) -> Result<String, String> {
    let mut text = String::new();
    std::fs::File::open(&input)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("cannot read {input}: {e}"))?;
    Ok(text)
}

/// Writes "path|text".
fn write_file(input: String) -> Result<String, String> {
    let (path, text) = input.split_once('|').ok_or("expected path|text")?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    Ok(format!("wrote {} bytes", text.len()))
}

/// Lists the directory at path `input`, names sorted.
fn list_dir(input: String) -> Result<String, String> {
    let entries = std::fs::read_dir(&input).map_err(|e| format!("cannot list {input}: {e}"))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names.join(","))
}

/// The value of environment variable `input`, and how many it sees in all.
fn read_env(input: String) -> Result<String, String> {
    let count = std::env::vars().count();
    std::env::var(&input)
        .map(|value| format!("{value} (of {count})"))
        .map_err(|e| format!("no variable {input} (of {count}): {e}"))
}

/// Connects a TCP socket to `input` (`ip:port`).
fn connect(input: String) -> Result<String, String> {
    std::net::TcpStream::connect(&input)
        .map(|_| "connected".to_string())
        .map_err(|e| format!("cannot connect to {input}: {e}"))
}

/// GETs URL `input` through `wasi:http`: "status N: body".
fn http_get(input: String) -> Result<String, String> {
    let (scheme, rest) = if let Some(rest) = input.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = input.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("not an http(s) URL: {input}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let set = request
        .set_method(&Method::Get)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(Some(authority)))
        .and(request.set_path_with_query(Some(path)));
    set.map_err(|()| format!("the host refused the parts of {input}"))?;
    let refused = |e: ErrorCode| format!("request refused: {e:?}");
    let future = outgoing_handler::handle(request, None).map_err(refused)?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(response)) => response.map_err(refused)?,
        _ => return Err("the response was not ready".into()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "no body")?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| "no body stream")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend(chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    let code = wasip2::http::types::http_error_code(&e);
                    return Err(format!(
                        "reading the body failed after {} bytes: {code:?}",
                        bytes.len()
                    ));
                }
            }
        }
    }
    Ok(format!(
        "status {status}: {}",
        String::from_utf8_lossy(&bytes)
    ))
}

/// Loops for ever without yielding or asking whether it is still wanted.
fn spin_forever(input: String) -> Result<String, String> {
    let mut x: u64 = input.len() as u64 + 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 0 {
            return Ok("never".into());
        }
    }
}

/// Sleeps for an hour, blocked in the host's clock.
fn sleep_forever(_input: String) -> Result<String, String> {
    std::thread::sleep(Duration::from_secs(3600));
    Ok("woke".into())
}

fn register(registry: &mut Registry) {
    registry
        .activity("ReadFile", read_file)
        .activity("WriteFile", write_file)
        .activity("ListDir", list_dir)
        .activity("ReadEnv", read_env)
        .activity("Connect", connect)
        .activity("HttpGet", http_get)
        .activity("SpinForever", spin_forever)
        .activity("SleepForever", sleep_forever);
}

duroxide_guest::component!(register);
