//! The host side of an activity's outbound `wasi:http`: every request is
//! checked against the component's allowlist before any connection is made,
//! and a granted one is bounded by the grant's timeout and response size.
//! The host sends each request as it is and follows no redirect, so every
//! hop a guest makes is checked on its own.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::grants::{HttpGrant, Origin};

/// Decides and bounds one activity sandbox's outbound requests. Without a
/// grant it refuses every request.
#[derive(Clone, Default)]
pub(crate) struct GrantedHttp(Option<Arc<Allowed>>);

/// A checked HTTP grant, ready for lookups.
struct Allowed {
    origins: HashSet<Origin>,
    timeout: Duration,
    max_response_bytes: u64,
}

impl GrantedHttp {
    /// The hooks for `grant`, whose entries were validated when the
    /// component was loaded (an entry that fails to parse allows nothing).
    pub(crate) fn new(grant: Option<&HttpGrant>) -> Self {
        Self(grant.map(|grant| {
            Arc::new(Allowed {
                origins: (grant.allow.iter())
                    .filter_map(|entry| Origin::parse_entry(entry).ok())
                    .collect(),
                timeout: Duration::from_millis(grant.timeout_ms),
                max_response_bytes: grant.max_response_bytes,
            })
        }))
    }
}

/// Whether a request to `uri` may be sent under `allowed`; `Err` says why
/// not, for the host's log (the guest sees `http-request-denied`).
fn check(allowed: Option<&Allowed>, uri: &http::Uri) -> Result<(), String> {
    let Some(allowed) = allowed else {
        return Err("the component has no HTTP grant".into());
    };
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let origin = Origin::from_authority(tls, authority)
        .map_err(|reason| format!("authority {authority:?} {reason}"))?;
    if allowed.origins.contains(&origin) {
        Ok(())
    } else {
        Err(format!("{origin} is not on the component's HTTP allowlist"))
    }
}

/// The tighter of the guest's timeout and the grant's.
fn tighter(guest: Option<Duration>, grant: Duration) -> Option<Duration> {
    Some(guest.map_or(grant, |guest| guest.min(grant)))
}

impl WasiHttpHooks for GrantedHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let allowed = self.0.clone();
        if let Err(reason) = check(allowed.as_deref(), request.uri()) {
            // The reason names the origin; the path and query may hold
            // secrets, so they stay out of the log.
            tracing::warn!("an activity's HTTP request was refused: {reason}");
            return Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)));
        }
        let Some(allowed) = allowed else {
            return Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)));
        };
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: tighter(options.connect_timeout, allowed.timeout),
            first_byte_timeout: tighter(options.first_byte_timeout, allowed.timeout),
            between_bytes_timeout: tighter(options.between_bytes_timeout, allowed.timeout),
        };
        let deadline = tokio::time::Instant::now() + allowed.timeout;
        let cap = allowed.max_response_bytes;
        Box::new(async move {
            let sent = wasmtime_wasi_http::default_send_request(request, Some(options));
            let (response, io) = match tokio::time::timeout_at(deadline, sent).await {
                Ok(sent) => sent?,
                Err(_) => return Err(HttpError::HttpResponseTimeout),
            };
            if declared_length(&response).is_some_and(|length| length > cap) {
                return Err(HttpError::HttpResponseBodySize(Some(cap)));
            }
            let response = response.map(|body| {
                Bounded {
                    inner: body.boxed_unsync(),
                    left: cap,
                    cap,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                }
                .boxed_unsync()
            });
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response, io))
        })
    }
}

/// The body length a response declares, if any.
fn declared_length<B>(response: &http::Response<B>) -> Option<u64> {
    let value = response.headers().get(http::header::CONTENT_LENGTH)?;
    value.to_str().ok()?.parse().ok()
}

/// A response body that ends in an error once it passes `cap` bytes or
/// its request's deadline.
struct Bounded<B> {
    inner: B,
    left: u64,
    cap: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Body for Bounded<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.left {
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.cap)))));
            }
            self.left -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> GrantedHttp {
        GrantedHttp::new(Some(&HttpGrant::allow(entries.iter().copied())))
    }

    fn verdict(hooks: &GrantedHttp, uri: &str) -> Result<(), String> {
        let uri: http::Uri = uri.parse().map_err(|e| format!("{e}"))?;
        check(hooks.0.as_deref(), &uri)
    }

    #[test]
    fn only_the_exact_origin_is_allowed() {
        let hooks = allowed(&["http://127.0.0.1:8080", "https://api.example.com"]);
        for ok in [
            "http://127.0.0.1:8080/x?y",
            "https://api.example.com/v1",
            "https://API.example.com:443/",
        ] {
            assert_eq!(verdict(&hooks, ok), Ok(()), "{ok}");
        }
        for refused in [
            // Another name for the same address, or the same name elsewhere.
            "http://localhost:8080/",
            "http://127.0.0.1:8081/",
            "http://127.1:8080/",
            "http://2130706433:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            // The same host over another scheme or port.
            "http://api.example.com/",
            "https://api.example.com:8443/",
            "https://api.example.com.evil.test/",
            "https://api.example.com./",
            "https://user@api.example.com/",
        ] {
            assert!(verdict(&hooks, refused).is_err(), "{refused} was allowed");
        }
    }

    #[test]
    fn without_a_grant_every_request_is_refused() {
        let error = verdict(&GrantedHttp::new(None), "http://127.0.0.1/").expect_err("refused");
        assert!(error.contains("no HTTP grant"), "{error}");
        let error = verdict(&allowed(&[]), "http://127.0.0.1/").expect_err("refused");
        assert!(
            error.contains("not on the component's HTTP allowlist"),
            "{error}"
        );
    }

    #[test]
    fn the_grant_tightens_the_guests_timeouts() {
        let grant = Duration::from_secs(2);
        assert_eq!(tighter(None, grant), Some(grant));
        assert_eq!(tighter(Some(Duration::from_secs(60)), grant), Some(grant));
        let short = Duration::from_millis(5);
        assert_eq!(tighter(Some(short), grant), Some(short));
    }
}
