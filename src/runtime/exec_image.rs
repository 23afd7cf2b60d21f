//! Everything `execve` needs, built before the child exists.
//!
//! A child started with `clone(CLONE_VM | CLONE_VFORK)` shares pidzero's
//! memory: it must not allocate, lock or search anything. So the program path
//! (after the `PATH` search), argv, the environment and the `/bin/sh` fallback
//! for a script without `#!` are all built here in the parent, as
//! NUL-terminated strings and pointer arrays. The one thing only the child
//! knows is its own pid, which goes into `WATCHDOG_PID` for a daemon with a
//! watchdog: sd_notify clients (libsystemd's `sd_watchdog_enabled`) send
//! keep-alives only when `WATCHDOG_PID` is their own pid. The image keeps room
//! for its digits, and the child writes them in just before `execve`.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::plan::{find_program_in, PreflightError};

const WATCHDOG_PID: &[u8] = b"WATCHDOG_PID";

/// Room for any pid (at most 10 digits for an i32) and the NUL.
pub const DIGITS: usize = 11;

/// What `execvp` falls back to for a file the kernel cannot execute (ENOEXEC).
const SHELL: &CStr = c"/bin/sh";

/// The error std gives for a NUL byte in a program, argument or variable; kept
/// so that messages read as before.
fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte found in provided data",
    )
}

/// A ready-to-exec program: path, argv, environment, and the fallback through
/// `/bin/sh`. Built by [`ExecImage::new`], used by the child through
/// [`ExecImage::exec`].
pub struct ExecImage {
    /// The path to execute, or the errno the exec fails with when the `PATH`
    /// search found nothing executable (ENOENT or EACCES, as `execvp` would).
    program: Result<CString, i32>,
    /// Owns the strings `argv` and `sh_argv` point into.
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh PROGRAM ARGS…` (without argv[0]), as glibc's `execvp` runs it.
    sh_argv: Vec<*const libc::c_char>,
    /// Owns the `KEY=VALUE\0` strings `envp` points into.
    _vars: Vec<Box<[u8]>>,
    envp: Vec<*const libc::c_char>,
    /// Where the child writes its pid: DIGITS bytes after `WATCHDOG_PID=`.
    digits: Option<*mut u8>,
}

impl ExecImage {
    /// Builds the image of `program` (resolved on the environment's `PATH`
    /// relative to `cwd` when it holds no `/`), run as `argv` with `env` then
    /// `extra` (a later duplicate key wins), plus `WATCHDOG_PID` when asked.
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &[(OsString, OsString)],
        extra: &[(OsString, OsString)],
        cwd: Option<&Path>,
        watchdog_pid: bool,
    ) -> io::Result<ExecImage> {
        // No argv at all: the program's name as argv[0], as std's `Command` gives.
        let name = [program.to_string_lossy().into_owned()];
        let resolved = resolve(program, path_var(env, extra), cwd);
        let program = match resolved {
            Ok(path) => {
                Ok(CString::new(path.into_os_string().into_vec()).map_err(|_| nul_error())?)
            }
            Err(errno) => Err(errno),
        };
        let argv = if argv.is_empty() { &name[..] } else { argv };
        let args = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| nul_error())?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut sh_argv = vec![SHELL.as_ptr()];
        if let Ok(path) = &program {
            sh_argv.push(path.as_ptr());
        }
        sh_argv.extend(args.iter().skip(1).map(|a| a.as_ptr()));
        sh_argv.push(std::ptr::null());

        let mut vars = environment(env.iter().chain(extra), watchdog_pid)?;
        let mut digits = None;
        if watchdog_pid {
            let mut own = WATCHDOG_PID.to_vec();
            own.push(b'=');
            let at = own.len();
            own.resize(at + DIGITS, 0);
            let mut own = own.into_boxed_slice();
            // SAFETY: `at` is inside the buffer (DIGITS bytes follow it); the
            // boxed slice never moves or reallocates while the image lives.
            digits = Some(unsafe { own.as_mut_ptr().add(at) });
            vars.push(own);
        }
        let mut envp: Vec<*const libc::c_char> = vars.iter().map(|v| v.as_ptr().cast()).collect();
        envp.push(std::ptr::null());
        Ok(ExecImage {
            program,
            _args: args,
            argv,
            sh_argv,
            _vars: vars,
            envp,
            digits,
        })
    }

    /// In the child: writes its pid into `WATCHDOG_PID` (when the image has
    /// it) and execs, through `/bin/sh` when the kernel gives ENOEXEC (a
    /// script without `#!`), as `execvp` does. Returns only on failure, with
    /// the errno. Async-signal-safe: no allocation, no lock, no glibc state
    /// touched but errno.
    ///
    /// # Safety
    /// Call only in a child about to exec (it writes into the image's shared
    /// buffer without synchronisation).
    pub unsafe fn exec(&self) -> i32 {
        let program = match &self.program {
            Ok(program) => program,
            Err(errno) => return *errno,
        };
        if let Some(digits) = self.digits {
            // SAFETY: plain syscall, asked only when the pid is needed.
            let pid = unsafe { libc::syscall(libc::SYS_getpid) };
            let mut text = [0u8; DIGITS];
            let len = decimal(u32::try_from(pid).unwrap_or(0), &mut text);
            // SAFETY: `digits` points at DIGITS writable bytes (see `new`),
            // and len + 1 <= DIGITS.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), digits, len);
                *digits.add(len) = 0;
            }
        }
        // SAFETY: every array is NUL-terminated and points into strings this
        // image owns.
        unsafe {
            libc::execve(program.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            let errno = *libc::__errno_location();
            if errno != libc::ENOEXEC {
                return errno;
            }
            libc::execve(SHELL.as_ptr(), self.sh_argv.as_ptr(), self.envp.as_ptr());
            *libc::__errno_location()
        }
    }
}

