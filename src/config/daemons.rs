//! `daemons.json`: an array of daemon objects, each checked field by field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};
use super::schedule::{find_zone, parse_schedule, Cadence, JobSpec, Overlap};
use super::signal::parse_signal;
use super::{
    CommandSpec, ConfigError, DaemonSpec, HealthProbe, HealthSpec, LineParse, OutputMode, Position,
    RestartPolicy, SinkKind, SinkSet,
};

/// Every field a daemon object may have.
pub(super) const FIELDS: &[&str] = &[
    "name",
    "command",
    "comments",
    "vital",
    "environment",
    "restart",
    "restart_delay",
    "max_restarts",
    "working_dir",
    "user",
    "stop_signal",
    "stop_timeout",
    "output",
    "depends_on",
    "health",
    "schedule",
    "ready",
    "ready_timeout",
    "watchdog",
    "timezone",
    "overlap",
    "parse",
    "sinks",
];

/// Names other tools use for our fields, so the hint points at the right one.
const ALIASES: &[(&str, &str)] = &[
    ("cmd", "command"),
    ("args", "command"),
    ("comment", "comments"),
    ("env", "environment"),
    ("cwd", "working_dir"),
    ("workdir", "working_dir"),
    ("depends", "depends_on"),
    ("healthcheck", "health"),
    ("restart_policy", "restart"),
    ("cron", "schedule"),
    ("tz", "timezone"),
    ("readiness", "ready"),
    ("notify", "ready"),
    ("start_timeout", "ready_timeout"),
];

pub(super) const HEALTH_FIELDS: &[&str] = &[
    "command",
    "http",
    "tcp",
    "interval",
    "timeout",
    "retries",
    "start_period",
];

/// Names used by pidzero itself: its own log records (`pidzero`) and the main command (`main`).
const RESERVED_NAMES: &[&str] = &["pidzero", "main"];

const MAX_NAME_LEN: usize = 64;

const RESTART_CHOICES: &[(&str, RestartPolicy)] = &[
    ("never", RestartPolicy::Never),
    ("on-failure", RestartPolicy::OnFailure),
    ("always", RestartPolicy::Always),
];

const OUTPUT_CHOICES: &[(&str, OutputMode)] = &[
    ("log", OutputMode::Log),
    ("inherit", OutputMode::Inherit),
    ("discard", OutputMode::Discard),
];

const PARSE_CHOICES: &[(&str, LineParse)] = &[("text", LineParse::Text), ("json", LineParse::Json)];

/// Parses `daemons.json`. `allow_empty` is for a main command, which needs no sidecars.
pub(crate) fn parse(
    file: &Path,
    text: &str,
    allow_empty: bool,
) -> Result<Vec<DaemonSpec>, Vec<ConfigError>> {
    let (specs, errors) = parse_all(file, text, allow_empty);
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// Parses `daemons.json` as far as it can: the daemons that have no problem
/// of their own (their `depends_on` may still name one that has), and every
/// problem found, in file order.
pub(crate) fn parse_all(
    file: &Path,
    text: &str,
    allow_empty: bool,
) -> (Vec<DaemonSpec>, Vec<ConfigError>) {
    let mut report = Report::new(file, text);
    let Some(doc) = report.document() else {
        return (Vec::new(), report.errors);
    };
    if Kind::of(doc) != Kind::Array {
        let message = format!(
            "expected an array of daemon objects, found {}",
            Kind::of(doc)
        );
        report.error(report.src.position(doc), None, message);
        return (Vec::new(), report.errors);
    }
    let items = json::array(&mut report, doc, "daemons").unwrap_or_default();
    if items.is_empty() && !allow_empty {
        let message = "no daemons: the array is empty; list at least one daemon, or give a command after `--`";
        report.error(report.src.position(doc), None, message);
    }
    let drafts: Vec<Draft> = items
        .iter()
        .enumerate()
        .map(|(index, raw)| read_daemon(&mut report, index, raw))
        .collect();
    check_names(&mut report, &drafts);
    check_dependencies(&mut report, &drafts);
    super::sort_by_position(&mut report.errors);
    let specs = drafts.into_iter().filter_map(|draft| draft.spec).collect();
    (specs, report.errors)
}

/// One daemon as read: the spec when it had no problems, plus what the checks across
/// daemons need even when it had some (its name and its dependencies, with positions).
struct Draft {
    label: String,
    name: Option<(String, Position)>,
    depends_on: Vec<(String, Position)>,
    spec: Option<DaemonSpec>,
    /// It has a `schedule`: no daemon may depend on it.
    is_job: bool,
}

/// How errors name a daemon: its name when valid, else `#N` (1-based).
fn label(members: &[json::Member], index: usize) -> String {
    members
        .iter()
        .find(|member| member.key == "name")
        .and_then(|member| serde_json::from_str::<String>(member.value.get()).ok())
        .filter(|name| name_problem(name).is_none())
        .unwrap_or_else(|| format!("#{}", index + 1))
}

/// Reads one element of the array, reporting each of its problems.
fn read_daemon(report: &mut Report, index: usize, raw: &RawValue) -> Draft {
    let errors_before = report.count();
    let position = report.src.position(raw);
    let mut draft = Draft {
        label: format!("#{}", index + 1),
        name: None,
        depends_on: Vec::new(),
        spec: None,
        is_job: false,
    };
    report.daemon = Some(draft.label.clone());
    if Kind::of(raw) != Kind::Object {
        report.error(
            position,
            None,
            format!("expected a daemon object, found {}", Kind::of(raw)),
        );
        return draft;
    }
    let members = json::members(report, raw, None);
    draft.label = label(&members, index);
    report.daemon = Some(draft.label.clone());
    let fields = json::fields(report, members, FIELDS, ALIASES, "");
    draft.is_job = fields.get("schedule").is_some();
    let name = required(report, &fields, "name", position).and_then(|raw| read_name(report, raw));
    let command =
        required(report, &fields, "command", position).and_then(|raw| read_command(report, raw));
    draft.name = name
        .clone()
        .zip(fields.get("name").map(|raw| report.src.position(raw)));
    draft.depends_on = fields
        .get("depends_on")
        .and_then(|raw| read_depends_on(report, raw))
        .unwrap_or_default();
    let spec = read_optional_fields(
        report,
        &fields,
        name,
        command,
        draft.depends_on.clone(),
        position,
    );
    // A daemon with a problem of its own yields no spec, even when every
    // required field was usable: later stages would only repeat the problem.
    draft.spec = spec.filter(|_| report.count() == errors_before);
    draft
}

/// The value of a required field, or a "missing" error at the daemon object.
fn required<'a>(
    report: &mut Report,
    fields: &Fields<'a>,
    field: &str,
    position: Position,
) -> Option<&'a RawValue> {
    let raw = fields.get(field);
    if raw.is_none() {
        report.error(
            position,
            Some(field),
            format!("missing required field `{field}`"),
        );
    }
    raw
}

