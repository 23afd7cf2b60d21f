//! Finding a daemon's executable before anything starts (§5 preflight).
//!
//! The check mirrors what `execve`/`execvp` would report, so that a vital daemon
//! that cannot run makes pidzero exit 127/126 before starting anything, instead of
//! half-starting a container.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Searched when neither the daemon nor pidzero has a `PATH` (the usual Linux default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a command cannot be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightError {
    /// No such file (exec gives ENOENT): exit status 127, as a shell would.
    NotFound,
    /// Exists but cannot be executed (exec gives EACCES): exit status 126.
    NotExecutable,
}

impl PreflightError {
    /// The exit status a shell uses for this failure, which pidzero reuses (§9).
    pub fn exit_code(self) -> i32 {
        crate::exit::unstartable_status(self == PreflightError::NotFound)
    }
}

/// Resolves `name` like `execvp` would, relative to pidzero's own cwd.
///
/// See `find_program_in`; `path_var` is the daemon's `PATH`, `None` when unset.
pub fn find_program(name: &str, path_var: Option<&OsStr>) -> (PathBuf, Result<(), PreflightError>) {
    find_program_in(name, path_var, None)
}

/// Resolves `name` to the path that will be executed, and whether it can be.
///
/// A name with `/` is taken as given (checked relative to `cwd` when relative, as
/// it will be after `chdir`). Otherwise each `PATH` entry is tried in order (an empty
/// entry meaning the current directory, as in POSIX); the first executable regular
/// file wins. When only non-executable matches exist, the first of them is returned
/// with `NotExecutable` (execvp reports EACCES then); when nothing matches, the name
/// itself with `NotFound`.
pub fn find_program_in(
    name: &str,
    path_var: Option<&OsStr>,
    cwd: Option<&Path>,
) -> (PathBuf, Result<(), PreflightError>) {
    if name.is_empty() {
        return (PathBuf::new(), Err(PreflightError::NotFound));
    }
    if name.contains('/') {
        let program = PathBuf::from(name);
        let verdict = check_executable(&anchored(cwd, &program));
        return (program, verdict);
    }
    let path_var = path_var.unwrap_or_else(|| OsStr::new(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in std::env::split_paths(path_var) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(name);
        match check_executable(&anchored(cwd, &candidate)) {
            Ok(()) => return (candidate, Ok(())),
            Err(PreflightError::NotExecutable) => {
                not_executable.get_or_insert(candidate);
            }
            Err(PreflightError::NotFound) => {}
        }
    }
    match not_executable {
        Some(candidate) => (candidate, Err(PreflightError::NotExecutable)),
        None => (PathBuf::from(name), Err(PreflightError::NotFound)),
    }
}

/// Whose `PATH` a bare command name was looked up on, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource {
    /// The daemon's `environment` sets `PATH`.
    Daemon,
    /// pidzero's own environment's.
    Pidzero,
    /// Neither has one: `DEFAULT_PATH`.
    Default,
}

/// Why `name` (resolved to `program`, which failed preflight) cannot be
/// executed, in words a user can act on: which file is missing, which `PATH`
/// was searched, or what the file is instead of an executable.
pub fn explain(
    name: &str,
    program: &Path,
    path_var: Option<&OsStr>,
    source: PathSource,
    cwd: Option<&Path>,
) -> String {
    let shown = program.display();
    match check_executable(&anchored(cwd, program)) {
        Ok(()) => format!("{shown} is executable now"),
        Err(PreflightError::NotFound) if name.is_empty() => "command is empty".to_owned(),
        Err(PreflightError::NotFound) if name.contains('/') => {
            format!("command not found: {shown} does not exist")
        }
        Err(PreflightError::NotFound) => {
            let whose = match source {
                PathSource::Daemon => "the daemon's own PATH",
                PathSource::Pidzero => "pidzero's PATH",
                PathSource::Default => "the default PATH",
            };
            let path = path_var.unwrap_or_else(|| OsStr::new(DEFAULT_PATH));
            format!(
                "command not found: {name} is in no directory of {whose} ({})",
                path.to_string_lossy()
            )
        }
        Err(PreflightError::NotExecutable) => {
            let what = match std::fs::metadata(anchored(cwd, program)) {
                Ok(meta) if meta.is_dir() => "is a directory",
                Ok(meta) if !meta.is_file() => "is not a regular file",
                Ok(_) => "has no execute permission",
                Err(_) => "cannot be reached (permission denied on the way)",
            };
            format!("command not executable: {shown} {what}")
        }
    }
}

