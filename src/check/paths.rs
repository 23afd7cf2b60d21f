//! Whether a run could open its log file, bind its control socket and listen
//! on TCP, decided from a description of the filesystem ([`Filesystem`]), so
//! that every case is a unit test with a fake; `probe.rs` looks at the real one.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::problem::Severity;

/// What is at a path, as far as opening a file or binding a socket there cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    /// `writable`: pidzero may create entries in it (write and search permission).
    Dir {
        writable: bool,
    },
    File {
        writable: bool,
    },
    Socket,
    /// A FIFO or a device.
    Special {
        writable: bool,
    },
    /// It cannot be looked at (no search permission on the way, a file used as
    /// a directory, a symbolic link loop): why.
    Unreachable(String),
}

/// The questions the checks ask of the system.
pub trait Filesystem {
    /// What is at `path`, following symbolic links.
    fn entry(&self, path: &Path) -> Entry;
    /// Whether a TCP listener can be bound at `addr` now (the kind and text of
    /// the error when not).
    fn listen(&self, addr: SocketAddr) -> Result<(), (ErrorKind, String)>;
}

/// The longest Unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = crate::config::log_net::MAX_UNIX_SOCKET_PATH;

/// The directory that holds `path`: `.` for a bare file name, as the kernel sees it.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => PathBuf::from("."),
        Some(parent) => parent.to_path_buf(),
        None => PathBuf::from("/"),
    }
}

/// Why no file can be created in `dir`, if it cannot.
fn directory_problem(dir: &Path, fs: &dyn Filesystem) -> Option<String> {
    let shown = dir.display();
    match fs.entry(dir) {
        Entry::Dir { writable: true } => None,
        Entry::Dir { writable: false } => Some(format!("directory {shown} is not writable")),
        Entry::Missing => Some(format!("directory {shown} does not exist")),
        Entry::Unreachable(why) => Some(format!("directory {shown}: {why}")),
        _ => Some(format!("{shown} is not a directory")),
    }
}

/// What opening `path` as the log file would meet: a run refuses to start when
/// it cannot open it (a missing or read-only directory, a directory in its
/// place). A FIFO or device is fine (never rotated; a FIFO without a reader is
/// retried). A file that can be written in a read-only directory is a warning:
/// the run starts but rotation (renaming it) will fail.
pub fn log_file(path: &Path, rotates: bool, fs: &dyn Filesystem) -> Option<(Severity, String)> {
    let shown = path.display();
    let cannot_open = |why: String| {
        Some((
            Severity::Error,
            format!("cannot open the log file {shown}: {why}; a run refuses to start"),
        ))
    };
    match fs.entry(path) {
        Entry::Dir { .. } => cannot_open("it is a directory".to_owned()),
        Entry::File { writable: false } | Entry::Special { writable: false } => {
            cannot_open("it is not writable".to_owned())
        }
        Entry::Unreachable(why) => cannot_open(why),
        Entry::Missing => directory_problem(&parent_dir(path), fs).and_then(cannot_open),
        Entry::File { writable: true } if rotates => {
            let dir = parent_dir(path);
            directory_problem(&dir, fs).map(|why| {
                (
                    Severity::Warning,
                    format!("the log file {shown} can be written but not rotated: {why}"),
                )
            })
        }
        Entry::File { writable: true } | Entry::Special { writable: true } | Entry::Socket => None,
    }
}

/// Why a run could not bind its control socket at `path`, if it could not.
/// An existing socket is taken as left over or live: the run tests it by
/// connecting, which `check` does not do to a pidzero that may be serving.
pub fn socket(path: &Path, fs: &dyn Filesystem) -> Option<String> {
    let shown = path.display();
    let len = path.as_os_str().as_bytes().len();
    if len == 0 || len > MAX_SOCKET_PATH {
        return Some(format!(
            "socket path {shown} is empty or too long ({len} bytes, at most {MAX_SOCKET_PATH})"
        ));
    }
    match fs.entry(path) {
        Entry::Socket => None,
        Entry::Missing => directory_problem(&parent_dir(path), fs)
            .map(|why| format!("cannot listen on {shown}: {why}")),
        Entry::Unreachable(why) => Some(format!("cannot listen on {shown}: {why}")),
        _ => Some(format!("{shown} exists and is not a socket")),
    }
}

