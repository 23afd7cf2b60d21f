//! Where pidzero finds `daemons.json` and `config.json` when no option says:
//! beside its own executable, so an image needs only `COPY pidzero
//! daemons.json /opt/`. An installed pidzero (`/usr/bin/pidzero` from the
//! `.deb`) looks in `/etc/pidzero` instead, where packages keep their
//! configuration, unless a `daemons.json` does sit beside it.

use std::path::{Path, PathBuf};

/// Directories a package manager or an image's `COPY` installs programs
/// into; configuration never belongs there.
pub const SYSTEM_BIN_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// The config dir of an installed pidzero.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/pidzero";

/// The config dir and the two file paths, with their defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub daemons: PathBuf,
    pub config: PathBuf,
}

impl Paths {
    /// Applies the defaults to what the options gave: the config dir from
    /// [`default_config_dir`], each file in the config dir.
    pub fn resolve(
        config_dir: Option<&Path>,
        daemons: Option<&Path>,
        config: Option<&Path>,
    ) -> Result<Paths, String> {
        let config_dir = match config_dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                let exe_dir = executable_dir()?;
                default_config_dir(&exe_dir, |dir| dir.join("daemons.json").exists())
            }
        };
        Ok(Paths {
            daemons: daemons.map_or_else(|| config_dir.join("daemons.json"), Path::to_path_buf),
            config: config.map_or_else(|| config_dir.join("config.json"), Path::to_path_buf),
            config_dir,
        })
    }
}

/// The executable's own directory, except for a system program directory
/// without a `daemons.json` of its own: then [`SYSTEM_CONFIG_DIR`].
/// `has_daemons_file` is the filesystem question, asked only for those.
pub fn default_config_dir(exe_dir: &Path, has_daemons_file: impl Fn(&Path) -> bool) -> PathBuf {
    let system = SYSTEM_BIN_DIRS.iter().any(|d| exe_dir == Path::new(d));
    if system && !has_daemons_file(exe_dir) {
        PathBuf::from(SYSTEM_CONFIG_DIR)
    } else {
        exe_dir.to_path_buf()
    }
}

/// The directory holding the running executable: via `/proc/self/exe`, or,
/// where `/proc` is not mounted yet (a scratch image run by a runtime that
/// mounts it later, a chroot), via `argv[0]`: a path, or a name on `PATH`.
fn executable_dir() -> Result<PathBuf, String> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => std::env::args_os()
            .next()
            .and_then(|argv0| executable_from_argv0(Path::new(&argv0)))
            .ok_or_else(|| {
                format!(
                    "cannot find the pidzero executable to locate its config dir: {e}; use --config-dir"
                )
            })?,
    };
    Ok(exe.parent().unwrap_or(Path::new("/")).to_path_buf())
}

/// `argv0` as a file: itself when it holds a `/`, else the first file of
/// that name in a `PATH` directory (as the shell that started us found it).
fn executable_from_argv0(argv0: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if argv0.as_os_str().as_bytes().contains(&b'/') {
        return argv0.is_file().then(|| argv0.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(argv0))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_the_executable_unless_installed_as_a_system_program() {
        let none = |_: &Path| false;
        let some = |_: &Path| true;
        assert_eq!(
            default_config_dir(Path::new("/opt"), none),
            Path::new("/opt")
        );
        assert_eq!(default_config_dir(Path::new("/"), none), Path::new("/"));
        assert_eq!(
            default_config_dir(Path::new("/usr/bin"), none),
            Path::new("/etc/pidzero")
        );
        assert_eq!(
            default_config_dir(Path::new("/usr/local/bin"), none),
            Path::new("/etc/pidzero")
        );
        // An image that followed "beside the executable" keeps working.
        assert_eq!(
            default_config_dir(Path::new("/usr/local/bin"), some),
            Path::new("/usr/local/bin")
        );
        assert_eq!(
            default_config_dir(Path::new("/usr/bin/x"), none),
            Path::new("/usr/bin/x")
        );
    }

    #[test]
    fn options_win_over_the_defaults() {
        let paths = Paths::resolve(
            Some(Path::new("/cfg")),
            Some(Path::new("/elsewhere/d.json")),
            None,
        )
        .unwrap();
        assert_eq!(paths.config_dir, Path::new("/cfg"));
        assert_eq!(paths.daemons, Path::new("/elsewhere/d.json"));
        assert_eq!(paths.config, Path::new("/cfg/config.json"));
    }

    #[test]
    fn argv0_with_a_slash_is_that_file() {
        assert_eq!(
            executable_from_argv0(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            executable_from_argv0(Path::new("/nonexistent/pidzero")),
            None
        );
    }
}
