//! What an activity component's sandboxes may reach outside: directories,
//! environment variables and HTTP hosts, granted per component. Nothing is
//! granted by default; orchestration sandboxes never get any of it.
//!
//! Grants are checked where they enter ([`Grants::validated`], called when a
//! component is loaded), so a sandbox only ever sees checked ones:
//! - a directory must exist on the host; its path is canonicalised then, so
//!   a later swap of a symlink on the path does not move the grant. Inside
//!   it, the guest cannot leave it: `..` and symlinks that lead out are
//!   refused by the capability-based filesystem the preopens are built on;
//! - a guest path is absolute, without `.` or `..` parts, and unique;
//! - an environment variable name is non-empty, holds no `=` or NUL, and is
//!   unique;
//! - an HTTP allowlist entry is `http://host[:port]` or `https://host[:port]`
//!   and nothing more (no user, path, query). A request is allowed only if
//!   its scheme, host and port equal an entry's, after lowering the case of
//!   the host and making default ports explicit. So `localhost` does not
//!   allow `127.0.0.1`, a port allows no other, and the host follows no
//!   redirect: each request the guest makes is checked on its own.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why grants were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// A granted host directory cannot be used.
    #[error("granted directory {path}: {reason}")]
    Directory {
        /// The host path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// A guest path is not absolute, holds `.` or `..`, or is given twice.
    #[error("guest path {path:?}: {reason}")]
    GuestPath {
        /// The guest path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// An environment variable name is malformed or given twice.
    #[error("environment variable {name:?}: {reason}")]
    EnvName {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// An HTTP allowlist entry is not `scheme://host[:port]`.
    #[error("HTTP allowlist entry {entry:?}: {reason}")]
    HttpEntry {
        /// The entry as given.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The HTTP timeout or response size cap is zero.
    #[error("HTTP grant: {0}")]
    HttpLimit(String),
}

/// Whether a granted directory may be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirMode {
    /// The guest may list and read it.
    #[default]
    ReadOnly,
    /// The guest may also create, write, rename and remove in it.
    ReadWrite,
}

/// A host directory an activity sees at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DirGrant {
    /// The directory on the host; canonical once validated.
    pub host: PathBuf,
    /// Where the guest finds it, e.g. `/data`.
    pub guest: String,
    /// Read-only unless said otherwise.
    #[serde(default)]
    pub mode: DirMode,
}

/// An environment variable an activity sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnvGrant {
    /// Its name.
    pub name: String,
    /// Its value; absent, the host's own value of the variable when the
    /// sandbox is made (the guest sees no variable if the host has none),
    /// so secrets need not be stored with a deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Default time one outbound HTTP request may take, response body included.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Default most bytes of one HTTP response body.
pub const DEFAULT_HTTP_MAX_RESPONSE_BYTES: u64 = 10 << 20;

/// Outbound HTTP through `wasi:http` to listed hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpGrant {
    /// The origins a request may go to: `http://host[:port]` or
    /// `https://host[:port]`.
    pub allow: Vec<String>,
    /// Most milliseconds one request may take, from its start to the last
    /// byte of its response.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most bytes of one response body.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_HTTP_TIMEOUT.as_millis() as u64
}

fn default_max_response_bytes() -> u64 {
    DEFAULT_HTTP_MAX_RESPONSE_BYTES
}

impl HttpGrant {
    /// Requests to `origins`, with the default timeout and size cap.
    pub fn allow<S: Into<String>>(origins: impl IntoIterator<Item = S>) -> Self {
        Self {
            allow: origins.into_iter().map(Into::into).collect(),
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
        }
    }

    /// The same, each request limited to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// The same, each response body limited to `bytes`.
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }
}

/// What an activity component's sandboxes may reach. None by default;
/// orchestration sandboxes never get any. Stored with a deployment or read
/// from a policy file in this shape (JSON shown; TOML has the same fields):
///
/// ```json
/// {
///   "dirs": [{ "host": "/srv/in", "guest": "/in", "mode": "read-only" }],
///   "env": [{ "name": "API_TOKEN" }, { "name": "REGION", "value": "eu" }],
///   "http": { "allow": ["https://api.example.com"], "timeout_ms": 30000,
///             "max_response_bytes": 10485760 }
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Grants {
    /// Directories, each at its guest path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirGrant>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvGrant>,
    /// Outbound HTTP; absent, every request is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
}