/// Reads every optional field (each reporting its own problems) and assembles the spec
/// when the required ones were usable.
fn read_optional_fields(
    report: &mut Report,
    fields: &Fields,
    name: Option<String>,
    command: Option<CommandSpec>,
    depends_on: Vec<(String, Position)>,
    position: Position,
) -> Option<DaemonSpec> {
    if let Some(raw) = fields.get("comments") {
        json::string(report, raw, "comments");
    }
    let vital = fields
        .get("vital")
        .and_then(|raw| json::boolean(report, raw, "vital"));
    let restart = fields
        .get("restart")
        .and_then(|raw| read_restart(report, raw, vital == Some(true)));
    // Every field is read before any `?` below, so that all of them report their problems.
    let environment = fields
        .get("environment")
        .and_then(|raw| read_environment(report, raw));
    let restart_delay = fields
        .get("restart_delay")
        .and_then(|raw| json::seconds(report, raw, "restart_delay"));
    let max_restarts = fields
        .get("max_restarts")
        .and_then(|raw| json::integer(report, raw, "max_restarts", u32::MAX.into()))
        .and_then(|n| u32::try_from(n).ok());
    let working_dir = fields
        .get("working_dir")
        .and_then(|raw| json::non_empty_string(report, raw, "working_dir"));
    let user = fields.get("user").and_then(|raw| read_user(report, raw));
    let stop_signal = fields
        .get("stop_signal")
        .and_then(|raw| read_signal(report, raw, "stop_signal"));
    let stop_timeout = fields
        .get("stop_timeout")
        .and_then(|raw| json::seconds(report, raw, "stop_timeout"));
    let output = fields
        .get("output")
        .and_then(|raw| json::choice(report, raw, "output", OUTPUT_CHOICES));
    let health = fields
        .get("health")
        .and_then(|raw| read_health(report, raw));
    let job = read_job(report, fields);
    let ready = super::ready::read(report, fields, fields.get("health").is_some());
    let parse = fields
        .get("parse")
        .and_then(|raw| json::choice(report, raw, "parse", PARSE_CHOICES));
    let sinks = fields.get("sinks").map(|raw| read_sinks(report, raw));
    let field_positions = fields
        .found
        .iter()
        .map(|&(field, raw)| (field, report.src.position(raw)))
        .collect();
    Some(DaemonSpec {
        name: name?,
        command: command?,
        vital: vital.unwrap_or(false),
        environment: environment.unwrap_or_default(),
        restart: restart.unwrap_or_default(),
        restart_delay: restart_delay.unwrap_or(Duration::from_secs(1)),
        max_restarts,
        working_dir: working_dir.map(PathBuf::from),
        user,
        stop_signal: stop_signal.unwrap_or(libc::SIGTERM),
        stop_timeout,
        output: output.unwrap_or_default(),
        depends_on: depends_on.into_iter().map(|(name, _)| name).collect(),
        health,
        job,
        ready: ready.ready,
        ready_timeout: ready.ready_timeout,
        watchdog: ready.watchdog,
        parse: parse.unwrap_or_default(),
        sinks: match sinks {
            Some(set) => Some(set?),
            None => None,
        },
        position,
        field_positions,
    })
}

/// Fields that make no sense for a job: it runs on its schedule, not
/// restarted, and has no steady process to probe.
const NOT_FOR_JOBS: &[(&str, &str)] = &[
    (
        "restart",
        "a job is not restarted: it runs again when it is next due",
    ),
    (
        "restart_delay",
        "a job is not restarted: it runs again when it is next due",
    ),
    (
        "max_restarts",
        "a job is not restarted: it runs again when it is next due",
    ),
    (
        "health",
        "a job has no steady process to probe; its exit status is its health",
    ),
    (
        "ready",
        "a job runs to its end; nothing waits for it to be ready",
    ),
    (
        "ready_timeout",
        "a job runs to its end; nothing waits for it to be ready",
    ),
    ("watchdog", "a job runs to its end; it sends no keep-alives"),
];

/// `schedule`, `timezone` and `overlap`: the job, when `schedule` is there.
fn read_job(report: &mut Report, fields: &Fields) -> Option<JobSpec> {
    let overlap = fields
        .get("overlap")
        .and_then(|raw| json::choice(report, raw, "overlap", Overlap::CHOICES));
    let timezone = fields.get("timezone").and_then(|raw| {
        let name = json::non_empty_string(report, raw, "timezone")?;
        find_zone(&name)
            .map(|zone| (name, zone))
            .map_err(|e| report.at(raw, "timezone", e))
            .ok()
    });
    let Some(raw) = fields.get("schedule") else {
        for field in ["timezone", "overlap"] {
            if let Some(raw) = fields.get(field) {
                report.at(raw, field, "applies only to a job: add `schedule`");
            }
        }
        return None;
    };
    for &(field, why) in NOT_FOR_JOBS {
        if let Some(raw) = fields.get(field) {
            report.at(raw, field, format!("cannot be used with `schedule`: {why}"));
        }
    }
    let text = json::non_empty_string(report, raw, "schedule")?;
    let cadence = parse_schedule(&text)
        .map_err(|e| report.at(raw, "schedule", e))
        .ok()?;
    if matches!(cadence, Cadence::Every(_)) {
        if let Some(raw) = fields.get("timezone") {
            let why = "an `@every` interval does not depend on a time zone; remove it";
            report.at(raw, "timezone", why);
            return None;
        }
    }
    let (timezone, zone) = match timezone {
        Some(found) => found,
        None if fields.get("timezone").is_some() => return None,
        None => ("UTC".to_string(), jiff::tz::TimeZone::UTC),
    };
    let job = JobSpec {
        schedule: text.trim().to_string(),
        cadence,
        timezone,
        zone,
        overlap: overlap.unwrap_or_default(),
    };
    // A date that never comes (`0 0 31 2 *`) would leave the job waiting
    // forever with no word: refused here instead.
    if matches!(job.cadence, Cadence::Cron(_))
        && job.next_cron_after(jiff::Timestamp::now()).is_none()
    {
        let why = format!(
            "`{}` is never due (no such date); check the day and month fields",
            job.schedule
        );
        report.at(raw, "schedule", why);
        return None;
    }
    Some(job)
}