/// `path` as seen from `cwd` (relative paths are resolved by the kernel after `chdir`).
fn anchored(cwd: Option<&Path>, path: &Path) -> PathBuf {
    match cwd {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Whether `path` is a regular file with an execute bit, following symlinks.
///
/// Directories and other non-regular files are `NotExecutable`, as exec gives EACCES
/// for them; a permission error on the way there is EACCES too.
fn check_executable(path: &Path) -> Result<(), PreflightError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(PreflightError::NotExecutable)
        }
        Err(_) => return Err(PreflightError::NotFound),
    };
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(PreflightError::NotExecutable)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::Dir;
    use std::ffi::OsString;
    use std::fs;

    pub(crate) fn write_file(path: &Path, mode: u32) {
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn exit_codes() {
        assert_eq!(PreflightError::NotFound.exit_code(), 127);
        assert_eq!(PreflightError::NotExecutable.exit_code(), 126);
    }

    #[test]
    fn first_executable_on_path_wins() {
        let root = Dir::new("found");
        let (a, b) = (root.p("a"), root.p("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        write_file(&a.join("tool"), 0o644);
        write_file(&b.join("tool"), 0o755);
        let path = path_of(&[&a, &b]);
        assert_eq!(find_program("tool", Some(&path)), (b.join("tool"), Ok(())));
    }

    #[test]
    fn only_non_executable_matches() {
        let root = Dir::new("noexec");
        write_file(&root.p("tool"), 0o644);
        let path = path_of(&[root.path.as_path()]);
        assert_eq!(
            find_program("tool", Some(&path)),
            (root.p("tool"), Err(PreflightError::NotExecutable))
        );
    }

    #[test]
    fn directory_is_not_executable() {
        let root = Dir::new("dir");
        fs::create_dir_all(root.p("tool")).unwrap();
        let path = path_of(&[root.path.as_path()]);
        assert_eq!(
            find_program("tool", Some(&path)).1,
            Err(PreflightError::NotExecutable)
        );
        let explicit = root.p("tool");
        let explicit = explicit.to_str().unwrap();
        assert_eq!(
            find_program(explicit, None).1,
            Err(PreflightError::NotExecutable)
        );
    }

    #[test]
    fn not_found_returns_the_name() {
        let root = Dir::new("none");
        let path = path_of(&[root.path.as_path()]);
        assert_eq!(
            find_program("tool", Some(&path)),
            (PathBuf::from("tool"), Err(PreflightError::NotFound))
        );
        assert_eq!(find_program("", None).1, Err(PreflightError::NotFound));
    }

    #[test]
    fn explicit_path_is_checked_directly() {
        let root = Dir::new("explicit");
        write_file(&root.p("run"), 0o700);
        let run = root.p("run");
        let run = run.to_str().unwrap();
        // PATH is irrelevant for a name containing '/'.
        assert_eq!(
            find_program(run, Some(OsStr::new(""))),
            (PathBuf::from(run), Ok(()))
        );
        let missing = root.p("missing");
        assert_eq!(
            find_program(missing.to_str().unwrap(), None).1,
            Err(PreflightError::NotFound)
        );
    }

    #[test]
    fn relative_path_is_checked_against_cwd() {
        let root = Dir::new("relative");
        fs::create_dir_all(root.p("bin")).unwrap();
        write_file(&root.p("bin/run"), 0o755);
        assert_eq!(
            find_program_in("bin/run", None, Some(&root.path)),
            (PathBuf::from("bin/run"), Ok(()))
        );
        assert_eq!(
            find_program_in("./bin/nope", None, Some(&root.path)).1,
            Err(PreflightError::NotFound)
        );
    }

    #[test]
    fn empty_path_entry_is_the_working_dir() {
        let root = Dir::new("emptyentry");
        write_file(&root.p("tool"), 0o755);
        assert_eq!(
            find_program_in("tool", Some(OsStr::new("/nonexistent:")), Some(&root.path)),
            (PathBuf::from("./tool"), Ok(()))
        );
    }

    #[test]
    fn file_as_path_entry_is_skipped() {
        let root = Dir::new("fileentry");
        write_file(&root.p("notadir"), 0o755);
        fs::create_dir_all(root.p("bin")).unwrap();
        write_file(&root.p("bin/tool"), 0o755);
        let path = path_of(&[&root.p("notadir"), &root.p("bin")]);
        assert_eq!(
            find_program("tool", Some(&path)),
            (root.p("bin/tool"), Ok(()))
        );
    }

    #[test]
    fn explanations_name_the_file_and_the_path_searched() {
        let root = Dir::new("explain");
        fs::create_dir_all(root.p("dir")).unwrap();
        write_file(&root.p("plain"), 0o644);
        let path = path_of(&[root.path.as_path()]);
        let missing = root.p("missing");
        assert_eq!(
            explain("x/y", &missing, None, PathSource::Default, None),
            format!("command not found: {} does not exist", missing.display())
        );
        assert_eq!(
            explain(
                "nope",
                Path::new("nope"),
                Some(&path),
                PathSource::Daemon,
                None
            ),
            format!(
                "command not found: nope is in no directory of the daemon's own PATH ({})",
                root.path.display()
            )
        );
        assert!(
            explain("nope", Path::new("nope"), None, PathSource::Default, None)
                .ends_with(&format!("the default PATH ({DEFAULT_PATH})"))
        );
        let dir = root.p("dir");
        assert!(explain("d", &dir, None, PathSource::Pidzero, None).ends_with("is a directory"));
        let plain = root.p("plain");
        assert!(explain("p", &plain, None, PathSource::Pidzero, None)
            .ends_with("has no execute permission"));
    }

    #[test]
    fn default_path_when_unset() {
        // /bin/sh exists on every system these tests run on.
        let (program, verdict) = find_program("sh", None);
        assert_eq!(verdict, Ok(()));
        assert!(program.is_absolute());
    }
}