impl Grants {
    /// Nothing granted.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.env.is_empty() && self.http.is_none()
    }

    /// These grants and host directory `host` at guest path `guest`.
    pub fn dir(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        mode: DirMode,
    ) -> Self {
        self.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            mode,
        });
        self
    }

    /// These grants and the host's own environment variable `name`.
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.env.push(EnvGrant {
            name: name.into(),
            value: None,
        });
        self
    }

    /// These grants and environment variable `name` set to `value`.
    pub fn env_value(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push(EnvGrant {
            name: name.into(),
            value: Some(value.into()),
        });
        self
    }

    /// These grants and outbound HTTP as `http` says.
    pub fn http(mut self, http: HttpGrant) -> Self {
        self.http = Some(http);
        self
    }

    /// The grants checked against the rules of this module, with host
    /// directories canonical and allowlist entries normalised
    /// (`scheme://host:port`, the host in lower case).
    pub fn validated(self) -> Result<Grants, GrantError> {
        let mut guests = HashSet::new();
        let dirs = (self.dirs.into_iter())
            .map(|dir| validate_dir(dir, &mut guests))
            .collect::<Result<_, _>>()?;
        let mut names = HashSet::new();
        for var in &self.env {
            validate_env_name(&var.name, &mut names)?;
        }
        let http = self.http.map(validate_http).transpose()?;
        Ok(Grants {
            dirs,
            env: self.env,
            http,
        })
    }
}

fn validate_dir(dir: DirGrant, guests: &mut HashSet<String>) -> Result<DirGrant, GrantError> {
    let guest_error = |reason: &str| GrantError::GuestPath {
        path: dir.guest.clone(),
        reason: reason.into(),
    };
    if !dir.guest.starts_with('/') {
        return Err(guest_error("must be absolute"));
    }
    // Split by hand: `Path::components` drops inner `.` parts silently.
    if dir.guest.split('/').any(|part| part == "." || part == "..") {
        return Err(guest_error("must not hold `.` or `..`"));
    }
    if !guests.insert(dir.guest.trim_end_matches('/').to_string()) {
        return Err(guest_error("is granted twice"));
    }
    let host_error = |reason: String| GrantError::Directory {
        path: dir.host.display().to_string(),
        reason,
    };
    let host = std::fs::canonicalize(&dir.host).map_err(|e| host_error(e.to_string()))?;
    if !host.is_dir() {
        return Err(host_error("is not a directory".into()));
    }
    Ok(DirGrant { host, ..dir })
}

fn validate_env_name(name: &str, names: &mut HashSet<String>) -> Result<(), GrantError> {
    let error = |reason: &str| GrantError::EnvName {
        name: name.into(),
        reason: reason.into(),
    };
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(error("must be non-empty, without `=` or NUL"));
    }
    if !names.insert(name.to_string()) {
        return Err(error("is granted twice"));
    }
    Ok(())
}

