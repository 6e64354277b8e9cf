//! The link socket's file: created safely (a stale socket from a crash is replaced, a live one or
//! a non-socket file is refused), with restrictive permissions from the first moment (bound under
//! a temporary name, chmod-ed, then renamed into place), and removed on a clean stop only if it is
//! still the file this process created.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::LinkError;

/// Permissions of the socket file: the till's user only. The daemon runs as the same user; a
/// deployment that runs it under another user in a shared group can change this to 0o660.
pub const LINK_SOCKET_MODE: u32 = 0o600;

/// The socket file this process bound, identified by device and inode.
pub(super) struct Bound {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Bound {
    /// Removes the socket file if it is still ours (a successor may have replaced it).
    pub(super) fn remove(&self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> LinkError + '_ {
    move |source| LinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn bind(path: &Path) -> Result<(UnixListener, Bound), LinkError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(LinkError::NotASocket {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(LinkError::InUse {
                    path: path.to_path_buf(),
                })
            }
            Err(_) => {
                tracing::warn!(path = %path.display(), "link: removing a stale socket");
                fs::remove_file(path).map_err(io_err(path))?;
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "link.sock".to_string());
    let temp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(io_err(&temp))?;
    let placed = fs::set_permissions(&temp, fs::Permissions::from_mode(LINK_SOCKET_MODE))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = placed {
        let _ = fs::remove_file(&temp);
        return Err(io_err(path)(e));
    }
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    Ok((
        listener,
        Bound {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

/// Makes a thread blocked in `accept` on this listener return (Linux: `shutdown` on a listening
/// socket wakes it with an error).
pub(super) fn wake_accept(listener: &UnixListener) {
    // SAFETY: `shutdown` only reads the descriptor number, which `listener` owns and keeps open
    // for the duration of the call.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}
