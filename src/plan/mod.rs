//! Turning validated configuration into what will run.
//!
//! For each daemon: the argv (split, or `/bin/sh -c` for shell syntax), the resolved
//! executable and its preflight verdict, the full environment, the user ids, the
//! working directory, and the start order from `depends_on`. Everything is computed
//! here, before anything starts, so that the runtime only executes decisions and
//! `pidzero check` can report every problem with file, line:column, daemon and field.
//!
//! Per daemon it yields two things ([`DaemonPlan`]): the rules the supervisor
//! decides by ([`rules`]) and the launch spec the runtime executes ([`Launch`]).
//!
//! Preflight failures are recorded in the rules, not reported as errors: whether
//! a missing executable aborts (vital, exit 127/126) or becomes `spawn_failed` is
//! the supervisor's decision (§5).

mod command;
pub mod diff;
mod env;
mod order;
mod preflight;
pub mod route;
pub mod rules;
mod users;

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    CommandSpec, ConfigError, DaemonSpec, HealthProbe, HealthSpec, LineRoute, OutputMode, Position,
    Settings,
};

pub use command::{has_shell_syntax, split_command};
pub use preflight::{find_program, find_program_in, PathSource, PreflightError};
pub use rules::{DaemonRules, HealthRules};
pub use users::{resolve_user, UserIds};

/// One daemon as planned: the rules the supervisor decides by, and the launch
/// spec the runtime executes. Neither layer translates the other's half.
#[derive(Debug, Clone)]
pub struct DaemonPlan {
    pub rules: DaemonRules,
    pub launch: Launch,
}

/// Everything the runtime needs to start one daemon's process, fully resolved.
/// `PartialEq`: a reload restarts a daemon whose launch changed ([`diff`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// What `execve` gets as argv (for shell syntax: `["/bin/sh", "-c", STRING]`).
    pub argv: Vec<String>,
    /// Resolved executable: found on `PATH`, or as given when it contains `/`.
    pub program: PathBuf,
    /// The full environment: pidzero's own with the daemon's entries applied.
    pub env: Vec<(OsString, OsString)>,
    pub working_dir: Option<PathBuf>,
    pub user: Option<UserIds>,
    pub output: OutputMode,
    /// True only for the main command, which keeps the terminal.
    pub inherit_stdin: bool,
    /// The health probe to run, when the daemon has a check.
    pub probe: Option<Probe>,
    /// Where its lines go and how they are read (`sinks`, `parse`).
    pub route: LineRoute,
    /// How it announces readiness: the runtime gives a notify daemon its
    /// `NOTIFY_SOCKET` or its notification descriptor.
    pub ready: rules::ReadyMode,
    /// The keep-alive period, given to the daemon as `WATCHDOG_USEC`.
    pub watchdog: Option<Duration>,
}

/// What one health probe runs, and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub check: HealthProbe,
    pub timeout: Duration,
}

impl Probe {
    fn of(spec: &HealthSpec) -> Self {
        Probe {
            check: spec.probe.clone(),
            timeout: spec.timeout,
        }
    }
}

/// All daemons, in file order, and the order to start them in.
#[derive(Debug, Clone)]
pub struct Plan {
    pub daemons: Vec<DaemonPlan>,
    /// Indices into `daemons`; every daemon comes after its dependencies. Stop in reverse.
    pub start_order: Vec<usize>,
}

/// Resolves every daemon of `daemons.json`, collecting all errors.
///
/// `base_env`: pidzero's own environment. `etc_dir`: normally `/etc` (tests pass a
/// temp dir holding `passwd`/`group`).
pub fn build(
    specs: &[DaemonSpec],
    settings: &Settings,
    daemons_file: &Path,
    base_env: &[(OsString, OsString)],
    etc_dir: &Path,
) -> Result<Plan, Vec<ConfigError>> {
    let parts = plan_all(specs, settings, daemons_file, base_env, etc_dir);
    if parts.errors.is_empty() {
        Ok(Plan {
            daemons: parts
                .daemons
                .into_iter()
                .map(|(_, daemon)| daemon)
                .collect(),
            start_order: parts.start_order,
        })
    } else {
        Err(parts.errors)
    }
}