fn validate_http(http: HttpGrant) -> Result<HttpGrant, GrantError> {
    if http.timeout_ms == 0 {
        return Err(GrantError::HttpLimit("timeout_ms must be above 0".into()));
    }
    if http.max_response_bytes == 0 {
        return Err(GrantError::HttpLimit(
            "max_response_bytes must be above 0".into(),
        ));
    }
    let allow = (http.allow.iter())
        .map(|entry| Origin::parse_entry(entry).map(|o| o.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(HttpGrant { allow, ..http })
}

/// A scheme, host and port: what an allowlist entry names and what a
/// request is matched on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// `true` for https.
    pub(crate) tls: bool,
    /// The host, in lower case; an IPv6 literal keeps its brackets.
    pub(crate) host: String,
    /// The port, explicit even when it is the scheme's default.
    pub(crate) port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Origin {
    /// Parses an allowlist entry: `http://host[:port]` or
    /// `https://host[:port]`, optionally ending in `/`.
    pub(crate) fn parse_entry(entry: &str) -> Result<Origin, GrantError> {
        let error = |reason: &str| GrantError::HttpEntry {
            entry: entry.into(),
            reason: reason.into(),
        };
        let (tls, rest) = if let Some(rest) = entry.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = entry.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(error("must start with http:// or https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(error("must name an origin only, without a path or query"));
        }
        Origin::from_authority(tls, authority).map_err(|reason| error(&reason))
    }

    /// The origin of a request's scheme and `authority` (`host[:port]`).
    pub(crate) fn from_authority(tls: bool, authority: &str) -> Result<Origin, String> {
        if authority.contains('@') {
            return Err("must not hold a user name or password".into());
        }
        let parsed: http::uri::Authority = authority
            .parse()
            .map_err(|e| format!("is not a host and port: {e}"))?;
        let host = parsed.host();
        if host.is_empty() {
            return Err("has no host".into());
        }
        // Read by hand: `Authority::port` hides a port that overflows.
        let port = match authority.get(host.len()..).unwrap_or_default() {
            "" if tls => 443,
            "" => 80,
            rest => match rest.strip_prefix(':').map(str::parse::<u16>) {
                Some(Ok(port)) if port > 0 => port,
                _ => return Err(format!("port {rest:?} is not a port")),
            },
        };
        let host = host.to_ascii_lowercase();
        Ok(Origin { tls, host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_granted_by_default() {
        assert!(Grants::default().is_empty());
        assert_eq!(Grants::none().validated().ok(), Some(Grants::none()));
    }

    #[test]
    fn entries_are_normalised_to_scheme_host_and_port() {
        let http = HttpGrant::allow([
            "http://LocalHost",
            "https://api.example.com/",
            "http://127.0.0.1:8080",
            "http://[::1]:81",
        ]);
        let grants = Grants::none().http(http).validated().expect("valid");
        let allow = grants.http.expect("granted").allow;
        assert_eq!(
            allow,
            [
                "http://localhost:80",
                "https://api.example.com:443",
                "http://127.0.0.1:8080",
                "http://[::1]:81",
            ]
        );
    }

    #[test]
    fn malformed_entries_are_refused_naming_the_entry() {
        for entry in [
            "localhost:80",
            "ftp://x",
            "http://",
            "http://x:0",
            "http://x:",
            "http://x:99999",
            "http://u:p@x",
            "http://x/path",
            "http://x?q",
        ] {
            let error = Grants::none()
                .http(HttpGrant::allow([entry]))
                .validated()
                .expect_err(entry);
            assert!(
                matches!(&error, GrantError::HttpEntry { entry: e, .. } if e == entry),
                "{entry}: {error}"
            );
        }
    }

    #[test]
    fn zero_limits_are_refused() {
        let zero_time = HttpGrant::allow(["http://x"]).with_timeout(Duration::ZERO);
        let zero_size = HttpGrant::allow(["http://x"]).with_max_response_bytes(0);
        for http in [zero_time, zero_size] {
            let error = Grants::none().http(http).validated().expect_err("zero");
            assert!(matches!(error, GrantError::HttpLimit(_)), "{error}");
        }
    }

    #[test]
    fn directories_must_exist_and_are_canonicalised() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("a"))?;
        let roundabout = dir.path().join("a").join("..").join("a");
        let grants = Grants::none()
            .dir(&roundabout, "/a", DirMode::ReadOnly)
            .validated()
            .expect("valid");
        assert_eq!(grants.dirs[0].host, dir.path().join("a").canonicalize()?);

        let missing = Grants::none().dir(dir.path().join("nope"), "/n", DirMode::ReadOnly);
        let error = missing.validated().expect_err("missing");
        assert!(matches!(error, GrantError::Directory { .. }), "{error}");
        std::fs::write(dir.path().join("file"), "x")?;
        let file = Grants::none().dir(dir.path().join("file"), "/f", DirMode::ReadOnly);
        let error = file.validated().expect_err("a file");
        assert!(error.to_string().contains("is not a directory"), "{error}");
        Ok(())
    }

    #[test]
    fn guest_paths_are_absolute_plain_and_unique() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        for (guest, reason) in [
            ("data", "absolute"),
            ("/data/../etc", "`..`"),
            ("/./data", "`.`"),
        ] {
            let grants = Grants::none().dir(dir.path(), guest, DirMode::ReadOnly);
            let error = grants.validated().expect_err(guest);
            assert!(error.to_string().contains(reason), "{guest}: {error}");
        }
        let twice = Grants::none().dir(dir.path(), "/d", DirMode::ReadOnly).dir(
            dir.path(),
            "/d/",
            DirMode::ReadWrite,
        );
        let error = twice.validated().expect_err("twice");
        assert!(error.to_string().contains("twice"), "{error}");
        Ok(())
    }

    #[test]
    fn environment_names_are_checked() {
        for name in ["", "A=B", "A\0"] {
            let error = Grants::none().env(name).validated().expect_err(name);
            assert!(matches!(error, GrantError::EnvName { .. }), "{error}");
        }
        let twice = Grants::none().env("A").env_value("A", "1");
        assert!(twice.validated().is_err());
    }

    #[test]
    fn grants_read_from_json_in_the_documented_shape() {
        let json = r#"{
            "dirs": [{ "host": "/srv/in", "guest": "/in", "mode": "read-write" },
                     { "host": "/srv/ro", "guest": "/ro" }],
            "env": [{ "name": "API_TOKEN" }, { "name": "REGION", "value": "eu" }],
            "http": { "allow": ["https://api.example.com"] }
        }"#;
        let grants: Grants = serde_json::from_str(json).expect("parses");
        let expected = Grants::none()
            .dir("/srv/in", "/in", DirMode::ReadWrite)
            .dir("/srv/ro", "/ro", DirMode::ReadOnly)
            .env("API_TOKEN")
            .env_value("REGION", "eu")
            .http(HttpGrant::allow(["https://api.example.com"]));
        assert_eq!(grants, expected);
        let back: Grants =
            serde_json::from_str(&serde_json::to_string(&grants).expect("writes")).expect("reads");
        assert_eq!(back, grants);
        assert!(serde_json::from_str::<Grants>(r#"{"sockets": true}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Grants::none()).ok().as_deref(),
            Some("{}")
        );
    }
}
