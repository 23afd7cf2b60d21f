//! The routes of SPEC §8: one request in, one response out.
//!
//! Order of checks: body too large by its Content-Length (413), then authorisation
//! (401/403), then the route (404/405), then the body and parameters (400, 408, 413),
//! then the work. Errors are `{"error": "message"}`.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::auth::{self, Refusal, Transport};
use super::metrics;
use super::model::{ControlCommand, ControlReply, ControlRequest, DaemonInfo};
use super::state::{Shared, MAX_BODY_BYTES};
use crate::config::signal::parse_signal;
use crate::log::Reopened;

pub type Body = Full<Bytes>;

/// `lines=` when not given, and its upper bound (the size of the in-memory ring).
pub const DEFAULT_LOG_LINES: usize = 100;
pub const MAX_LOG_LINES: usize = 1000;

/// The routes, with the methods each one allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route<'a> {
    Health,
    Daemons,
    Daemon(&'a str),
    Action(&'a str, Action),
    Logs(&'a str),
    ReopenLogs,
    Reload,
    Shutdown,
    Metrics,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
    Restart,
    Signal,
}

impl Route<'_> {
    fn parse(path: &str) -> Option<Route<'_>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let route = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
            ("health", None, None, None) => Route::Health,
            ("daemons", None, None, None) => Route::Daemons,
            ("daemons", Some(name), None, None) if !name.is_empty() => Route::Daemon(name),
            ("daemons", Some(name), Some(what), None) if !name.is_empty() => match what {
                "start" => Route::Action(name, Action::Start),
                "stop" => Route::Action(name, Action::Stop),
                "restart" => Route::Action(name, Action::Restart),
                "signal" => Route::Action(name, Action::Signal),
                "logs" => Route::Logs(name),
                _ => return None,
            },
            ("logs", Some("reopen"), None, None) => Route::ReopenLogs,
            ("reload", None, None, None) => Route::Reload,
            ("shutdown", None, None, None) => Route::Shutdown,
            ("metrics", None, None, None) => Route::Metrics,
            ("version", None, None, None) => Route::Version,
            _ => return None,
        };
        Some(route)
    }

    fn method(&self) -> Method {
        match self {
            Route::Action(..) | Route::Shutdown | Route::ReopenLogs | Route::Reload => Method::POST,
            _ => Method::GET,
        }
    }

    /// The `Allow` header of a 405.
    fn allow(&self) -> &'static str {
        match self {
            Route::Action(..) | Route::Shutdown | Route::ReopenLogs | Route::Reload => "POST",
            _ => "GET",
        }
    }
}

pub(crate) async fn handle(
    req: Request<Incoming>,
    transport: Transport,
    shared: &Shared,
    deadline: Instant,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let response = answer(parts, &mut body, transport, shared, deadline).await;
    // An answer given before the body was read (404, 401, 403, 405, 413) ends the
    // connection: what follows on it is the rest of that body, not a request. The
    // connection closes gracefully, so the answer still arrives.
    match body {
        Some(unread) if !unread.is_end_stream() => closing(response),
        _ => response,
    }
}