/// What `pidzero check` learns from planning.
#[derive(Debug)]
pub struct Checked {
    /// The daemons that could be planned (all of them when `problems` is empty).
    pub daemons: Vec<DaemonPlan>,
    /// Every error [`build`] reports, and one per daemon whose executable fails
    /// preflight: the run reports those only when it gets there (exit 127/126
    /// for a vital daemon, `spawn_failed` for another), `check` reports them now.
    pub problems: Vec<ConfigError>,
}

/// Plans like [`build`], keeping the daemons that could be planned and
/// adding the preflight failures of their executables to the problems.
pub fn check(
    specs: &[DaemonSpec],
    settings: &Settings,
    daemons_file: &Path,
    base_env: &[(OsString, OsString)],
    etc_dir: &Path,
) -> Checked {
    let mut parts = plan_all(specs, settings, daemons_file, base_env, etc_dir);
    let mut preflight_problems = Vec::new();
    for (index, daemon) in &parts.daemons {
        let spec = &specs[*index];
        let site = Site {
            file: daemons_file,
            spec,
            index: *index,
        };
        if let Some(message) = preflight_problem(spec, daemon, base_env) {
            preflight_problems.push(site.error("command", message));
        }
    }
    // Each daemon's own problems in file order, then those across daemons.
    preflight_problems.append(&mut parts.errors);
    Checked {
        daemons: parts
            .daemons
            .into_iter()
            .map(|(_, daemon)| daemon)
            .collect(),
        problems: preflight_problems,
    }
}

/// Why `daemon`'s executable cannot run, and what a run would do about it.
fn preflight_problem(
    spec: &DaemonSpec,
    daemon: &DaemonPlan,
    base_env: &[(OsString, OsString)],
) -> Option<String> {
    let launch = &daemon.launch;
    let (status, _) = daemon.rules.preflight_failure.as_ref()?;
    let name = launch.argv.first().map_or("", String::as_str);
    let source = if spec.environment.iter().any(|(key, _)| key == "PATH") {
        preflight::PathSource::Daemon
    } else if env::get_var(base_env, "PATH").is_some() {
        preflight::PathSource::Pidzero
    } else {
        preflight::PathSource::Default
    };
    let why = preflight::explain(
        name,
        &launch.program,
        env::get_var(&launch.env, "PATH"),
        source,
        launch.working_dir.as_deref(),
    );
    let consequence = if daemon.rules.vital {
        format!("a run exits {status} before starting any daemon")
    } else {
        format!("a run logs spawn_failed and counts it as exit status {status}")
    };
    Some(format!("{why}; {consequence}"))
}

/// The daemons that could be planned (with their index in `specs`), the
/// start order (empty on cycles), and every error.
struct Parts {
    daemons: Vec<(usize, DaemonPlan)>,
    start_order: Vec<usize>,
    errors: Vec<ConfigError>,
}

