//! Applying a reload (`POST /reload`, `pidzero reload`): both files read and
//! validated again, exactly as at startup, then the difference applied.
//!
//! Order, so that a reload either happens as a whole or not at all:
//! 1. refused during a shutdown (409);
//! 2. the files are loaded by the [`Loader`] the command line gave (the
//!    startup's own functions): any error → 422 with every error, a
//!    `reload_failed` event, nothing changed;
//! 3. a new API listener (changed `api.listen` or socket) is bound first:
//!    if that fails, the reload fails the same way and nothing changed;
//! 4. then the supervisor takes the new plan ([`crate::supervisor::reload`]),
//!    the runtime's per-daemon tables follow its indices, the new listeners
//!    replace the old ones, the token changes for the next request, and the
//!    log writer takes the new log settings (and reopens the file).
//!
//! The answer waits for the log writer's word on the file (at most
//! [`LOG_ANSWER_WAIT`]) on a task of its own: the loop never waits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Runtime;
use crate::api::{ApiServer, ControlReply, ReloadAnswer};
use crate::config::LogSettings;
use crate::log::record::{timestamp_now, EventRecord, FieldValue, Level};
use crate::log::Reopened;
use crate::plan::diff::{self, Current};
use crate::plan::Plan;
use crate::supervisor::{Action, ReloadSet};

/// How long a reload's answer waits for the log writer to say whether it
/// opened the log file (a blocked sink must not hold the answer back).
pub const LOG_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Where the control API listens and the token it asks for, as the
/// command line and `config.json` resolve them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiTargets {
    pub socket: Option<PathBuf>,
    pub tcp: Option<SocketAddr>,
    pub token: Option<String>,
}

/// Everything a reload reads from the files.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub log: LogSettings,
    pub api: ApiTargets,
    pub shutdown_timeout: Duration,
}

/// Reads and validates both files as at startup; every error is one line
/// (`file:line:col: daemon X: field Y: message`).
pub type Loader = Box<dyn Fn() -> Result<Loaded, Vec<String>>>;

/// What the runtime needs to reload: the loader and what is in force now.
pub struct Reloading {
    pub loader: Loader,
    pub api: ApiTargets,
    pub log: LogSettings,
}

impl Runtime {
    /// Handles one reload request; returns the supervisor's actions.
    pub(super) async fn reload(
        &mut self,
        reply: oneshot::Sender<ControlReply>,
        server: &mut Option<ApiServer>,
    ) -> Vec<Action> {
        if self.supervisor.is_shutting_down() {
            let _ = reply.send(ControlReply::Conflict("pidzero is shutting down".into()));
            return Vec::new();
        }
        let Some(reloading) = &self.reloading else {
            let _ = reply.send(ControlReply::Conflict("this pidzero cannot reload".into()));
            return Vec::new();
        };
        let loaded = match (reloading.loader)() {
            Ok(loaded) => loaded,
            Err(errors) => return self.reload_failed(reply, errors),
        };
        let socket = changed(&reloading.api.socket, &loaded.api.socket);
        let tcp = changed(&reloading.api.tcp, &loaded.api.tcp);
        let bound = match (server.as_ref(), socket.is_some() || tcp.is_some()) {
            (Some(_), true) => match ApiServer::bind(socket, tcp).await {
                Ok(bound) => Some(bound),
                Err(e) => {
                    let error = format!("cannot start the control API: {e}");
                    return self.reload_failed(reply, vec![error]);
                }
            },
            _ => None,
        };
        let Loaded {
            plan,
            log,
            api,
            shutdown_timeout,
        } = loaded;
        let mut warnings = Vec::new();
        if server.is_none() && (api.socket != reloading.api.socket || api.tcp != reloading.api.tcp)
        {
            warnings.push("the control API is off: its new listeners wait for a restart".into());
        }
        let set = self.reload_set(&plan);
        let (reloaded, actions) = match self.supervisor.reload(set, self.now()) {
            Ok(done) => done,
            Err(why) => {
                let _ = reply.send(ControlReply::Conflict(why));
                return Vec::new();
            }
        };
        for (j, daemon) in plan.daemons.into_iter().enumerate() {
            let i = reloaded.indices[j];
            if i < self.launches.len() {
                self.launches[i] = daemon.launch;
            } else {
                self.launches.push(daemon.launch);
                self.sources.push(Arc::from(daemon.rules.name.as_str()));
                self.flushers.push(Vec::new());
                self.opening.push(Vec::new());
                self.notify_readers.push(None);
            }
        }
        if let Some(server) = server.as_mut() {
            if let Some(bound) = bound {
                server.serve(bound);
            }
            server.set_token(api.token.clone());
        }
        if let Some(exit) = self.log_exit.as_mut() {
            exit.shutdown_timeout = shutdown_timeout;
        }
        let opened = self.log.apply(&log);
        if let Some(reloading) = self.reloading.as_mut() {
            reloading.api = api;
            reloading.log = log;
        }
        let s = reloaded.summary;
        let answer = ReloadAnswer {
            started: s.started,
            stopped: s.stopped,
            restarted: s.restarted,
            kept: s.kept,
            updated: s.updated,
            warnings,
        };
        tokio::spawn(answer_after_log(answer, opened, reply));
        actions
    }