/// The answer to one request; takes the body out of `body` when it reads it.
async fn answer(
    parts: hyper::http::request::Parts,
    body: &mut Option<Incoming>,
    transport: Transport,
    shared: &Shared,
    deadline: Instant,
) -> Response<Body> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return closing(too_large());
    }
    let path = parts.uri.path();
    let token = shared.token();
    if let Err(refusal) = auth::check(
        transport,
        &parts.method,
        path,
        &parts.headers,
        token.as_deref(),
    ) {
        return refused(refusal);
    }
    let Some(route) = Route::parse(path) else {
        return error(StatusCode::NOT_FOUND, format!("no route {path}"));
    };
    let allowed = route.method();
    if parts.method != allowed {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} allows only {allowed}"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(route.allow()));
        return response;
    }
    let query = parts.uri.query();
    match route {
        Route::Health => health(shared),
        Route::Daemons => {
            let now = SystemTime::now();
            let daemons: Vec<DaemonInfo> = {
                let snapshot = shared.ctx.snapshot.borrow();
                snapshot
                    .daemons
                    .iter()
                    .map(|d| d.with_uptime_at(now))
                    .collect()
            };
            json_response(StatusCode::OK, &daemons)
        }
        Route::Daemon(name) => {
            let now = SystemTime::now();
            let daemon = shared
                .ctx
                .snapshot
                .borrow()
                .daemon(name)
                .map(|d| d.with_uptime_at(now));
            match daemon {
                Some(d) => json_response(StatusCode::OK, &d),
                None => no_daemon(name),
            }
        }
        Route::Logs(name) => logs(shared, name, query),
        Route::Action(name, action) => {
            if shared.ctx.snapshot.borrow().daemon(name).is_none() {
                return no_daemon(name);
            }
            let name = name.to_owned();
            let command = match action {
                Action::Start => ControlCommand::Start(name),
                Action::Stop => ControlCommand::Stop(name),
                Action::Restart => ControlCommand::Restart(name),
                Action::Signal => {
                    let Some(body) = body.take() else {
                        return error(StatusCode::BAD_REQUEST, "no request body".into());
                    };
                    let body = match read_body(body, deadline).await {
                        Ok(body) => body,
                        Err(response) => return response,
                    };
                    match signal_from(&body) {
                        Ok(signal) => ControlCommand::Signal(name, signal),
                        Err(message) => return error(StatusCode::BAD_REQUEST, message),
                    }
                }
            };
            control(shared, command).await
        }
        Route::Shutdown => control(shared, ControlCommand::Shutdown).await,
        Route::Reload => control(shared, ControlCommand::Reload).await,
        Route::ReopenLogs => reopen_logs(shared).await,
        Route::Metrics => {
            let text = {
                let mut sinks = shared.ctx.logs.local_sinks();
                sinks.extend(shared.ctx.logs.net_sinks());
                let snapshot = shared.ctx.snapshot.borrow();
                metrics::render(&snapshot, &shared.ctx.logs.counters(), &sinks)
            };
            let mut response = Response::new(Body::from(text));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            response
        }
        Route::Version => json_response(
            StatusCode::OK,
            &json!({"version": env!("CARGO_PKG_VERSION")}),
        ),
    }
}

fn health(shared: &Shared) -> Response<Body> {
    let (healthy, failing, shutting_down) = {
        let snapshot = shared.ctx.snapshot.borrow();
        let (healthy, failing) = snapshot.health();
        (healthy, failing, snapshot.shutting_down)
    };
    if healthy {
        json_response(StatusCode::OK, &json!({"status": "healthy"}))
    } else {
        let mut body = json!({"status": "unhealthy", "failing": failing});
        if shutting_down {
            body["shutting_down"] = true.into();
        }
        json_response(StatusCode::SERVICE_UNAVAILABLE, &body)
    }
}

