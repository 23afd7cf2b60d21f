//! The real filesystem and network behind [`Filesystem`]: `stat`, `faccessat`
//! with the effective ids (what `open` and `bind` go by), and a TCP bind that
//! is closed at once.

use std::ffi::CString;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::paths::{Entry, Filesystem};

/// The system pidzero runs on.
pub struct System;

impl Filesystem for System {
    fn entry(&self, path: &Path) -> Entry {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => return Entry::Missing,
            Err(e) => return Entry::Unreachable(e.to_string()),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            Entry::Dir {
                writable: may(path, libc::W_OK | libc::X_OK),
            }
        } else if kind.is_file() {
            Entry::File {
                writable: may(path, libc::W_OK),
            }
        } else if kind.is_socket() {
            Entry::Socket
        } else {
            Entry::Special {
                writable: may(path, libc::W_OK),
            }
        }
    }

    fn listen(&self, addr: SocketAddr) -> Result<(), (ErrorKind, String)> {
        TcpListener::bind(addr)
            .map(drop)
            .map_err(|e| (e.kind(), e.to_string()))
    }
}

/// Whether pidzero's effective user may access `path` with `mode`, as the
/// kernel decides for `open` (a read-only filesystem says no even to root).
fn may(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dir;

    #[test]
    fn entries_of_the_real_filesystem() {
        let dir = Dir::new("probe");
        let file = dir.write("f", "x");
        assert_eq!(System.entry(&dir.path), Entry::Dir { writable: true });
        assert_eq!(System.entry(&file), Entry::File { writable: true });
        assert_eq!(System.entry(&dir.p("missing")), Entry::Missing);
        assert!(matches!(
            System.entry(&file.join("below")),
            Entry::Unreachable(_)
        ));
        assert!(matches!(
            System.entry(Path::new("/dev/null")),
            Entry::Special { .. }
        ));
    }

    #[test]
    fn listening_on_a_taken_port_says_in_use() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = taken.local_addr().expect("its address");
        assert_eq!(
            System.listen(addr).map_err(|(kind, _)| kind),
            Err(ErrorKind::AddrInUse)
        );
        drop(taken);
        assert_eq!(System.listen(addr), Ok(()));
    }
}