/// `sinks`: an array of handler names, each known (whether it is configured
/// is checked by `plan`, which has `config.json` too) and named once.
fn read_sinks(report: &mut Report, raw: &RawValue) -> Option<SinkSet> {
    let items = json::array(report, raw, "sinks")?;
    let mut set = SinkSet::NONE;
    let mut ok = true;
    for item in items {
        let Some(name) = json::string(report, item, "sinks") else {
            ok = false;
            continue;
        };
        match SinkKind::from_name(&name) {
            Some(kind) if set.contains(kind) => {
                report.at(item, "sinks", format!("`{name}` is listed twice"));
                ok = false;
            }
            Some(kind) => set = set.with(kind),
            None => {
                let known: Vec<&str> = SinkKind::ALL.iter().map(|k| k.name()).collect();
                report.at(
                    item,
                    "sinks",
                    format!(
                        "unknown sink `{name}`; expected one of {}",
                        known.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

/// Why `name` is not a valid daemon name, if it is not. Names appear in log records,
/// URLs and metrics labels, hence the small character set.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Some(format!("must be 1 to {MAX_NAME_LEN} characters long"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "invalid character {bad:?} in `{name}`; use only letters, digits, `.`, `_` and `-`"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Some(format!(
            "`{name}` is reserved for pidzero itself; choose another name"
        ));
    }
    None
}

fn read_name(report: &mut Report, raw: &RawValue) -> Option<String> {
    let name = json::string(report, raw, "name")?;
    match name_problem(&name) {
        Some(problem) => {
            report.at(raw, "name", problem);
            None
        }
        None => Some(name),
    }
}

/// A command line (split later by `plan`) or an argv array whose program is named.
fn read_command(report: &mut Report, raw: &RawValue) -> Option<CommandSpec> {
    if Kind::of(raw) == Kind::String {
        return json::non_empty_string(report, raw, "command").map(CommandSpec::Line);
    }
    if Kind::of(raw) != Kind::Array {
        let message = format!(
            "expected a string or an array of strings, found {}",
            Kind::of(raw)
        );
        report.at(raw, "command", message);
        return None;
    }
    let items = json::array(report, raw, "command")?;
    if items.is_empty() {
        report.at(
            raw,
            "command",
            "must not be an empty array; the first element is the program",
        );
        return None;
    }
    let argv: Vec<Option<String>> = items
        .iter()
        .map(|item| json::string(report, item, "command"))
        .collect();
    if argv[0].as_deref() == Some("") {
        report.at(
            items[0],
            "command",
            "the program (first element) must not be empty",
        );
        return None;
    }
    argv.into_iter()
        .collect::<Option<Vec<_>>>()
        .map(CommandSpec::Argv)
}

/// `restart`, refused on a vital daemon: a vital daemon's exit stops everything, so a
/// restart policy there would never apply and suggests a misunderstanding.
fn read_restart(report: &mut Report, raw: &RawValue, vital: bool) -> Option<RestartPolicy> {
    let policy = json::choice(report, raw, "restart", RESTART_CHOICES)?;
    if vital && policy != RestartPolicy::Never {
        let message = "a vital daemon is never restarted: its exit stops pidzero; remove `restart` or set `vital` to false";
        report.at(raw, "restart", message);
        return None;
    }
    Some(policy)
}

/// `environment` as `["KEY=value", ...]` or `{"KEY": "value", ...}`, in file order.
fn read_environment(report: &mut Report, raw: &RawValue) -> Option<Vec<(String, String)>> {
    match Kind::of(raw) {
        Kind::Array => read_environment_list(report, raw),
        Kind::Object => read_environment_map(report, raw),
        other => {
            let message =
                format!("expected an array of \"KEY=value\" strings or an object, found {other}");
            report.at(raw, "environment", message);
            None
        }
    }
}

fn read_environment_list(report: &mut Report, raw: &RawValue) -> Option<Vec<(String, String)>> {
    let items = json::array(report, raw, "environment")?;
    let mut out = Some(Vec::with_capacity(items.len()));
    for item in items {
        let entry = json::string(report, item, "environment").and_then(|text| {
            let Some((key, value)) = text.split_once('=') else {
                report.at(
                    item,
                    "environment",
                    format!("entry \"{text}\" has no `=`; write \"KEY=value\""),
                );
                return None;
            };
            check_env_key(report, item, key).then(|| (key.to_string(), value.to_string()))
        });
        out = out.zip(entry).map(|(mut list, entry)| {
            list.push(entry);
            list
        });
    }
    out
}

fn read_environment_map(report: &mut Report, raw: &RawValue) -> Option<Vec<(String, String)>> {
    let members = json::members(report, raw, Some("environment"));
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut out = Some(Vec::with_capacity(members.len()));
    for member in members {
        let key_ok = check_env_key(report, member.key_raw, &member.key);
        if seen.insert(member.key.clone(), ()).is_some() {
            report.at(
                member.key_raw,
                "environment",
                format!("variable `{}` is given twice", member.key),
            );
        }
        let value =
            if Kind::of(member.value) == Kind::Number || Kind::of(member.value) == Kind::Bool {
                let message = format!(
                    "expected a string, found {}; write \"{}\"",
                    Kind::of(member.value),
                    member.value.get()
                );
                report.at(member.value, "environment", message);
                None
            } else {
                json::string(report, member.value, "environment")
            };
        let entry = value.filter(|_| key_ok).map(|value| (member.key, value));
        out = out.zip(entry).map(|(mut list, entry)| {
            list.push(entry);
            list
        });
    }
    out
}

/// Environment variable names must be non-empty and hold no `=` (the separator), no
/// NUL and no whitespace or control characters (almost always a typo such as
/// `"PORT =80"`). Other characters are allowed, as Docker and `execve` allow them:
/// programs do read names like `spring.profiles.active` that no shell could set.
fn check_env_key(report: &mut Report, raw: &RawValue, key: &str) -> bool {
    let problem = if key.is_empty() {
        Some("variable name must not be empty".to_string())
    } else if key.contains('=') {
        Some(format!("variable name `{key}` must not contain `=`"))
    } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!(
            "variable name {key:?} must not contain spaces or control characters"
        ))
    } else {
        None
    };
    if let Some(problem) = &problem {
        report.at(raw, "environment", problem.as_str());
    }
    problem.is_none()
}

/// `user` is only checked for shape here (`name`, `uid`, `name:group`, `uid:gid`);
/// `plan` resolves it against the container's `/etc/passwd` and `/etc/group`.
fn read_user(report: &mut Report, raw: &RawValue) -> Option<String> {
    let user = json::non_empty_string(report, raw, "user")?;
    let parts: Vec<&str> = user.split(':').collect();
    let bad_part = parts
        .iter()
        .any(|part| part.is_empty() || part.chars().any(char::is_whitespace));
    if parts.len() > 2 || bad_part {
        report.at(raw, "user", format!("invalid user \"{user}\"; expected \"name\", \"uid\", \"name:group\" or \"uid:gid\""));
        return None;
    }
    Some(user)
}

