//! pidzero's command line: run the daemons (the default), check the configuration,
//! or talk to a running pidzero over its control API (status, health, start, ...).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use pidzero::api::LogSource;
use pidzero::client;
use pidzero::config::SocketSetting;
use pidzero::config::{self, ConfigError};
use pidzero::config_dir::Paths;
use pidzero::exit;
use pidzero::log::sink;
use pidzero::log::writer::{self, WriterOptions};
use pidzero::plan;
use pidzero::runtime::reload::ApiTargets;
use pidzero::runtime::{self, process, signals, ApiSetup};
use std::sync::Arc;

/// A container's PID 1: runs the daemons of daemons.json, turns their output
/// into structured logs, forwards signals, reaps zombies and fails fast when a
/// vital daemon stops.
#[derive(Parser, Debug)]
#[command(
    name = "pidzero",
    version,
    subcommand_value_name = "SUBCOMMAND",
    subcommand_help_heading = "Subcommands",
    after_help = "Environment: PIDZERO_LOG_FORMAT (json, map, logfmt, text) overrides log.format; \
                  the options above name their own variables. Reference: docs/cli.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    files: FileOptions,
    #[command(flatten)]
    api: ApiOptions,
    /// Say why the control socket could not be served even where pidzero is
    /// otherwise silent (a main command without daemons.json), like tini's -v.
    #[arg(short, long)]
    verbose: bool,
    /// Exit 0 where pidzero would exit CODE (tini's -e); may be repeated.
    #[arg(short = 'e', long = "remap-exit", value_name = "CODE")]
    remap_exit: Vec<u8>,
    /// Have the kernel send SIGNAL (a name such as KILL or TERM, or a number) to
    /// pidzero when its parent dies (tini's -p), e.g. when not run as PID 1.
    #[arg(short = 'p', long = "parent-death-signal", value_name = "SIGNAL")]
    parent_death_signal: Option<String>,
    /// Run COMMAND as the vital main process (like tini), with daemons.json as sidecars.
    #[arg(last = true, value_name = "COMMAND")]
    main_command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report every problem a run would refuse to start on (files, programs,
    /// users, directories, log file, control socket), start nothing (exit 0 or 2).
    Check(CheckOptions),
    /// Show the daemons of a running pidzero as a table.
    Status {
        /// Print the API's JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Exit 0 when the running pidzero is healthy, 1 when not, 2 when it does not answer.
    Health {
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Start a daemon that is not running.
    Start {
        /// The daemon's name, as in daemons.json.
        name: String,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Stop a daemon (its stop signal, then SIGKILL after its stop_timeout).
    Stop {
        /// The daemon's name, as in daemons.json.
        name: String,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Stop a daemon and start it again.
    Restart {
        /// The daemon's name, as in daemons.json.
        name: String,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Send a signal (HUP, SIGUSR1, 10, ...) to a daemon's process group.
    Signal {
        /// The daemon's name, as in daemons.json.
        name: String,
        /// A signal name (HUP, SIGUSR1) or number (10).
        signal: String,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Print the last records a daemon logged; or, with --reopen, make
    /// pidzero reopen its log file (after logrotate renamed it).
    Logs {
        /// The daemon's name, as in daemons.json (not with --reopen).
        #[arg(required_unless_present = "reopen")]
        name: Option<String>,
        /// Close the log file and open its path again, so that the next
        /// records go to a new file (for logrotate without copytruncate).
        #[arg(long, conflicts_with_all = ["name", "lines"])]
        reopen: bool,
        /// How many records (at most 1000 are kept).
        #[arg(short = 'n', long = "lines", default_value_t = pidzero::api::DEFAULT_LOG_LINES)]
        lines: usize,
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Make the running pidzero read daemons.json and config.json again and
    /// apply the difference (SIGHUP does not: it is forwarded to the daemons).
    Reload {
        #[command(flatten)]
        api: ClientOptions,
    },
    /// Ask the running pidzero to stop every daemon and exit.
    Shutdown {
        #[command(flatten)]
        api: ClientOptions,
    },
}

/// `pidzero check`'s options: the files and the socket a run would use, and
/// no client options (it talks to no running pidzero).
#[derive(Args, Debug, Clone)]
struct CheckOptions {
    #[command(flatten)]
    files: FileOptions,
    /// The control socket a run would listen on (else PIDZERO_SOCKET) [default: /run/pidzero.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the findings on stdout as one JSON array, one object per line
    /// (file, line, column, daemon, field, message, severity); `[]` when none.
    #[arg(long)]
    json: bool,
}

/// Where the control API is: the run mode listens there, the client commands
/// connect. Given before the subcommand (`pidzero --url URL status`); client
/// subcommands take them after their name too ([`ClientOptions`]). Not
/// global, so that `check`, which talks to no pidzero, does not offer them.
#[derive(Args, Debug, Clone)]
struct ApiOptions {
    /// The control socket [default: /run/pidzero.sock]
    #[arg(long, env = "PIDZERO_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Client commands: connect to pidzero's TCP API (api.listen) instead of the socket.
    #[arg(long, env = "PIDZERO_URL", value_name = "URL")]
    url: Option<String>,
    /// The API token for TCP: the one a client sends with --url, and the one the
    /// run mode requires (wins over api.token).
    #[arg(
        long,
        env = "PIDZERO_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
}

/// [`ApiOptions`] given after a client subcommand's name. They read no
/// environment variable here: the top level's do, so that an option given
/// before the subcommand still wins over the variable.
#[derive(Args, Debug, Clone)]
struct ClientOptions {
    /// The control socket (else PIDZERO_SOCKET) [default: /run/pidzero.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Connect to pidzero's TCP API (api.listen) instead of the socket (else PIDZERO_URL).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The API token to send with --url (else PIDZERO_API_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

impl ClientOptions {
    /// These options, each falling back to the top level's (`pidzero --url X
    /// status`), which fall back to the environment.
    fn or(self, top: &ApiOptions) -> ApiOptions {
        ApiOptions {
            socket: self.socket.or_else(|| top.socket.clone()),
            url: self.url.or_else(|| top.url.clone()),
            token: self.token.or_else(|| top.token.clone()),
        }
    }
}

#[derive(Args, Debug, Clone)]
struct FileOptions {
    /// Directory holding daemons.json and config.json [default: the directory of the pidzero executable; /etc/pidzero when that is /usr/bin or another system program directory without a daemons.json]
    #[arg(long, env = "PIDZERO_CONFIG_DIR", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// The daemons file [default: CONFIG_DIR/daemons.json]
    #[arg(long, env = "PIDZERO_DAEMONS", value_name = "FILE")]
    daemons: Option<PathBuf>,
    /// The settings file [default: CONFIG_DIR/config.json]
    #[arg(long, env = "PIDZERO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl FileOptions {
    /// These options, each falling back to `other`'s (`pidzero --config-dir X check`).
    fn or(&self, other: &FileOptions) -> FileOptions {
        FileOptions {
            config_dir: self.config_dir.clone().or_else(|| other.config_dir.clone()),
            daemons: self.daemons.clone().or_else(|| other.daemons.clone()),
            config: self.config.clone().or_else(|| other.config.clone()),
        }
    }
}

/// Configuration and usage errors: nothing was started.
fn usage_error() -> ExitCode {
    ExitCode::from(exit::process_code(exit::USAGE_ERROR))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                usage_error()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (client_command, api) = match cli.command {
        Some(Command::Check(options)) => return check(&options, &cli.files, &cli.api),
        None => {
            let tini = TiniOptions {
                verbose: cli.verbose,
                remap_exit: cli.remap_exit,
                parent_death_signal: cli.parent_death_signal,
            };
            return run(&cli.files, &cli.api, &tini, cli.main_command);
        }
        Some(Command::Status { json, api }) => (client::Command::Status { json }, api),
        Some(Command::Health { api }) => (client::Command::Health, api),
        Some(Command::Start { name, api }) => (client::Command::Start(name), api),
        Some(Command::Stop { name, api }) => (client::Command::Stop(name), api),
        Some(Command::Restart { name, api }) => (client::Command::Restart(name), api),
        Some(Command::Signal { name, signal, api }) => (client::Command::Signal(name, signal), api),
        Some(Command::Logs {
            name,
            lines,
            reopen,
            api,
        }) => match name {
            Some(name) if !reopen => (client::Command::Logs(name, lines), api),
            _ => (client::Command::ReopenLogs, api),
        },
        Some(Command::Shutdown { api }) => (client::Command::Shutdown, api),
        Some(Command::Reload { api }) => (client::Command::Reload, api),
    };
    match client_options(&api.or(&cli.api)) {
        Ok(options) => ExitCode::from(client::run(&options, &client_command)),
        Err(e) => {
            eprintln!("pidzero: {e}");
            usage_error()
        }
    }
}

/// `--url` (with `--token`) when given, else the socket.
fn client_options(api: &ApiOptions) -> Result<client::Options, String> {
    let endpoint = match &api.url {
        Some(url) => client::Endpoint::from_url(url)?,
        None => client::Endpoint::Unix(
            api.socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(client::DEFAULT_SOCKET)),
        ),
    };
    Ok(client::Options {
        endpoint,
        token: pidzero::api::pick_token(api.token.clone(), None),
    })
}

fn resolve_paths(files: &FileOptions) -> Result<Paths, String> {
    Paths::resolve(
        files.config_dir.as_deref(),
        files.daemons.as_deref(),
        files.config.as_deref(),
    )
}

fn log_format_override() -> Option<String> {
    std::env::var(config::FORMAT_VARIABLE).ok()
}

/// Loads both files and builds the plan; every problem is returned.
fn load_plan(
    paths: &Paths,
    main_command: &[OsString],
) -> Result<(config::Config, plan::Plan), Vec<ConfigError>> {
    let has_main = !main_command.is_empty();
    let format = log_format_override();
    let config = config::load(
        &paths.daemons,
        &paths.config,
        &paths.config_dir,
        has_main,
        format.as_deref(),
    )?;
    let base_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut plan = build_plan(&config.daemons, &config.settings, paths, &base_env)?;
    if has_main {
        let argv = main_command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        plan::add_main_command(&mut plan, argv, &config.settings, &base_env);
    }
    Ok((config, plan))
}

fn build_plan(
    specs: &[config::DaemonSpec],
    settings: &config::Settings,
    paths: &Paths,
    base_env: &[(OsString, OsString)],
) -> Result<plan::Plan, Vec<ConfigError>> {
    plan::build(specs, settings, &paths.daemons, base_env, Path::new("/etc"))
}

fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("pidzero: {e}");
    }
}

/// `pidzero check`: see `pidzero::check`. Options given before `check`
/// (`pidzero --config-dir X --socket S check`) count too.
fn check(options: &CheckOptions, files: &FileOptions, api: &ApiOptions) -> ExitCode {
    use pidzero::check::{self as preflight, Problem, Severity};
    let paths = match resolve_paths(&options.files.or(files)) {
        Ok(p) => p,
        Err(e) if options.json => {
            // Still one JSON document on stdout, for the pipeline's `jq`.
            let problem = Problem::detached(None).with(Severity::Error, e);
            return print_check(&preflight::json(&[problem]), "", 1);
        }
        Err(e) => {
            eprintln!("pidzero: {e}");
            return usage_error();
        }
    };
    let format = log_format_override();
    let base_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let socket = options.socket.clone().or_else(|| api.socket.clone());
    let inputs = preflight::Inputs {
        daemons_file: &paths.daemons,
        config_file: &paths.config,
        config_dir: &paths.config_dir,
        format_override: format.as_deref(),
        socket_option: socket.as_deref(),
        default_socket: Path::new(client::DEFAULT_SOCKET),
        base_env: &base_env,
        etc_dir: Path::new("/etc"),
    };
    let report = preflight::run(&inputs, &preflight::System);
    if options.json {
        print_check(&preflight::json(&report.problems), "", report.errors())
    } else {
        let shown = preflight::human(&report);
        print_check(&Ok(shown.stdout), &shown.stderr, report.errors())
    }
}

/// Writes what `check` found; exit 2 when there are `errors`. Not `print!`:
/// it panics on a closed stdout. A report that could not be written (a full
/// disk under `check --json > report.json`) exits 1, so a pipeline does not
/// take the missing report for a clean one.
fn print_check(
    stdout: &Result<String, serde_json::Error>,
    stderr: &str,
    errors: usize,
) -> ExitCode {
    let failure = || ExitCode::from(exit::process_code(exit::FAILURE));
    match stdout {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                eprintln!("pidzero: cannot write the report to stdout: {e}");
                return failure();
            }
        }
        Err(e) => {
            eprintln!("pidzero: cannot write the report as JSON: {e}");
            return failure();
        }
    }
    let _ = std::io::stderr().write_all(stderr.as_bytes());
    if errors > 0 {
        usage_error()
    } else {
        ExitCode::SUCCESS
    }
}

/// Where the run mode's control API listens: `api.socket: null` turns the
/// socket off; else `--socket`/`PIDZERO_SOCKET`, then `api.socket`, then the default.
/// `warn_if_unavailable`: whether a default socket that cannot be bound is
/// worth a warning (not in the silent main-command mode, unless `-v`).
fn api_setup(
    api: &ApiOptions,
    settings: &config::Settings,
    logs: Arc<dyn LogSource>,
    warn_if_unavailable: bool,
) -> ApiSetup {
    let (targets, socket_is_default) = api_targets(api, settings);
    ApiSetup {
        socket: targets.socket,
        socket_is_default,
        warn_if_unavailable,
        tcp: targets.tcp,
        token: targets.token,
        logs,
    }
}

/// The socket, TCP address and token of the control API, and whether the
/// socket is the default one (nobody chose it). At startup and at each reload.
fn api_targets(api: &ApiOptions, settings: &config::Settings) -> (ApiTargets, bool) {
    let (socket, socket_is_default) = match (&settings.api.socket, &api.socket) {
        (SocketSetting::Off, _) => (None, false),
        (_, Some(cli)) => (Some(cli.clone()), false),
        (SocketSetting::Path(path), None) => (Some(path.clone()), false),
        (SocketSetting::Default, None) => (Some(PathBuf::from(client::DEFAULT_SOCKET)), true),
    };
    let targets = ApiTargets {
        socket,
        // Validated by the config layer as an IP address and port.
        tcp: settings.api.listen.as_deref().and_then(|a| a.parse().ok()),
        token: pidzero::api::pick_token(api.token.clone(), settings.api.token.as_deref()),
    };
    (targets, socket_is_default)
}

/// How a running pidzero reloads: the startup's own loading and checks,
/// plus the refusal a start would make for a vital daemon whose executable
/// is missing (exit 127/126 at startup; an error naming it here).
fn reloading(
    paths: &Paths,
    main_command: &[OsString],
    api: &ApiOptions,
    settings: &config::Settings,
) -> runtime::reload::Reloading {
    let (paths, main_command, options) = (paths.clone(), main_command.to_vec(), api.clone());
    let loader = move || {
        let to_lines = |errors: Vec<ConfigError>| errors.iter().map(|e| e.to_string()).collect();
        let (config, plan) = load_plan(&paths, &main_command).map_err(to_lines)?;
        let refused = vital_preflight_errors(&config, &plan, &paths);
        if !refused.is_empty() {
            return Err(to_lines(refused));
        }
        let (api, _) = api_targets(&options, &config.settings);
        Ok(runtime::reload::Loaded {
            plan,
            log: config.settings.log,
            api,
            shutdown_timeout: config.settings.shutdown_timeout,
        })
    };
    runtime::reload::Reloading {
        loader: Box::new(loader),
        api: api_targets(api, settings).0,
        log: settings.log.clone(),
    }
}

/// The preflight problems (as `pidzero check` words them) of the vital
/// daemons of daemons.json whose executable is missing or not executable.
fn vital_preflight_errors(
    config: &config::Config,
    plan: &plan::Plan,
    paths: &Paths,
) -> Vec<ConfigError> {
    let refused: Vec<&str> = plan
        .daemons
        .iter()
        .filter(|d| d.rules.vital && !d.rules.is_main && d.rules.preflight_failure.is_some())
        .map(|d| d.rules.name.as_str())
        .collect();
    if refused.is_empty() {
        return Vec::new();
    }
    let base_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    plan::check(
        &config.daemons,
        &config.settings,
        &paths.daemons,
        &base_env,
        Path::new("/etc"),
    )
    .problems
    .into_iter()
    .filter(|e| e.field.as_deref() == Some("command"))
    .filter(|e| e.daemon.as_deref().is_some_and(|d| refused.contains(&d)))
    .collect()
}

/// The run mode's options that tini users know: `-v`, `-e CODE`, `-p SIGNAL`.
struct TiniOptions {
    verbose: bool,
    remap_exit: Vec<u8>,
    parent_death_signal: Option<String>,
}

fn run(
    files: &FileOptions,
    api: &ApiOptions,
    tini: &TiniOptions,
    main_command: Vec<OsString>,
) -> ExitCode {
    // Before anything opens a file (see there).
    sink::note_closed_standard_fds();
    if let Some(name) = &tini.parent_death_signal {
        let Some(signal) = pidzero::config::signal::parse_signal(name)
            .and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
        else {
            eprintln!(
                "pidzero: -p: unknown signal `{name}`; expected a name such as KILL or a number"
            );
            return usage_error();
        };
        if let Err(e) = nix::sys::prctl::set_pdeathsig(signal) {
            eprintln!("pidzero: -p {name}: {e}");
            return usage_error();
        }
    }
    // Before any thread exists, so every thread inherits the full mask.
    let inherited = match signals::block_all() {
        Ok(mask) => mask,
        Err(e) => {
            eprintln!("pidzero: cannot block signals: {e}");
            return ExitCode::from(exit::process_code(exit::FAILURE));
        }
    };
    process::cloexec_inherited_fds();
    let paths = match resolve_paths(files) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pidzero: {e}");
            return usage_error();
        }
    };
    let (config, plan) = match load_plan(&paths, &main_command) {
        Ok(loaded) => loaded,
        Err(errors) => {
            print_errors(&errors);
            return usage_error();
        }
    };
    process::become_subreaper();
    // A main command without daemons.json is a drop-in for tini: no output of our own.
    let quiet = !main_command.is_empty() && config.daemons.is_empty();
    let options = WriterOptions {
        settings: config.settings.log.clone(),
        quiet,
    };
    let (log, log_writer) = match writer::start(options) {
        Ok(started) => started,
        Err(e) => {
            eprintln!(
                "pidzero: cannot open the log file {}: {e}",
                config.settings.log.file_path.display()
            );
            return usage_error();
        }
    };
    // The default socket is a convenience: in the silent mode its absence
    // (no writable /run in a non-root image) is no news unless asked for.
    let api_options = api;
    let api = api_setup(
        api_options,
        &config.settings,
        Arc::new(log.clone()),
        !quiet || tini.verbose,
    );
    let log_exit = runtime::LogExit {
        give_up: log_writer.give_up_handle(),
        shutdown_timeout: config.settings.shutdown_timeout,
    };
    let reloading = reloading(&paths, &main_command, api_options, &config.settings);
    let status = runtime::run(plan, log.clone(), inherited, api, log_exit, Some(reloading));
    let losses = log_writer.finish(&log);
    if let Some(line) = writer::describe_losses(&losses) {
        writer::tell_stderr(&line);
    }
    let code = exit::process_code(status);
    ExitCode::from(if tini.remap_exit.contains(&code) {
        0
    } else {
        code
    })
}
