//! Binding the control socket: mode 0600 from the first instant, a stale file from a
//! dead pidzero replaced, a live one refused, and removal only of our own file.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Pending connections the kernel holds while all connection slots are busy.
const BACKLOG: i32 = 128;

/// The socket file we created, identified by device and inode so that a file that
/// another process put at the same path later is never removed.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the one we bound.
    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds `path` as a listening Unix socket with mode 0600.
///
/// An existing socket file is tested by connecting to it: when nobody answers
/// (`ECONNREFUSED`) it is left over from a dead process and replaced; when somebody
/// answers it is an error (`AddrInUse`). Anything else at the path is an error too.
pub async fn bind_unix(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match tokio::net::UnixStream::connect(path).await {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("another pidzero is listening on {}", path.display()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)?;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot test the existing socket {}: {e}", path.display()),
                    ))
                }
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let fd = bind_private(path).map_err(|e| match e.kind() {
        // Already names the path.
        io::ErrorKind::InvalidInput => e,
        kind => io::Error::new(kind, format!("cannot listen on {}: {e}", path.display())),
    })?;
    // fchmod before bind already gave the file 0600 on Linux; make sure anyway.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    match UnixListener::from_std(std_listener) {
        Ok(listener) => Ok((listener, file)),
        Err(e) => {
            file.remove();
            Err(e)
        }
    }
}

/// socket + fchmod(0600) + bind + listen. Linux creates the socket file with the
/// socket inode's mode (less the umask), so it is never reachable by others, not even
/// for an instant between bind and chmod.
fn bind_private(path: &Path) -> io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path {} is empty, too long (max {} bytes) or has a NUL byte",
                path.display(),
                addr.sun_path.len() - 1
            ),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain syscalls on a descriptor we own; addr is initialised above and its
    // size is passed along.
    unsafe {
        let raw = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        if libc::fchmod(fd.as_raw_fd(), 0o600) != 0 {
            return Err(io::Error::last_os_error());
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
            len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(fd.as_raw_fd(), BACKLOG) != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(fd)
    }
}