/// A signal as a name (`"TERM"`, `"SIGTERM"`) or a number (`15`, or `"15"`).
pub(crate) fn read_signal(report: &mut Report, raw: &RawValue, field: &str) -> Option<i32> {
    let text = match Kind::of(raw) {
        Kind::Number => raw.get().to_string(),
        Kind::String => json::string(report, raw, field)?,
        other => {
            report.at(
                raw,
                field,
                format!("expected a signal name or number, found {other}"),
            );
            return None;
        }
    };
    let signal = parse_signal(&text);
    if signal.is_none() {
        report.at(raw, field, format!("unknown signal `{text}`; expected a name such as \"TERM\" or a number from 1 to 64"));
    }
    signal
}

/// `depends_on` names, with positions so unknown ones can be reported once all
/// daemons are read.
fn read_depends_on(report: &mut Report, raw: &RawValue) -> Option<Vec<(String, Position)>> {
    let items = json::array(report, raw, "depends_on")?;
    let names = items
        .iter()
        .filter_map(|item| {
            json::string(report, item, "depends_on").map(|name| (name, report.src.position(item)))
        })
        .collect();
    Some(names)
}

/// The shortest health-check `interval` and `timeout`: probing more often
/// than ten times a second would cost PID 1 a noticeable share of a core.
const MIN_PROBE_TIME: Duration = Duration::from_millis(100);

/// `health`: exactly one probe, and its timing.
fn read_health(report: &mut Report, raw: &RawValue) -> Option<HealthSpec> {
    let errors_before = report.count();
    let fields = json::object(report, raw, "health", HEALTH_FIELDS, "health.")?;
    let unknown_keys = report.count() > errors_before;
    let probe = read_probe(report, raw, &fields, unknown_keys);
    let mut duration = |field: &str, default: u64| {
        fields
            .get(field)
            .and_then(|value| json::seconds(report, value, &format!("health.{field}")))
            .unwrap_or(Duration::from_secs(default))
    };
    let interval = duration("interval", 10);
    let timeout = duration("timeout", 5);
    let start_period = duration("start_period", 0);
    for (field, value) in [("interval", interval), ("timeout", timeout)] {
        let Some(raw) = fields.get(field) else {
            continue;
        };
        if value.is_zero() {
            report.at(raw, &format!("health.{field}"), "must be greater than 0");
        } else if value < MIN_PROBE_TIME {
            // A probe every few microseconds is a busy loop in PID 1.
            report.at(
                raw,
                &format!("health.{field}"),
                format!("must be at least 0.1 s, found {} s", value.as_secs_f64()),
            );
        }
    }
    let retries = match fields.get("retries") {
        Some(raw) => read_retries(report, raw),
        None => Some(3),
    };
    let spec = HealthSpec {
        probe: probe?,
        interval,
        timeout,
        retries: retries?,
        start_period,
    };
    (report.count() == errors_before).then_some(spec)
}

fn read_retries(report: &mut Report, raw: &RawValue) -> Option<u32> {
    let retries = json::integer(report, raw, "health.retries", u32::MAX.into())?;
    if retries == 0 {
        report.at(raw, "health.retries", "must be at least 1");
        return None;
    }
    u32::try_from(retries).ok()
}

/// The one probe among `command`, `http` and `tcp`.
///
/// `unknown_keys`: the object had keys already reported as unknown. A missing
/// probe is then not reported too: the unknown key is most often the probe or
/// a field beside it mistyped, and one mistake deserves one message.
fn read_probe(
    report: &mut Report,
    raw: &RawValue,
    fields: &Fields,
    unknown_keys: bool,
) -> Option<HealthProbe> {
    let given: Vec<(&str, &RawValue)> = ["command", "http", "tcp"]
        .into_iter()
        .filter_map(|field| fields.get(field).map(|value| (field, value)))
        .collect();
    let Some(&(kind, value)) = given.first() else {
        if !unknown_keys {
            report.at(raw, "health", "needs one of `command`, `http` or `tcp`");
        }
        return None;
    };
    for &(extra, extra_raw) in &given[1..] {
        let message =
            format!("give only one of `command`, `http` or `tcp`; `{kind}` is already given");
        report.at(extra_raw, &format!("health.{extra}"), message);
    }
    let field = format!("health.{kind}");
    let text = json::non_empty_string(report, value, &field)?;
    let probe = match kind {
        "command" => HealthProbe::Command(text),
        "http" => HealthProbe::Http(check_http(report, value, &field, text)?),
        _ => HealthProbe::Tcp(check_tcp(report, value, &field, text)?),
    };
    (given.len() == 1).then_some(probe)
}

/// Plain `http://` only: TLS would need a TLS stack in every image, for a probe that
/// normally targets localhost.
fn check_http(report: &mut Report, raw: &RawValue, field: &str, url: String) -> Option<String> {
    let host = url.strip_prefix("http://").unwrap_or("");
    if host.is_empty() || host.starts_with('/') {
        report.at(
            raw,
            field,
            format!("expected a URL such as \"http://127.0.0.1:8080/healthz\", found \"{url}\""),
        );
        return None;
    }
    Some(url)
}

/// `host:port`, the host a name or an address (`[::1]:5432` for IPv6).
fn check_tcp(report: &mut Report, raw: &RawValue, field: &str, address: String) -> Option<String> {
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        report.at(
            raw,
            field,
            format!("expected \"host:port\" such as \"127.0.0.1:5432\", found \"{address}\""),
        );
        return None;
    }
    Some(address)
}

/// Names must be unique: they identify daemons in logs, the API and `depends_on`.
fn check_names(report: &mut Report, drafts: &[Draft]) {
    let mut first: HashMap<&str, Position> = HashMap::new();
    for draft in drafts {
        let Some((name, position)) = &draft.name else {
            continue;
        };
        if let Some(earlier) = first.get(name.as_str()) {
            report.daemon = Some(draft.label.clone());
            let message = format!(
                "duplicate name `{name}`; first used at line {}:{}",
                earlier.line, earlier.column
            );
            report.error(*position, Some("name"), message);
        } else {
            first.insert(name, *position);
        }
    }
}