/// The `PATH` the child's exec searches: the last one in its environment.
fn path_var<'a>(
    env: &'a [(OsString, OsString)],
    extra: &'a [(OsString, OsString)],
) -> Option<&'a OsStr> {
    env.iter()
        .chain(extra)
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str())
}

/// The path to execute for `program`: itself when it holds a `/` (the plan
/// already resolved it), else the first executable on `path_var` relative to
/// `cwd`, searched the way the plan's preflight does (a program installed
/// since the plan was made is found). The errno `execvp` would give otherwise:
/// ENOENT for nothing found, EACCES for only non-executable matches.
pub fn resolve(
    program: &Path,
    path_var: Option<&OsStr>,
    cwd: Option<&Path>,
) -> Result<PathBuf, i32> {
    let bytes = program.as_os_str().as_bytes();
    if bytes.contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let Some(name) = program.to_str() else {
        return Err(libc::ENOENT);
    };
    match find_program_in(name, path_var, cwd) {
        (path, Ok(())) => Ok(path),
        (_, Err(PreflightError::NotFound)) => Err(libc::ENOENT),
        (_, Err(PreflightError::NotExecutable)) => Err(libc::EACCES),
    }
}

/// `KEY=VALUE\0` entries sorted by key, a later duplicate replacing the
/// earlier: what std's `Command` gave after `env_clear` and `envs`. With
/// `watchdog_pid`, any inherited `WATCHDOG_PID` is left out (the child's own
/// is added last).
fn environment<'a>(
    env: impl Iterator<Item = &'a (OsString, OsString)>,
    watchdog_pid: bool,
) -> io::Result<Vec<Box<[u8]>>> {
    let mut latest: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    for (key, value) in env {
        let (key, value) = (key.as_bytes(), value.as_bytes());
        if key.contains(&0) || value.contains(&0) {
            return Err(nul_error());
        }
        if watchdog_pid && key == WATCHDOG_PID {
            continue;
        }
        latest.insert(key, value);
    }
    Ok(latest
        .into_iter()
        .map(|(key, value)| {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
            entry.extend_from_slice(key);
            entry.push(b'=');
            entry.extend_from_slice(value);
            entry.push(0);
            entry.into_boxed_slice()
        })
        .collect())
}

