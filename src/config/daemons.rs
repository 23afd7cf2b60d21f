//! `daemons.json`: an array of daemon objects, each checked field by field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};
use super::signal::parse_signal;
use super::{
    CommandSpec, ConfigError, DaemonSpec, HealthProbe, HealthSpec, OutputMode, Position,
    RestartPolicy,
};

/// Every field a daemon object may have.
const FIELDS: &[&str] = &[
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
];

const HEALTH_FIELDS: &[&str] = &[
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

/// Parses `daemons.json`. `allow_empty` is for a main command, which needs no sidecars.
pub(crate) fn parse(
    file: &Path,
    text: &str,
    allow_empty: bool,
) -> Result<Vec<DaemonSpec>, Vec<ConfigError>> {
    let mut report = Report::new(file, text);
    let Some(doc) = report.document() else {
        return Err(report.errors);
    };
    if Kind::of(doc) != Kind::Array {
        let message = format!(
            "expected an array of daemon objects, found {}",
            Kind::of(doc)
        );
        report.error(report.src.position(doc), None, message);
        return Err(report.errors);
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
    if report.errors.is_empty() {
        Ok(drafts.into_iter().filter_map(|draft| draft.spec).collect())
    } else {
        Err(report.errors)
    }
}

/// One daemon as read: the spec when it had no problems, plus what the checks across
/// daemons need even when it had some (its name and its dependencies, with positions).
struct Draft {
    label: String,
    name: Option<(String, Position)>,
    depends_on: Vec<(String, Position)>,
    spec: Option<DaemonSpec>,
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
    let position = report.src.position(raw);
    let mut draft = Draft {
        label: format!("#{}", index + 1),
        name: None,
        depends_on: Vec::new(),
        spec: None,
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
    draft.spec = read_optional_fields(
        report,
        &fields,
        name,
        command,
        draft.depends_on.clone(),
        position,
    );
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
        position,
        field_positions,
    })
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

/// `health`: exactly one probe, and its timing.
fn read_health(report: &mut Report, raw: &RawValue) -> Option<HealthSpec> {
    let errors_before = report.count();
    let fields = json::object(report, raw, "health", HEALTH_FIELDS, "health.")?;
    let probe = read_probe(report, raw, &fields);
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
        if let Some(raw) = fields.get(field).filter(|_| value.is_zero()) {
            report.at(raw, &format!("health.{field}"), "must be greater than 0");
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
fn read_probe(report: &mut Report, raw: &RawValue, fields: &Fields) -> Option<HealthProbe> {
    let given: Vec<(&str, &RawValue)> = ["command", "http", "tcp"]
        .into_iter()
        .filter_map(|field| fields.get(field).map(|value| (field, value)))
        .collect();
    let Some(&(kind, value)) = given.first() else {
        report.at(raw, "health", "needs one of `command`, `http` or `tcp`");
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