fn plan_all(
    specs: &[DaemonSpec],
    settings: &Settings,
    daemons_file: &Path,
    base_env: &[(OsString, OsString)],
    etc_dir: &Path,
) -> Parts {
    let accounts = Accounts::read_if_needed(specs, etc_dir);
    let config_dir = daemons_file.parent().unwrap_or(Path::new(""));
    let (deps, unknown_deps) = order::resolve_dependencies(specs);
    let mut errors = Vec::new();
    let mut daemons = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let site = Site {
            file: daemons_file,
            spec,
            index,
        };
        let ctx = DaemonContext {
            settings,
            config_dir,
            base_env,
            accounts: &accounts,
        };
        match plan_daemon(&site, &ctx, deps[index].clone()) {
            Ok(daemon) => daemons.push((index, daemon)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    for (index, name) in unknown_deps {
        let site = Site {
            file: daemons_file,
            spec: &specs[index],
            index,
        };
        errors.push(site.error("depends_on", format!("unknown daemon {name:?}")));
    }
    let start_order = order::start_order(&deps).unwrap_or_else(|cycles| {
        errors.extend(
            cycles
                .iter()
                .map(|cycle| cycle_error(daemons_file, specs, cycle)),
        );
        Vec::new()
    });
    Parts {
        daemons,
        start_order,
        errors,
    }
}

/// Appends the main command (`pidzero -- CMD ARGS`) as the last daemon to start.
///
/// Output and stdin inherited, argv used as given (no shell: it is already
/// split); its rules are `DaemonRules::main_command`.
/// Started after the sidecars and therefore stopped first.
pub fn add_main_command(
    plan: &mut Plan,
    argv: Vec<String>,
    settings: &Settings,
    base_env: &[(OsString, OsString)],
) {
    let first = argv.first().map_or("", String::as_str);
    let (program, preflight) = find_program(first, env::get_var(base_env, "PATH"));
    plan.start_order.push(plan.daemons.len());
    plan.daemons.push(DaemonPlan {
        rules: DaemonRules::main_command(settings, rules::preflight_failure(preflight, &program)),
        launch: Launch {
            argv,
            program,
            env: base_env.to_vec(),
            working_dir: None,
            user: None,
            output: OutputMode::Inherit,
            inherit_stdin: true,
            probe: None,
            route: LineRoute::default(),
            ready: rules::ReadyMode::Started,
            watchdog: None,
        },
    });
}

/// What every daemon's resolution shares.
struct DaemonContext<'a> {
    settings: &'a Settings,
    /// The directory of `daemons.json`, against which relative `working_dir`s resolve.
    config_dir: &'a Path,
    base_env: &'a [(OsString, OsString)],
    accounts: &'a Accounts,
}

/// Resolves one daemon; every field is checked so all its errors are reported at once.
fn plan_daemon(
    site: &Site,
    ctx: &DaemonContext,
    depends_on: Vec<usize>,
) -> Result<DaemonPlan, Vec<ConfigError>> {
    let spec = site.spec;
    let mut errors = Vec::new();
    let argv = command_argv(&spec.command).map_err(|e| errors.push(site.error("command", e)));
    let working_dir = resolve_working_dir(spec.working_dir.as_deref(), ctx.config_dir)
        .map_err(|e| errors.push(site.error("working_dir", e)));
    let user = spec
        .user
        .as_deref()
        .map(|u| ctx.accounts.resolve(u))
        .transpose()
        .map_err(|e| errors.push(site.error("user", e)));
    let route =
        route::line_route(spec, &ctx.settings.log).map_err(|e| errors.push(site.error("sinks", e)));
    let (Ok(argv), Ok(working_dir), Ok(user), Ok(route)) = (argv, working_dir, user, route) else {
        return Err(errors);
    };
    let mut env = env::merge_env(ctx.base_env, &spec.environment);
    if let Some(user) = &user {
        env::apply_user_vars(&mut env, user, &spec.environment);
    }
    let (program, preflight) =
        preflight::find_program_in(&argv[0], env::get_var(&env, "PATH"), working_dir.as_deref());
    Ok(DaemonPlan {
        rules: DaemonRules::of(
            spec,
            ctx.settings,
            depends_on,
            rules::preflight_failure(preflight, &program),
        ),
        launch: Launch {
            argv,
            program,
            env,
            working_dir,
            user,
            output: spec.output,
            inherit_stdin: false,
            probe: spec.health.as_ref().map(Probe::of),
            route,
            ready: spec
                .ready
                .unwrap_or(rules::ReadyMode::default_for(spec.health.is_some())),
            watchdog: spec.watchdog,
        },
    })
}

/// The argv for `command`; never empty on success, so `argv[0]` exists.
fn command_argv(command: &CommandSpec) -> Result<Vec<String>, String> {
    match command {
        CommandSpec::Line(line) => split_command(line),
        CommandSpec::Argv(argv) if argv.is_empty() => Err("command is empty".to_owned()),
        CommandSpec::Argv(argv) => Ok(argv.clone()),
    }
}

/// `working_dir` made absolute against the config dir, and checked to be a directory
/// now: a clear config error beats a spawn failure after other daemons started.
fn resolve_working_dir(dir: Option<&Path>, config_dir: &Path) -> Result<Option<PathBuf>, String> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let resolved = config_dir.join(dir);
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_dir() => Ok(Some(resolved)),
        Ok(_) => Err(format!("{} is not a directory", resolved.display())),
        Err(e) => Err(format!("{}: {e}", resolved.display())),
    }
}