/// Writes `n` in decimal at the start of `out` and returns the digit count.
/// No allocation, no panic: it runs in the child.
fn decimal(mut n: u32, out: &mut [u8; DIGITS]) -> usize {
    let mut reversed = [0u8; DIGITS];
    let mut len = 0;
    while len < DIGITS - 1 {
        reversed[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (slot, digit) in out.iter_mut().zip(reversed[..len].iter().rev()) {
        *slot = *digit;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dir;
    use std::os::unix::fs::PermissionsExt;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn strings(ptrs: &[*const libc::c_char]) -> Vec<String> {
        let (last, rest) = ptrs.split_last().unwrap();
        assert!(last.is_null(), "the array ends with a null pointer");
        rest.iter()
            .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn environment_is_sorted_by_key_and_later_duplicates_win() {
        let env = os(&[("B", "2"), ("A", "1"), ("WATCHDOG_PID", "7"), ("A", "3")]);
        let vars = environment(env.iter(), false).unwrap();
        let want: Vec<&[u8]> = vec![b"A=3\0", b"B=2\0", b"WATCHDOG_PID=7\0"];
        assert_eq!(vars.iter().map(|v| &v[..]).collect::<Vec<_>>(), want);
        let vars = environment(env.iter(), true).unwrap();
        assert_eq!(
            vars.len(),
            2,
            "an inherited WATCHDOG_PID gives way to the child's own"
        );
        let err = environment(os(&[("A", "a\0b")]).iter(), false).unwrap_err();
        assert_eq!(err.to_string(), "nul byte found in provided data");
    }

    #[test]
    fn decimal_writes_any_pid() {
        for (n, text) in [(0u32, "0"), (7, "7"), (10, "10"), (4_194_304, "4194304")] {
            let mut out = [0u8; DIGITS];
            let len = decimal(n, &mut out);
            assert_eq!(&out[..len], text.as_bytes());
        }
        let mut out = [0u8; DIGITS];
        let len = decimal(u32::MAX, &mut out);
        assert_eq!(&out[..len], b"4294967295");
    }

    #[test]
    fn argv_envp_and_the_shell_fallback_are_built_before_the_child() {
        let image = ExecImage::new(
            Path::new("/bin/tool"),
            &["name0".into(), "a b".into(), "c".into()],
            &os(&[("Z", "1")]),
            &os(&[("PATH", "/x")]),
            None,
            true,
        )
        .unwrap();
        assert_eq!(image.program.as_deref(), Ok(c"/bin/tool"));
        assert_eq!(strings(&image.argv), ["name0", "a b", "c"]);
        assert_eq!(
            strings(&image.sh_argv),
            ["/bin/sh", "/bin/tool", "a b", "c"]
        );
        assert_eq!(strings(&image.envp), ["PATH=/x", "Z=1", "WATCHDOG_PID="]);
        // What the child does before execve: its pid after the `=`.
        let digits = image.digits.unwrap();
        let mut text = [0u8; DIGITS];
        let len = decimal(4242, &mut text);
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), digits, len);
        }
        assert_eq!(strings(&image.envp)[2], "WATCHDOG_PID=4242");

        let plain = ExecImage::new(Path::new("/bin/tool"), &[], &[], &[], None, false).unwrap();
        assert_eq!(
            strings(&plain.argv),
            ["/bin/tool"],
            "argv[0] defaults to the program"
        );
        assert!(plain.digits.is_none());
        assert_eq!(strings(&plain.envp), Vec::<String>::new());
        assert!(ExecImage::new(
            Path::new("/bin/tool"),
            &["a\0".into()],
            &[],
            &[],
            None,
            false
        )
        .is_err());
    }

    #[test]
    fn bare_names_are_searched_on_the_child_path_relative_to_its_directory() {
        let root = Dir::new("exec-image");
        std::fs::create_dir_all(root.p("bin")).unwrap();
        std::fs::create_dir_all(root.p("off")).unwrap();
        let tool = root.p("bin/tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = root.p("off/plain");
        std::fs::write(&plain, "").unwrap();
        let path = std::env::join_paths([root.p("off"), root.p("bin")]).unwrap();

        assert_eq!(resolve(Path::new("tool"), Some(&path), None), Ok(tool));
        assert_eq!(
            resolve(Path::new("plain"), Some(&path), None),
            Err(libc::EACCES)
        );
        assert_eq!(
            resolve(Path::new("none"), Some(&path), None),
            Err(libc::ENOENT)
        );
        // A relative PATH entry is looked up from the working directory.
        assert_eq!(
            resolve(Path::new("tool"), Some(OsStr::new("bin")), Some(&root.path)),
            Ok(PathBuf::from("bin/tool"))
        );
        // A path is taken as given (already resolved by the plan).
        assert_eq!(
            resolve(Path::new("./x"), None, None),
            Ok(PathBuf::from("./x"))
        );
        // The image takes the PATH from the child's environment, the last one winning.
        let env = os(&[("PATH", "/nowhere"), ("PATH", path.to_str().unwrap())]);
        let image =
            ExecImage::new(Path::new("tool"), &["tool".into()], &env, &[], None, false).unwrap();
        assert_eq!(
            image.program.as_deref(),
            Ok(CString::new(root.p("bin/tool").into_os_string().into_vec())
                .unwrap()
                .as_c_str())
        );
        let missing =
            ExecImage::new(Path::new("none"), &["none".into()], &env, &[], None, false).unwrap();
        assert_eq!(missing.program, Err(libc::ENOENT));
        assert_eq!(unsafe { missing.exec() }, libc::ENOENT);
    }
}