    /// The running set as the diff sees it (retired daemons are not in it).
    fn reload_set(&self, plan: &Plan) -> ReloadSet {
        let daemons = self.supervisor.daemons();
        let deps: Vec<Vec<String>> = daemons
            .iter()
            .map(|d| {
                d.rules
                    .depends_on
                    .iter()
                    .map(|&i| daemons[i].rules.name.clone())
                    .collect()
            })
            .collect();
        let current: Vec<Current<'_>> = daemons
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.retired)
            .map(|(index, d)| Current {
                index,
                rules: &d.rules,
                launch: &self.launches[index],
                depends_on: &deps[index],
            })
            .collect();
        ReloadSet {
            rules: plan.daemons.iter().map(|d| d.rules.clone()).collect(),
            start_order: plan.start_order.clone(),
            diff: diff::diff(&current, plan),
        }
    }

    /// Nothing changes: an event lists the errors, the answer carries them.
    fn reload_failed(
        &mut self,
        reply: oneshot::Sender<ControlReply>,
        errors: Vec<String>,
    ) -> Vec<Action> {
        let count = i64::try_from(errors.len()).unwrap_or(i64::MAX);
        let record = EventRecord {
            timestamp: timestamp_now(),
            level: Level::Error,
            event: "reload_failed",
            fields: vec![("errors", FieldValue::Int(count))],
            line: format!("reload refused, nothing changed: {}", errors.join("; ")),
        };
        let log = &self.log;
        self.outbox.record(record, |record| log.event(record));
        let _ = reply.send(ControlReply::Invalid(errors));
        Vec::new()
    }
}

/// `Some(new)` when it differs from `now`: what [`ApiServer::bind`] takes.
fn changed<T: PartialEq + Clone>(now: &Option<T>, new: &Option<T>) -> Option<Option<T>> {
    (now != new).then(|| new.clone())
}

/// Answers once the log writer said what it did with the file (or after
/// [`LOG_ANSWER_WAIT`]); a file it could not open is a warning: the reload
/// happened, records keep going to the file open before.
async fn answer_after_log(
    mut answer: ReloadAnswer,
    opened: oneshot::Receiver<Reopened>,
    reply: oneshot::Sender<ControlReply>,
) {
    match tokio::time::timeout(LOG_ANSWER_WAIT, opened).await {
        Ok(Ok(Reopened::Failed { path, error })) => answer.warnings.push(format!(
            "cannot open the log file {}: {error}; records go to the file open before",
            path.display()
        )),
        Ok(Ok(_)) => {}
        Ok(Err(_)) => answer
            .warnings
            .push("the log writer has stopped".to_string()),
        Err(_) => answer.warnings.push(
            "the log writer did not answer in time (a log sink is blocked); \
             it takes the new settings once it can"
                .to_string(),
        ),
    }
    let _ = reply.send(ControlReply::Reloaded(answer));
}