/// The contents of the container's passwd and group files, read once.
struct Accounts {
    passwd: String,
    group: String,
    /// A note appended to errors when a file could not be read, since that is the
    /// likely cause of "unknown user".
    missing: Option<String>,
}

impl Accounts {
    /// Reads `passwd` and `group` from `etc_dir` only when some daemon sets `user`.
    fn read_if_needed(specs: &[DaemonSpec], etc_dir: &Path) -> Accounts {
        let mut accounts = Accounts {
            passwd: String::new(),
            group: String::new(),
            missing: None,
        };
        if specs.iter().all(|s| s.user.is_none()) {
            return accounts;
        }
        let mut notes = Vec::new();
        accounts.passwd = read_or_note(&etc_dir.join("passwd"), &mut notes);
        accounts.group = read_or_note(&etc_dir.join("group"), &mut notes);
        if !notes.is_empty() {
            accounts.missing = Some(notes.join("; "));
        }
        accounts
    }

    /// Resolves a `user` spec, pointing at an unreadable file when that is why it failed.
    fn resolve(&self, spec: &str) -> Result<UserIds, String> {
        resolve_user(spec, &self.passwd, &self.group).map_err(|e| match &self.missing {
            Some(note) => format!("{e} ({note})"),
            None => e,
        })
    }
}

/// The file's text, or empty with a note saying why it could not be read.
fn read_or_note(path: &Path, notes: &mut Vec<String>) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        let why = if e.kind() == ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            e.to_string()
        };
        notes.push(format!("{}: {why}", path.display()));
        String::new()
    })
}

/// Where one daemon's errors point: the file, and the daemon's fields' positions.
struct Site<'a> {
    file: &'a Path,
    spec: &'a DaemonSpec,
    index: usize,
}

impl Site<'_> {
    /// An error on `field`, positioned at that field, or at the daemon when unknown.
    fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let position = self.position_of(field);
        ConfigError {
            file: self.file.to_path_buf(),
            line: position.line,
            column: position.column,
            daemon: Some(self.daemon_label()),
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    fn position_of(&self, field: &str) -> Position {
        self.spec
            .field_positions
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(self.spec.position, |(_, position)| *position)
    }

    /// The daemon's name, or `#N` (1-based) if it has none, as `ConfigError` expects.
    fn daemon_label(&self) -> String {
        if self.spec.name.is_empty() {
            format!("#{}", self.index + 1)
        } else {
            self.spec.name.clone()
        }
    }
}

/// `dependency cycle: a -> b -> a`, on `depends_on` of the cycle's first daemon.
fn cycle_error(file: &Path, specs: &[DaemonSpec], cycle: &[usize]) -> ConfigError {
    let names: Vec<&str> = cycle
        .iter()
        .chain(cycle.first())
        .map(|&i| specs[i].name.as_str())
        .collect();
    let site = Site {
        file,
        spec: &specs[cycle[0]],
        index: cycle[0],
    };
    site.error(
        "depends_on",
        format!("dependency cycle: {}", names.join(" -> ")),
    )
}

#[cfg(test)]
mod tests;