fn logs(shared: &Shared, name: &str, query: Option<&str>) -> Response<Body> {
    let lines = match log_lines(query) {
        Ok(n) => n,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if shared.ctx.snapshot.borrow().daemon(name).is_none() {
        return no_daemon(name);
    }
    let records = shared.ctx.logs.recent(name, lines);
    // The records are JSON already; a record that is not (which would be a bug in the
    // log source) is passed as a string rather than breaking the array.
    let mut out = String::with_capacity(2 + records.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push('[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match serde_json::from_str::<&RawValue>(record) {
            Ok(raw) => out.push_str(raw.get()),
            Err(_) => out.push_str(&serde_json::to_string(record).unwrap_or_default()),
        }
    }
    out.push_str("]\n");
    with_json_type(Response::new(Body::from(out)))
}

/// `POST /logs/reopen`: the log writer closes the log file and opens its
/// path again, between two rounds of writes (so no record is lost or torn),
/// for an outside logrotate that renamed the file away.
///
/// 200 `{"reopened":["file"],"path":…}`; 409 when there is no file sink
/// (`log.log_to_file` is false); 500 when the path cannot be opened again
/// (the sink retries with the next records); 503 when the writer does not
/// answer within the control timeout (a sink is blocked) or has stopped.
/// Only this request waits: the control loop never does.
async fn reopen_logs(shared: &Shared) -> Response<Body> {
    let unavailable = |why: &str| error(StatusCode::SERVICE_UNAVAILABLE, why.to_owned());
    let Some(answer) = shared.ctx.logs.reopen() else {
        return unavailable("no log writer to reopen");
    };
    match tokio::time::timeout(shared.limits.control_timeout, answer).await {
        Ok(Ok(Reopened::File(path))) => json_response(
            StatusCode::OK,
            &json!({"reopened": ["file"], "path": path.to_string_lossy()}),
        ),
        Ok(Ok(Reopened::NoFile)) => error(
            StatusCode::CONFLICT,
            "no log file to reopen: log.log_to_file is false".into(),
        ),
        Ok(Ok(Reopened::Failed { path, error: why })) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({
                "error": format!("cannot reopen {}: {why}; retrying with the next records", path.display()),
                "path": path.to_string_lossy(),
            }),
        ),
        Ok(Err(_)) => unavailable("the log writer has stopped"),
        Err(_) => unavailable("the log writer did not answer in time (a log sink is blocked)"),
    }
}

/// `lines=N` from the query: 0 to 1000 (larger numbers mean all that is kept),
/// default 100; anything but digits is a 400.
fn log_lines(query: Option<&str>) -> Result<usize, String> {
    let Some(value) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("lines="))
    else {
        return Ok(DEFAULT_LOG_LINES);
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "lines must be a number from 0 to {MAX_LOG_LINES}, not {value:?}"
        ));
    }
    Ok(value
        .parse::<usize>()
        .unwrap_or(usize::MAX)
        .min(MAX_LOG_LINES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    signal: SignalValue,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SignalValue {
    Name(String),
    Number(i64),
}

/// `{"signal": "HUP"}` (or `"SIGHUP"`, `"hup"`, `1`, `"1"`) → the signal number.
fn signal_from(body: &[u8]) -> Result<i32, String> {
    let parsed: SignalBody = serde_json::from_slice(body)
        .map_err(|e| format!("expected a body like {{\"signal\":\"HUP\"}}: {e}"))?;
    let signal = match parsed.signal {
        SignalValue::Name(name) => parse_signal(&name),
        SignalValue::Number(n) => parse_signal(&n.to_string()),
    };
    signal.ok_or_else(|| "unknown signal; use a name such as HUP or a number 1 to 64".into())
}

/// Reads the whole body, at most 64 KiB, by the request's deadline.
async fn read_body(body: Incoming, deadline: Instant) -> Result<Bytes, Response<Body>> {
    let collect = Limited::new(body, MAX_BODY_BYTES).collect();
    match tokio::time::timeout_at(deadline, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(closing(too_large())),
        Ok(Err(_)) => Err(closing(error(
            StatusCode::BAD_REQUEST,
            "malformed request body".into(),
        ))),
        Err(_) => Err(closing(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time".into(),
        ))),
    }
}

/// Sends a command to the runtime and waits for its answer, both within the
/// control timeout.
async fn control(shared: &Shared, command: ControlCommand) -> Response<Body> {
    let deadline = Instant::now() + shared.limits.control_timeout;
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest { command, reply };
    let unavailable = |message: &str| error(StatusCode::SERVICE_UNAVAILABLE, message.into());
    match tokio::time::timeout_at(deadline, shared.ctx.control.send(request)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return unavailable("pidzero no longer takes commands"),
        Err(_) => return unavailable("pidzero is busy; try again"),
    }
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(ControlReply::Accepted { state })) => {
            json_response(StatusCode::ACCEPTED, &json!({"state": state}))
        }
        Ok(Ok(ControlReply::NotFound)) => error(StatusCode::NOT_FOUND, "no such daemon".into()),
        Ok(Ok(ControlReply::Conflict(message))) => error(StatusCode::CONFLICT, message),
        Ok(Ok(ControlReply::Reloaded(answer))) => json_response(StatusCode::OK, &answer),
        Ok(Ok(ControlReply::Invalid(errors))) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "error": "the configuration is invalid; nothing was changed",
                "errors": errors,
            }),
        ),
        Ok(Err(_)) => unavailable("pidzero dropped the command"),
        Err(_) => unavailable("pidzero did not answer in time"),
    }
}