/// Every `depends_on` entry must name another daemon of the file (cycles are `plan`'s).
fn check_dependencies(report: &mut Report, drafts: &[Draft]) {
    let names: Vec<&str> = drafts
        .iter()
        .filter_map(|d| d.name.as_ref())
        .map(|(n, _)| n.as_str())
        .collect();
    let jobs: Vec<&str> = drafts
        .iter()
        .filter(|d| d.is_job)
        .filter_map(|d| d.name.as_ref())
        .map(|(n, _)| n.as_str())
        .collect();
    for draft in drafts {
        report.daemon = Some(draft.label.clone());
        let own = draft.name.as_ref().map(|(name, _)| name.as_str());
        let mut seen: Vec<&str> = Vec::new();
        for (dependency, position) in &draft.depends_on {
            let message = if Some(dependency.as_str()) == own {
                Some("a daemon cannot depend on itself".to_string())
            } else if seen.contains(&dependency.as_str()) {
                Some(format!("`{dependency}` is listed twice"))
            } else if !names.contains(&dependency.as_str()) {
                let hint = json::suggest(dependency, &names, &[])
                    .map(|best| format!("; did you mean `{best}`?"))
                    .unwrap_or_default();
                Some(format!("no daemon is named `{dependency}`{hint}"))
            } else if jobs.contains(&dependency.as_str()) {
                Some(format!(
                    "`{dependency}` is a job (it has `schedule`): nothing can wait for it to be running"
                ))
            } else {
                None
            };
            if let Some(message) = message {
                report.error(*position, Some("depends_on"), message);
            }
            seen.push(dependency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"[
  {"name": "web", "command": "python3 -m http.server 8080", "comments": "the app", "vital": true,
   "environment": ["PORT=8080", "MODE=prod"]},
  {"name": "ticker", "command": ["/bin/sh", "-c", "while true; do echo tick; sleep 1; done"],
   "environment": {"GREETING": "hello"}}
]"#;

    fn parse_ok(text: &str) -> Vec<DaemonSpec> {
        match parse(Path::new("daemons.json"), text, false) {
            Ok(specs) => specs,
            Err(errors) => panic!("unexpected errors: {errors:#?}"),
        }
    }

    fn parse_err(text: &str) -> Vec<ConfigError> {
        match parse(Path::new("daemons.json"), text, false) {
            Ok(specs) => panic!("expected errors, parsed {specs:#?}"),
            Err(errors) => errors,
        }
    }

    /// The only error of `text`.
    fn only_error(text: &str) -> ConfigError {
        let mut errors = parse_err(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.remove(0)
    }

    /// Line and column (1-based, ASCII test texts) of the first occurrence of `needle`,
    /// found independently of the code under test.
    fn locate(text: &str, needle: &str) -> (usize, usize) {
        let offset = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in text"));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    /// Asserts an error's place: line:column, daemon and field.
    fn assert_at(err: &ConfigError, at: (usize, usize), daemon: &str, field: Option<&str>) {
        assert_eq!((err.line, err.column), at, "{err}");
        assert_eq!(err.daemon.as_deref(), Some(daemon), "{err}");
        assert_eq!(err.field.as_deref(), field, "{err}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn seed_example_parses() {
        let specs = parse_ok(SEED);
        assert_eq!(specs.len(), 2);
        let web = &specs[0];
        assert_eq!(web.name, "web");
        assert_eq!(
            web.command,
            CommandSpec::Line("python3 -m http.server 8080".into())
        );
        assert!(web.vital);
        assert_eq!(web.environment, env(&[("PORT", "8080"), ("MODE", "prod")]));
        assert_eq!(web.position, Position { line: 2, column: 3 });
        let ticker = &specs[1];
        let argv = ["/bin/sh", "-c", "while true; do echo tick; sleep 1; done"];
        assert_eq!(
            ticker.command,
            CommandSpec::Argv(argv.map(String::from).to_vec())
        );
        assert!(!ticker.vital);
        assert_eq!(ticker.environment, env(&[("GREETING", "hello")]));
        assert_eq!(ticker.position, Position { line: 4, column: 3 });
    }

    #[test]
    fn defaults_of_a_minimal_daemon() {
        let spec = parse_ok(r#"[{"name": "a", "command": "true"}]"#).remove(0);
        assert!(!spec.vital);
        assert!(spec.environment.is_empty());
        assert_eq!(spec.restart, RestartPolicy::Never);
        assert_eq!(spec.restart_delay, Duration::from_secs(1));
        assert_eq!(spec.max_restarts, None);
        assert_eq!(spec.working_dir, None);
        assert_eq!(spec.user, None);
        assert_eq!(spec.stop_signal, libc::SIGTERM);
        assert_eq!(spec.stop_timeout, None);
        assert_eq!(spec.output, OutputMode::Log);
        assert!(spec.depends_on.is_empty());
        assert_eq!(spec.health, None);
    }

    #[test]
    fn every_field_is_read() {
        let text = r#"[
  {"name": "db", "command": ["postgres"]},
  {"name": "app.v2_x-1", "command": "run", "vital": false, "restart": "on-failure",
   "restart_delay": 0.25, "max_restarts": 7, "working_dir": "/srv", "user": "app:staff",
   "stop_signal": "SIGINT", "stop_timeout": 30, "output": "discard", "depends_on": ["db"],
   "health": {"http": "http://127.0.0.1:8080/healthz", "interval": 2, "timeout": 1.5,
              "retries": 5, "start_period": 20}}
]"#;
        let spec = parse_ok(text).remove(1);
        assert_eq!(spec.name, "app.v2_x-1");
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert_eq!(spec.restart_delay, Duration::from_millis(250));
        assert_eq!(spec.max_restarts, Some(7));
        assert_eq!(spec.working_dir, Some(PathBuf::from("/srv")));
        assert_eq!(spec.user.as_deref(), Some("app:staff"));
        assert_eq!(spec.stop_signal, libc::SIGINT);
        assert_eq!(spec.stop_timeout, Some(Duration::from_secs(30)));
        assert_eq!(spec.output, OutputMode::Discard);
        assert_eq!(spec.depends_on, vec!["db".to_string()]);
        let health = spec.health.expect("health");
        assert_eq!(
            health.probe,
            HealthProbe::Http("http://127.0.0.1:8080/healthz".into())
        );
        assert_eq!(health.interval, Duration::from_secs(2));
        assert_eq!(health.timeout, Duration::from_millis(1500));
        assert_eq!(health.retries, 5);
        assert_eq!(health.start_period, Duration::from_secs(20));
        let restart_at = locate(text, "\"on-failure\"");
        let recorded = spec.field_positions.iter().find(|(f, _)| *f == "restart");
        assert_eq!(recorded.map(|(_, p)| (p.line, p.column)), Some(restart_at));
        assert_eq!(spec.field_positions.len(), 13);
    }

    #[test]
    fn health_defaults_and_probe_kinds() {
        let text = r#"[
  {"name": "a", "command": "x", "health": {"command": "pg_isready"}},
  {"name": "b", "command": "x", "health": {"tcp": "db:5432"}}
]"#;
        let specs = parse_ok(text);
        let health = specs[0].health.clone().expect("health");
        assert_eq!(health.probe, HealthProbe::Command("pg_isready".into()));
        assert_eq!(health.interval, Duration::from_secs(10));
        assert_eq!(health.timeout, Duration::from_secs(5));
        assert_eq!(health.retries, 3);
        assert_eq!(health.start_period, Duration::ZERO);
        let probe = specs[1].health.as_ref().map(|h| h.probe.clone());
        assert_eq!(probe, Some(HealthProbe::Tcp("db:5432".into())));
    }

    #[test]
    fn stop_signal_as_name_or_number() {
        let text = r#"[
  {"name": "a", "command": "x", "stop_signal": "TERM"},
  {"name": "b", "command": "x", "stop_signal": "quit"},
  {"name": "c", "command": "x", "stop_signal": 10},
  {"name": "d", "command": "x", "stop_signal": "9"}
]"#;
        let signals: Vec<i32> = parse_ok(text).iter().map(|s| s.stop_signal).collect();
        assert_eq!(signals, [libc::SIGTERM, libc::SIGQUIT, 10, 9]);
    }

    #[test]
    fn environment_later_duplicates_kept_in_order() {
        let text = r#"[{"name": "a", "command": "x", "environment": ["A=1", "B=x=y", "A=", "spring.profile=dev"]}]"#;
        let spec = parse_ok(text).remove(0);
        let expected = env(&[
            ("A", "1"),
            ("B", "x=y"),
            ("A", ""),
            ("spring.profile", "dev"),
        ]);
        assert_eq!(spec.environment, expected);
    }

    #[test]
    fn syntax_error_is_one_error_at_serde_position() {
        let text = "[\n  {\"name\": \"a\", \"command\": \"x\",}\n]";
        let err = only_error(text);
        assert_eq!((err.line, err.column), (2, 32));
        assert_eq!(err.message, "trailing comma");
        assert_eq!(err.daemon, None);
    }

    #[test]
    fn an_empty_file_is_called_empty() {
        for text in ["", "  \n\t\n", "\u{feff}", "\u{feff}\n"] {
            let err = only_error(text);
            assert_eq!(
                (err.line, err.column, err.message.as_str()),
                (1, 1, "the file is empty"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_positions_stay_right() {
        let text = "\u{feff}[{\"name\": \"a\", \"command\": \"x\"}]";
        assert_eq!(parse_ok(text)[0].name, "a");
        let text = "\u{feff}[{\"name\": \"a\", \"command\": \"x\",\n  \"vitall\": true}]";
        let err = only_error(text);
        assert_eq!((err.line, err.column), (2, 3), "{err}");
        let err = only_error("\u{feff}[{\"name\": \"a\" \"command\": 1}]");
        assert_eq!((err.line, err.column), (1, 15), "{err}");
    }

    #[test]
    fn a_typo_inside_health_is_one_message() {
        for (text, field) in [
            (
                r#"[{"name": "a", "command": "x", "health": {"command": "c", "intervall": 3}}]"#,
                "health.intervall",
            ),
            (
                r#"[{"name": "a", "command": "x", "health": {"intervall": 3}}]"#,
                "health.intervall",
            ),
            (
                r#"[{"name": "a", "command": "x", "health": {"commnd": "c"}}]"#,
                "health.commnd",
            ),
        ] {
            let err = only_error(text);
            let key = field.trim_start_matches("health.");
            assert_eq!(
                (err.line, err.column),
                locate(text, &format!("\"{key}\"")),
                "{err}"
            );
            assert_eq!(err.daemon.as_deref(), Some("a"));
            assert_eq!(err.field.as_deref(), Some(field));
        }
    }

    #[test]
    fn a_daemon_with_a_problem_in_an_optional_field_is_not_valid() {
        let text = r#"[{"name": "a", "command": "x", "health": {"commnd": "c"}},
 {"name": "b", "command": "x"}]"#;
        let (specs, errors) = parse_all(Path::new("daemons.json"), text, false);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn top_level_must_be_a_non_empty_array() {
        let err = only_error("\n {\"name\": \"a\", \"command\": \"x\"}");
        assert_eq!((err.line, err.column), (2, 2));
        assert_eq!(
            err.message,
            "expected an array of daemon objects, found an object"
        );
        let err = only_error("  [ ]");
        assert_eq!((err.line, err.column, err.daemon.clone()), (1, 3, None));
        assert!(err.message.starts_with("no daemons"), "{err}");
        assert_eq!(parse(Path::new("d.json"), "[]", true), Ok(vec![]));
    }

    #[test]
    fn element_that_is_not_an_object() {
        let text = r#"[{"name": "a", "command": "x"}, "b"]"#;
        let err = only_error(text);
        assert_at(&err, locate(text, "\"b\""), "#2", None);
        assert_eq!(err.message, "expected a daemon object, found a string");
    }

    #[test]
    fn missing_required_fields_point_at_the_object() {
        let text = "[\n  {\"command\": \"x\"},\n  {\"name\": \"b\"}\n]";
        let errors = parse_err(text);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_at(&errors[0], (2, 3), "#1", Some("name"));
        assert_eq!(errors[0].message, "missing required field `name`");
        assert_at(&errors[1], (3, 3), "b", Some("command"));
        assert_eq!(errors[1].message, "missing required field `command`");
    }

    #[test]
    fn unknown_field_points_at_the_key_with_a_hint() {
        let text = "[\n  {\"name\": \"web\", \"command\": \"x\",\n   \"vitall\": true, \"env\": [], \"colour\": 1}\n]";
        let errors = parse_err(text);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_at(&errors[0], (3, 4), "web", Some("vitall"));
        assert_eq!(
            errors[0].message,
            "unknown field `vitall`; did you mean `vital`?"
        );
        assert_at(&errors[1], locate(text, "\"env\""), "web", Some("env"));
        assert_eq!(
            errors[1].message,
            "unknown field `env`; did you mean `environment`?"
        );
        assert!(errors[2]
            .message
            .starts_with("unknown field `colour`; expected one of: name, command,"));
    }

    #[test]
    fn repeated_key_is_an_error() {
        let text = r#"[{"name": "a", "command": "x", "vital": true, "vital": false}]"#;
        let err = only_error(text);
        let second = text.rfind("\"vital\"").expect("second key");
        assert_at(&err, (1, second + 1), "a", Some("vital"));
        assert_eq!(
            err.message,
            "field `vital` is given twice (first at line 1:32)"
        );
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let text = r#"[{"name": "a", "command": 5, "vital": "yes", "comments": null, "depends_on": "b",
  "max_restarts": "3", "restart": true, "health": [], "environment": 1, "stop_signal": []}]"#;
        let errors = parse_err(text);
        let expect = [
            (
                "5",
                "command",
                "expected a string or an array of strings, found a number",
            ),
            ("\"yes\"", "vital", "expected a boolean, found a string"),
            ("null", "comments", "expected a string, found null"),
            ("\"b\"", "depends_on", "expected an array, found a string"),
            ("\"3\"", "max_restarts", "expected a number, found a string"),
            ("true,", "restart", "expected a string, found a boolean"),
            ("[],", "health", "expected an object, found an array"),
            (
                "1,",
                "environment",
                "expected an array of \"KEY=value\" strings or an object, found a number",
            ),
            (
                "[]}",
                "stop_signal",
                "expected a signal name or number, found an array",
            ),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (needle, field, message) in expect {
            let err = errors.iter().find(|e| e.field.as_deref() == Some(field));
            let err = err.unwrap_or_else(|| panic!("no error for {field}: {errors:#?}"));
            assert_at(err, locate(text, needle), "a", Some(field));
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn invalid_names_are_labelled_by_index() {
        let long = "x".repeat(65);
        let text = format!(
            r#"[{{"name": "main", "command": "x"}}, {{"name": "a b", "command": "x"}},
 {{"name": "", "command": "x"}}, {{"name": "{long}", "command": "x"}}, {{"name": 7, "command": "x"}},
 {{"name": "{}", "command": "x"}}]"#,
            "y".repeat(64)
        );
        let errors = parse_err(&text);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert_at(&errors[0], locate(&text, "\"main\""), "#1", Some("name"));
        assert_eq!(
            errors[0].message,
            "`main` is reserved for pidzero itself; choose another name"
        );
        assert_at(&errors[1], locate(&text, "\"a b\""), "#2", Some("name"));
        assert!(
            errors[1]
                .message
                .starts_with("invalid character ' ' in `a b`"),
            "{}",
            errors[1]
        );
        assert_at(&errors[2], locate(&text, "\"\""), "#3", Some("name"));
        assert_eq!(errors[2].message, "must be 1 to 64 characters long");
        assert_eq!(errors[3].daemon.as_deref(), Some("#4"));
        assert_at(&errors[4], locate(&text, "7"), "#5", Some("name"));
    }

    #[test]
    fn pidzero_is_reserved_too() {
        let err = only_error(r#"[{"name": "pidzero", "command": "x"}]"#);
        assert_eq!(
            err.message,
            "`pidzero` is reserved for pidzero itself; choose another name"
        );
    }

    #[test]
    fn duplicate_names() {
        let text = "[\n  {\"name\": \"a\", \"command\": \"x\"},\n  {\"name\": \"a\", \"command\": \"y\"}\n]";
        let err = only_error(text);
        assert_at(&err, (3, 12), "a", Some("name"));
        assert_eq!(err.message, "duplicate name `a`; first used at line 2:12");
    }

    #[test]
    fn bad_commands() {
        let text = r#"[{"name": "a", "command": "  "}, {"name": "b", "command": []},
 {"name": "c", "command": ["", "x"]}, {"name": "d", "command": ["ls", 3]},
 {"name": "e", "command": "a\u0000b"}]"#;
        let errors = parse_err(text);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert_at(&errors[0], locate(text, "\"  \""), "a", Some("command"));
        assert_eq!(errors[0].message, "must not be empty");
        assert_at(&errors[1], locate(text, "[]"), "b", Some("command"));
        assert_eq!(
            errors[1].message,
            "must not be an empty array; the first element is the program"
        );
        assert_at(
            &errors[2],
            locate(text, "\"\", \"x\""),
            "c",
            Some("command"),
        );
        assert_eq!(
            errors[2].message,
            "the program (first element) must not be empty"
        );
        assert_at(&errors[3], locate(text, "3]"), "d", Some("command"));
        assert_eq!(errors[3].message, "expected a string, found a number");
        assert_at(
            &errors[4],
            locate(text, "\"a\\u0000b\""),
            "e",
            Some("command"),
        );
        assert_eq!(
            errors[4].message,
            "must not contain a NUL character (\\u0000)"
        );
    }

    #[test]
    fn bad_environment_entries() {
        let text = r#"[{"name": "a", "command": "x",
  "environment": ["OK=1", "NOEQUALS", "=v", "A B=1", 5]},
 {"name": "b", "command": "x",
  "environment": {"PORT": 8080, "": "v", "X": "a\u0000", "Y": "1", "Y": "2"}}]"#;
        let errors = parse_err(text);
        let expect = [
            (
                "\"NOEQUALS\"",
                "a",
                "entry \"NOEQUALS\" has no `=`; write \"KEY=value\"",
            ),
            ("\"=v\"", "a", "variable name must not be empty"),
            (
                "\"A B=1\"",
                "a",
                "variable name \"A B\" must not contain spaces or control characters",
            ),
            ("5]", "a", "expected a string, found a number"),
            (
                "8080",
                "b",
                "expected a string, found a number; write \"8080\"",
            ),
            ("\"\": ", "b", "variable name must not be empty"),
            (
                "\"a\\u0000\"",
                "b",
                "must not contain a NUL character (\\u0000)",
            ),
        ];
        assert_eq!(errors.len(), expect.len() + 1, "{errors:#?}");
        for (err, (needle, daemon, message)) in errors.iter().zip(expect) {
            assert_at(err, locate(text, needle), daemon, Some("environment"));
            assert_eq!(err.message, message);
        }
        let last = errors.last().expect("repeated key");
        assert_eq!(last.field.as_deref(), Some("environment"));
        assert_eq!(
            (last.line, last.column),
            (
                4,
                text.lines()
                    .nth(3)
                    .map_or(0, |l| l.rfind("\"Y\"").unwrap_or(0) + 1)
            )
        );
    }

    #[test]
    fn vital_daemons_cannot_restart() {
        let text = r#"[{"name": "a", "command": "x", "vital": true, "restart": "always"},
 {"name": "b", "command": "x", "vital": true, "restart": "never"}]"#;
        let err = only_error(text);
        assert_at(&err, locate(text, "\"always\""), "a", Some("restart"));
        assert!(
            err.message.starts_with("a vital daemon is never restarted"),
            "{err}"
        );
    }

    #[test]
    fn bad_choices() {
        let text = r#"[{"name": "a", "command": "x", "restart": "sometimes", "output": "file"}]"#;
        let errors = parse_err(text);
        assert_eq!(errors.len(), 2);
        assert_at(
            &errors[0],
            locate(text, "\"sometimes\""),
            "a",
            Some("restart"),
        );
        let message =
            "invalid value \"sometimes\"; expected one of \"never\", \"on-failure\", \"always\"";
        assert_eq!(errors[0].message, message);
        assert_at(&errors[1], locate(text, "\"file\""), "a", Some("output"));
    }

    #[test]
    fn parse_and_sinks() {
        let text = r#"[{"name": "a", "command": "x"},
 {"name": "b", "command": "x", "parse": "json", "sinks": ["file", "syslog"]},
 {"name": "c", "command": "x", "parse": "text", "sinks": []}]"#;
        let specs = parse_ok(text);
        assert_eq!((specs[0].parse, specs[0].sinks), (LineParse::Text, None));
        let both = SinkSet::of([SinkKind::File, SinkKind::Syslog]);
        assert_eq!(
            (specs[1].parse, specs[1].sinks),
            (LineParse::Json, Some(both))
        );
        assert_eq!(
            (specs[2].parse, specs[2].sinks),
            (LineParse::Text, Some(SinkSet::NONE))
        );
    }

    #[test]
    fn bad_parse_and_sinks() {
        let text = r#"[{"name": "a", "command": "x", "parse": "yaml",
  "sinks": ["file", "File", 3, "file"]}]"#;
        let errors = parse_err(text);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert_at(&errors[0], locate(text, "\"yaml\""), "a", Some("parse"));
        assert_at(&errors[1], locate(text, "\"File\""), "a", Some("sinks"));
        assert!(
            errors[1].message.contains("unknown sink `File`"),
            "{}",
            errors[1]
        );
        assert_at(&errors[2], locate(text, "3"), "a", Some("sinks"));
        assert_at(&errors[3], locate(text, "\"file\"]"), "a", Some("sinks"));
        assert!(errors[3].message.contains("listed twice"), "{}", errors[3]);
    }

    #[test]
    fn bad_numbers() {
        let text = r#"[{"name": "a", "command": "x", "restart_delay": -1, "stop_timeout": 1e9,
  "max_restarts": 2.5, "stop_signal": "TERMINATE", "working_dir": "", "user": "a:b:c"}]"#;
        let errors = parse_err(text);
        let expect = [
            ("-1", "restart_delay", "must not be negative, found -1"),
            ("2.5", "max_restarts", "expected a whole number, found 2.5"),
            ("\"\"", "working_dir", "must not be empty"),
            ("\"a:b:c\"", "user", "invalid user \"a:b:c\"; expected \"name\", \"uid\", \"name:group\" or \"uid:gid\""),
            ("\"TERMINATE\"", "stop_signal", "unknown signal `TERMINATE`; expected a name such as \"TERM\" or a number from 1 to 64"),
            ("1e9", "stop_timeout", "must be a number of seconds up to 31536000 (a year), found 1e9"),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (needle, field, message) in expect {
            let err = errors
                .iter()
                .find(|e| e.field.as_deref() == Some(field))
                .expect(field);
            assert_at(err, locate(text, needle), "a", Some(field));
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn signal_numbers_out_of_range() {
        let text = r#"[{"name": "a", "command": "x", "stop_signal": 0}, {"name": "b", "command": "x", "stop_signal": 65}]"#;
        let errors = parse_err(text);
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[1].message,
            "unknown signal `65`; expected a name such as \"TERM\" or a number from 1 to 64"
        );
    }

    #[test]
    fn dependencies_must_name_other_daemons() {
        let text = r#"[{"name": "db", "command": "x"},
 {"name": "app", "command": "x", "depends_on": ["dbb", "app", "db", "db", 4]}]"#;
        let errors = parse_err(text);
        let expect = [
            ("\"dbb\"", "no daemon is named `dbb`; did you mean `db`?"),
            ("\"app\", \"db\"", "a daemon cannot depend on itself"),
            ("\"db\", 4", "`db` is listed twice"),
            ("4]", "expected a string, found a number"),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (err, (needle, message)) in errors.iter().zip(expect) {
            assert_at(err, locate(text, needle), "app", Some("depends_on"));
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn dependency_on_a_daemon_with_other_errors_is_not_unknown() {
        let text = r#"[{"name": "db", "command": ""}, {"name": "app", "command": "x", "depends_on": ["db"]}]"#;
        let err = only_error(text);
        assert_eq!(err.daemon.as_deref(), Some("db"));
    }

    #[test]
    fn bad_health_checks() {
        let text = r#"[{"name": "a", "command": "x", "health": {"interval": 1}},
 {"name": "b", "command": "x", "health": {"command": "c", "tcp": "h:1"}},
 {"name": "c", "command": "x", "health": {"tcp": "nohost", "retries": 0, "interval": 0, "timout": 1}},
 {"name": "d", "command": "x", "health": {"http": "https://x/"}},
 {"name": "e", "command": "x", "health": {"tcp": "h:1", "interval": 0.0000001}}]"#;
        let errors = parse_err(text);
        let expect = [
            (
                "{\"interval\"",
                "a",
                "health",
                "needs one of `command`, `http` or `tcp`",
            ),
            (
                "\"h:1\"",
                "b",
                "health.tcp",
                "give only one of `command`, `http` or `tcp`; `command` is already given",
            ),
            (
                "\"timout\"",
                "c",
                "health.timout",
                "unknown field `timout`; did you mean `timeout`?",
            ),
            (
                "\"nohost\"",
                "c",
                "health.tcp",
                "expected \"host:port\" such as \"127.0.0.1:5432\", found \"nohost\"",
            ),
            (
                "0, \"timout\"",
                "c",
                "health.interval",
                "must be greater than 0",
            ),
            (
                "0, \"interval\"",
                "c",
                "health.retries",
                "must be at least 1",
            ),
            (
                "\"https://x/\"",
                "d",
                "health.http",
                "expected a URL such as \"http://127.0.0.1:8080/healthz\", found \"https://x/\"",
            ),
            (
                "0.0000001",
                "e",
                "health.interval",
                "must be at least 0.1 s, found 0.0000001 s",
            ),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        let mut expect = expect;
        expect.sort_by_key(|&(needle, ..)| locate(text, needle));
        for (err, (needle, daemon, field, message)) in errors.iter().zip(expect) {
            assert_at(err, locate(text, needle), daemon, Some(field));
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn every_problem_of_a_file_is_reported() {
        let text = r#"[
  {"name": "web", "command": "serve", "vitall": true},
  {"command": ["ok"], "restart": "sometimes"},
  {"name": "worker", "command": "", "depends_on": ["wbe"]},
  {"name": "web", "command": "again", "stop_timeout": -5}
]"#;
        let errors = parse_err(text);
        let places: Vec<_> = errors
            .iter()
            .map(|e| {
                (
                    e.line,
                    e.column,
                    e.daemon.clone().unwrap_or_default(),
                    e.field.clone().unwrap_or_default(),
                )
            })
            .collect();
        let expected = [
            (2, 39, "web", "vitall"),
            (3, 3, "#2", "name"),
            (3, 34, "#2", "restart"),
            (4, 33, "worker", "command"),
            (4, 52, "worker", "depends_on"),
            (5, 12, "web", "name"),
            (5, 55, "web", "stop_timeout"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|&(l, c, d, f)| (l, c, d.to_string(), f.to_string()))
            .collect();
        assert_eq!(places, expected, "{errors:#?}");
        let shown = errors[4].to_string();
        assert_eq!(shown, "daemons.json:4:52: daemon worker: field depends_on: no daemon is named `wbe`; did you mean `web`?");
    }
}