/// Whether a run could listen on `addr` (`api.listen`): an address in use is
/// a warning (a running pidzero may hold it, and may be gone when the next
/// run starts), any other failure an error.
pub fn listen(addr: SocketAddr, fs: &dyn Filesystem) -> Option<(Severity, String)> {
    match fs.listen(addr) {
        Ok(()) => None,
        Err((ErrorKind::AddrInUse, why)) => Some((
            Severity::Warning,
            format!(
                "cannot listen on {addr} now: {why}; a run refuses to start unless it is free then"
            ),
        )),
        Err((_, why)) => Some((
            Severity::Error,
            format!("cannot listen on {addr}: {why}; a run refuses to start"),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A filesystem described by a map; paths not in it are missing.
    #[derive(Default)]
    pub(crate) struct FakeFs {
        pub(crate) entries: HashMap<PathBuf, Entry>,
        pub(crate) listen_error: Option<(ErrorKind, String)>,
    }

    impl FakeFs {
        pub(crate) fn with(mut self, path: &str, entry: Entry) -> Self {
            self.entries.insert(PathBuf::from(path), entry);
            self
        }
    }

    impl Filesystem for FakeFs {
        fn entry(&self, path: &Path) -> Entry {
            self.entries.get(path).cloned().unwrap_or(Entry::Missing)
        }
        fn listen(&self, _: SocketAddr) -> Result<(), (ErrorKind, String)> {
            self.listen_error.clone().map_or(Ok(()), Err)
        }
    }

    const RW_DIR: Entry = Entry::Dir { writable: true };
    const RO_DIR: Entry = Entry::Dir { writable: false };

    fn log(fs: &FakeFs, path: &str) -> Option<(Severity, String)> {
        log_file(Path::new(path), true, fs)
    }

    #[test]
    fn log_file_in_a_writable_directory_is_fine() {
        let fs = FakeFs::default().with("/logs", RW_DIR);
        assert_eq!(log(&fs, "/logs/p.log"), None);
        let fs = fs.with("/logs/p.log", Entry::File { writable: true });
        assert_eq!(log(&fs, "/logs/p.log"), None);
        let fs = fs.with("/logs/fifo", Entry::Special { writable: true });
        assert_eq!(log(&fs, "/logs/fifo"), None);
    }

    #[test]
    fn log_file_problems_that_stop_a_run() {
        let error = |fs: &FakeFs, path, why: &str| {
            assert_eq!(
                log(fs, path),
                Some((
                    Severity::Error,
                    format!("cannot open the log file {path}: {why}; a run refuses to start")
                )),
                "{path}"
            );
        };
        let fs = FakeFs::default()
            .with("/ro", RO_DIR)
            .with("/file", Entry::File { writable: true })
            .with("/d", RW_DIR)
            .with("/d/sub", RW_DIR)
            .with("/d/ro.log", Entry::File { writable: false })
            .with("/x", Entry::Unreachable("Permission denied".into()));
        error(&fs, "/none/p.log", "directory /none does not exist");
        error(&fs, "/ro/p.log", "directory /ro is not writable");
        error(&fs, "/file/p.log", "/file is not a directory");
        error(&fs, "/d/sub", "it is a directory");
        error(&fs, "/d/ro.log", "it is not writable");
        error(&fs, "/x", "Permission denied");
        error(&fs, "p.log", "directory . does not exist");
    }

    #[test]
    fn a_log_file_that_cannot_rotate_is_a_warning() {
        let fs = FakeFs::default()
            .with("/ro", RO_DIR)
            .with("/ro/p.log", Entry::File { writable: true });
        let (severity, message) = log(&fs, "/ro/p.log").expect("a warning");
        assert_eq!(severity, Severity::Warning);
        assert!(
            message.ends_with("directory /ro is not writable"),
            "{message}"
        );
        assert_eq!(log_file(Path::new("/ro/p.log"), false, &fs), None);
    }

    #[test]
    fn socket_problems() {
        let fs = FakeFs::default()
            .with("/run", RW_DIR)
            .with("/ro", RO_DIR)
            .with("/run/live.sock", Entry::Socket)
            .with("/run/file", Entry::File { writable: true });
        let at = |path: &str| socket(Path::new(path), &fs);
        assert_eq!(at("/run/p.sock"), None);
        assert_eq!(at("/run/live.sock"), None);
        assert_eq!(
            at("/none/p.sock").as_deref(),
            Some("cannot listen on /none/p.sock: directory /none does not exist")
        );
        assert_eq!(
            at("/ro/p.sock").as_deref(),
            Some("cannot listen on /ro/p.sock: directory /ro is not writable")
        );
        assert_eq!(
            at("/run/file").as_deref(),
            Some("/run/file exists and is not a socket")
        );
        let long = format!("/run/{}", "s".repeat(MAX_SOCKET_PATH));
        assert!(at(&long).is_some_and(|m| m.contains("too long")));
        let longest = format!("/run/{}", "s".repeat(MAX_SOCKET_PATH - 5));
        assert_eq!(at(&longest), None);
    }

    #[test]
    fn listen_problems() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut fs = FakeFs::default();
        assert_eq!(listen(addr, &fs), None);
        fs.listen_error = Some((ErrorKind::AddrInUse, "in use".into()));
        assert_eq!(listen(addr, &fs).map(|p| p.0), Some(Severity::Warning));
        fs.listen_error = Some((ErrorKind::AddrNotAvailable, "not here".into()));
        assert_eq!(listen(addr, &fs).map(|p| p.0), Some(Severity::Error));
    }
}