fn no_daemon(name: &str) -> Response<Body> {
    error(StatusCode::NOT_FOUND, format!("no daemon named {name:?}"))
}

fn too_large() -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn refused(refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::Unauthorized => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "this request needs the API token (Authorization: Bearer TOKEN)".into(),
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Refusal::Forbidden => error(
            StatusCode::FORBIDDEN,
            "without api.token the TCP listener serves only GET requests".into(),
        ),
    }
}

/// Asks hyper to close the connection after this response (its request body may be
/// left unread; the connection then closes gracefully, see `super::connection`).
fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn error(status: StatusCode, message: String) -> Response<Body> {
    json_response(status, &json!({"error": message}))
}

fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    bytes.push(b'\n');
    let mut response = with_json_type(Response::new(Body::from(bytes)));
    *response.status_mut() = status;
    response
}

fn with_json_type(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        assert_eq!(Route::parse("/health"), Some(Route::Health));
        assert_eq!(Route::parse("/daemons"), Some(Route::Daemons));
        assert_eq!(Route::parse("/daemons/web"), Some(Route::Daemon("web")));
        assert_eq!(
            Route::parse("/daemons/web/signal"),
            Some(Route::Action("web", Action::Signal))
        );
        assert_eq!(Route::parse("/daemons/web/logs"), Some(Route::Logs("web")));
        assert_eq!(Route::parse("/shutdown"), Some(Route::Shutdown));
        assert_eq!(Route::parse("/reload"), Some(Route::Reload));
        assert_eq!(Route::Reload.method(), Method::POST);
        for bad in [
            "",
            "/",
            "/daemons/",
            "/daemons//stop",
            "/daemons/web/kill",
            "/daemons/web/stop/x",
            "/health/",
            "/healthz",
            "health",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn log_lines_from_the_query() {
        assert_eq!(log_lines(None), Ok(100));
        assert_eq!(log_lines(Some("x=1")), Ok(100));
        assert_eq!(log_lines(Some("lines=5")), Ok(5));
        assert_eq!(log_lines(Some("a=b&lines=0")), Ok(0));
        assert_eq!(log_lines(Some("lines=5000")), Ok(1000));
        assert_eq!(log_lines(Some("lines=99999999999999999999999")), Ok(1000));
        for bad in ["lines=", "lines=-1", "lines=ten", "lines=1.5", "lines=+3"] {
            assert!(log_lines(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn signal_bodies() {
        assert_eq!(signal_from(br#"{"signal":"HUP"}"#), Ok(libc::SIGHUP));
        assert_eq!(signal_from(br#"{"signal":"sigusr1"}"#), Ok(libc::SIGUSR1));
        assert_eq!(signal_from(br#"{"signal":15}"#), Ok(libc::SIGTERM));
        assert_eq!(signal_from(br#"{"signal":"9"}"#), Ok(libc::SIGKILL));
        for bad in [
            &br#"{"signal":"NOPE"}"#[..],
            br#"{"signal":0}"#,
            br#"{"signal":-1}"#,
            br#"{"signal":65}"#,
            br#"{"signal":"HUP","x":1}"#,
            br#"{}"#,
            b"HUP",
            b"",
        ] {
            assert!(
                signal_from(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
