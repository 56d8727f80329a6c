//! The control server: a Unix stream socket served by one std thread.
//!
//! Design choices:
//!
//! - **One client at a time.** Requests are rare and short, and they edit one configuration,
//!   so serving them in order is the simplest correct scheme: no locking around the model,
//!   and requests are applied in the order they arrived. What makes that safe is that no
//!   client can hold the server: every read and write is bounded by
//!   [`ServerOptions::io_timeout`] from the moment the connection is accepted, however slowly
//!   the client sends, and a request is capped at [`ServerOptions::max_request_bytes`].
//! - **Who may talk to us.** The socket file is created with mode 0600 in a directory of
//!   mode 0700 when we create it; on top of that every connection's peer credentials
//!   (SO_PEERCRED, read through `rustix`, so no `unsafe` here) are checked, and a client
//!   whose uid is neither root nor ours gets [`ErrorKind::PermissionDenied`] without its
//!   request being read. The credential check is what counts: file modes can be changed
//!   by anyone with root, credentials cannot be forged.
//! - **A stale socket** (the file of a gatewayd that died) is replaced; a live one (a second
//!   gatewayd) is an error, so two daemons never fight over one socket path.
//! - **Shutdown** sets a flag and connects to the socket to wake the blocking `accept`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::api::{ApiError, ErrorKind, MAX_REQUEST_BYTES};
use super::apply::ControlState;
use super::protocol::{decode_request, encode_response, read_frame, FrameError};
use crate::stats::ESTIMATE_INTERVAL;

/// How the server listens and what it tolerates.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub socket_path: PathBuf,
    /// The whole time a client has to send its request, and then to take the reply.
    pub io_timeout: Duration,
    pub max_request_bytes: usize,
    /// How often the rate estimator runs (`--rate`); IPVS's period by default.
    pub estimate_interval: Duration,
}

impl ServerOptions {
    pub fn new(socket_path: impl Into<PathBuf>) -> ServerOptions {
        ServerOptions {
            socket_path: socket_path.into(),
            io_timeout: Duration::from_secs(5),
            max_request_bytes: MAX_REQUEST_BYTES,
            estimate_interval: ESTIMATE_INTERVAL,
        }
    }
}

/// A bound control socket, not yet served. `gatewayd` binds it before it
/// touches a device, so a second daemon on the same path stops before it
/// opens ports or launches workers. Dropped unserved, it removes its file.
pub struct ControlSocket {
    listener: UnixListener,
    options: ServerOptions,
}

/// A bound control socket and the state it serves.
pub struct ControlServer {
    socket: ControlSocket,
    state: ControlState,
    stop: Arc<AtomicBool>,
}

/// A running server thread.
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    socket_path: PathBuf,
    thread: Option<JoinHandle<ControlState>>,
}

impl ControlSocket {
    /// Binds the socket (mode 0600). Fails if another live server holds the path, or if the
    /// path exists and is not a socket.
    pub fn bind(options: ServerOptions) -> io::Result<ControlSocket> {
        let path = &options.socket_path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
        }
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path)?;
        let socket = ControlSocket { listener, options: options.clone() };
        fs::set_permissions(&socket.options.socket_path, fs::Permissions::from_mode(0o600))?;
        Ok(socket)
    }

    /// The server answering on this socket from `state`.
    pub fn serve(self, state: ControlState) -> ControlServer {
        ControlServer { socket: self, state, stop: Arc::new(AtomicBool::new(false)) }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.options.socket_path);
    }
}

impl ControlServer {
    /// [`ControlSocket::bind`], then [`ControlSocket::serve`].
    pub fn bind(options: ServerOptions, state: ControlState) -> io::Result<ControlServer> {
        Ok(ControlSocket::bind(options)?.serve(state))
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket.options.socket_path
    }

    /// Serves on a new thread named `gw-control` until [`ServerHandle::shutdown`].
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let stop = Arc::clone(&self.stop);
        let socket_path = self.socket.options.socket_path.clone();
        let thread = std::thread::Builder::new()
            .name("gw-control".into())
            .spawn(move || self.run())?;
        Ok(ServerHandle {
            stop,
            socket_path,
            thread: Some(thread),
        })
    }

    /// Serves on the calling thread until the stop flag is set; returns the state.
    /// Between requests it runs the rate estimator every
    /// [`ServerOptions::estimate_interval`].
    pub fn run(mut self) -> ControlState {
        let interval = self.socket.options.estimate_interval;
        let mut last_estimate = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let since = last_estimate.elapsed();
            if since >= interval {
                self.state.estimate_rates(since);
                last_estimate = Instant::now();
                continue;
            }
            if !readable_within(&self.socket.listener, interval - since) {
                continue;
            }
            match self.socket.listener.accept() {
                Ok((stream, _)) => {
                    if self.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    self.serve(stream);
                }
                // EMFILE and friends: back off instead of spinning; nothing else is fatal.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        // Dropping the socket removes its file.
        self.state
    }

    /// Serves one connection. Errors writing the reply mean the client left; there is
    /// nobody to tell.
    fn serve(&mut self, mut stream: UnixStream) {
        let options = &self.socket.options;
        let deadline = Instant::now() + options.io_timeout;
        let _ = stream.set_write_timeout(Some(options.io_timeout));
        let reply = match peer_allowed(&stream) {
            Err(e) => Err(e),
            Ok(()) => match read_frame(&mut stream, self.socket.options.max_request_bytes, Some(deadline))
            {
                Ok(frame) => decode_request(&frame).and_then(|r| self.state.handle(r)),
                Err(FrameError::Empty) => return,
                Err(FrameError::Io(_)) => return,
                Err(FrameError::TooLarge { limit }) => Err(ApiError::new(
                    ErrorKind::TooLarge,
                    format!("request is larger than {limit} bytes"),
                )),
                Err(FrameError::Timeout) => Err(ApiError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no complete request within {} ms",
                        self.socket.options.io_timeout.as_millis()
                    ),
                )),
            },
        };
        let _ = stream.write_all(&encode_response(reply));
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Whether a connection waits on `listener`, waiting at most `timeout`.
fn readable_within(listener: &UnixListener, timeout: Duration) -> bool {
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    // An interrupted or failed poll just ends this wait early; accept decides.
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

/// Only root and the server's own user may configure the gateway.
fn peer_allowed(stream: &UnixStream) -> Result<(), ApiError> {
    let cred = rustix::net::sockopt::socket_peercred(stream).map_err(|e| {
        ApiError::new(
            ErrorKind::PermissionDenied,
            format!("peer credentials unavailable: {e}"),
        )
    })?;
    let uid = cred.uid.as_raw();
    if uid == 0 || uid == rustix::process::geteuid().as_raw() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::PermissionDenied,
            format!(
                "Permission denied (you must be root): uid {uid} may not use the control socket"
            ),
        ))
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server is listening on {}", path.display()),
        )),
        Err(_) => fs::remove_file(path),
    }
}

impl ServerHandle {
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Stops the server after the request in progress, removes the socket file and returns
    /// the final state.
    pub fn shutdown(mut self) -> Option<ControlState> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> Option<ControlState> {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept; if the connect fails the thread is already gone or about to see
        // the flag after its current client.
        let _ = UnixStream::connect(&self.socket_path);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_thread();
    }
}
