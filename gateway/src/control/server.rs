//! The control server: a Unix stream socket, one accepting thread and one thread per client.
//!
//! Design choices:
//!
//! - **Clients are served concurrently; requests are handled one at a time.** Each accepted
//!   connection gets its own thread, so a client that connects and sends nothing (or trickles
//!   its request, or does not read its reply) delays nobody: it costs its own thread until
//!   its deadline. Reading and decoding a request and writing the reply happen outside any
//!   lock; only [`ControlState::handle`] runs under the state's mutex, so configuration
//!   changes stay serialised and each is one atomic snapshot (DESIGN.md invariant 3), in the
//!   order their requests were complete. A client therefore waits for others only as long as
//!   their requests take to handle, never for their I/O.
//! - **A bounded number of clients.** At most [`ServerOptions::max_clients`] connections are
//!   served at once; one more is answered at once with [`ErrorKind::Busy`], which says how
//!   many are in progress, instead of queueing behind them.
//! - **Per-client deadlines.** A request must be complete within
//!   [`ServerOptions::io_timeout`] of the connection's acceptance, however slowly the client
//!   sends; a streamed apply ([`Request::ApplyStream`]) gets that time for each of its changes,
//!   so a rule file of any size is accepted while it flows and a stalled one is cut off.
//!   Replies are written with the same timeout. Each frame is capped at
//!   [`ServerOptions::max_request_bytes`].
//! - **Who may talk to us.** The socket file is created with mode 0600 in a directory of
//!   mode 0700 when we create it; on top of that every connection's peer credentials
//!   (SO_PEERCRED, read through `rustix`, so no `unsafe` here) are checked on the accepting
//!   thread, and a client whose uid is neither root nor ours gets
//!   [`ErrorKind::PermissionDenied`] without its request being read or a thread being spent
//!   on it. The credential check is what counts: file modes can be changed by anyone with
//!   root, credentials cannot be forged.
//! - **A stale socket** (the file of a gatewayd that died) is replaced; a live one (a second
//!   gatewayd) is an error, so two daemons never fight over one socket path.
//! - **Refusals are logged, at most [`REFUSALS_LOGGED_PER_SECOND`] a second**: each as a
//!   warning naming the request and the error, the ones held back counted in the next line
//!   written (or, if none comes, in a line of their own once their second is over), so a
//!   client looping on a bad request cannot flood the log.
//! - **Shutdown** sets a flag and connects to the socket to wake the `accept`, then waits for
//!   the clients in progress (each bounded by its deadline).
//! - **Runtime inputs** that are no request (the held addresses `local::held` follows) reach
//!   the state through a [`HeldInput`], under the same lock as requests, so they are
//!   serialised with them; it holds the state weakly and fails once the server has stopped.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use gwapi::api::{ApiError, ErrorKind, Request, MAX_REQUEST_BYTES, MAX_STREAMED_CHANGES};
use gwapi::protocol::{decode_change, decode_request, encode_response, FrameError, FrameReader};

use super::apply::ControlState;
use super::publish::PublishError;
use crate::logging::RateLimit;
use crate::stats::ESTIMATE_INTERVAL;

/// Refused requests logged per second at most (see [`RateLimit`]).
pub const REFUSALS_LOGGED_PER_SECOND: u32 = 10;

/// How the server listens and what it tolerates.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub socket_path: PathBuf,
    /// The whole time a client has to send its request (each change of a streamed apply),
    /// and then to take the reply.
    pub io_timeout: Duration,
    /// The largest frame: a whole request, or one change of a streamed apply.
    pub max_request_bytes: usize,
    /// Clients served at once; one more is refused with [`ErrorKind::Busy`].
    pub max_clients: usize,
    /// How often the rate estimator runs (`--rate`); IPVS's period by default.
    pub estimate_interval: Duration,
}

impl ServerOptions {
    pub fn new(socket_path: impl Into<PathBuf>) -> ServerOptions {
        ServerOptions {
            socket_path: socket_path.into(),
            io_timeout: Duration::from_secs(5),
            max_request_bytes: MAX_REQUEST_BYTES,
            max_clients: DEFAULT_MAX_CLIENTS,
            estimate_interval: ESTIMATE_INTERVAL,
        }
    }
}

/// Clients served at once by default: far more than operators and automation open at a
/// time, few enough that stalled clients cannot exhaust the daemon's threads or memory.
pub const DEFAULT_MAX_CLIENTS: usize = 16;

/// A bound control socket, not yet served. `gatewayd` binds it before it
/// touches a device, so a second daemon on the same path stops before it
/// opens ports or launches workers. Dropped, it removes its file.
pub struct ControlSocket {
    listener: UnixListener,
    options: ServerOptions,
}

/// A bound control socket and the state it serves.
pub struct ControlServer {
    socket: ControlSocket,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

/// What the accepting thread shares with the client threads.
struct Shared {
    options: ServerOptions,
    /// The one configuration; requests are handled under this lock, one at a time.
    state: Mutex<ControlState>,
    /// Client threads running.
    clients: AtomicUsize,
    /// Bounds the warnings about refused requests.
    refusals: Mutex<RateLimit>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, ControlState> {
        // `handle` never panics on any input; if it ever did, the state it left is still
        // the last one published in full, so serving on is right.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs that the request `what` was refused with `error`, unless this second's
    /// budget of such lines is spent.
    fn log_refusal(&self, what: &str, error: &ApiError) {
        let admitted = self.refusals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).admit(Instant::now());
        let Some(suppressed) = admitted else { return };
        let change = error.change_index.map(|i| format!(" (change {i})")).unwrap_or_default();
        let held_back =
            if suppressed > 0 { format!("; suppressed {suppressed} earlier refusal(s)") } else { String::new() };
        log::warn!("gatewayd: refused {what}{change}: {:?}: {}{held_back}", error.kind, error.message);
    }

    /// Says how many refusals went unlogged in a second that is over, when no refusal
    /// since has carried the count.
    fn log_suppressed_refusals(&self) {
        let taken =
            self.refusals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take_suppressed(Instant::now());
        if let Some(suppressed) = taken {
            log::warn!(
                "gatewayd: suppressed {suppressed} refusal(s) past the {REFUSALS_LOGGED_PER_SECOND} a second logged"
            );
        }
    }
}

/// A request's name, as its `"command"` field on the wire spells it (a streamed apply has
/// become an `apply` by the time it is handled).
fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Apply { .. } => "apply",
        Request::ApplyStream { .. } => "apply_stream",
        Request::Zero { .. } => "zero",
        Request::ListServices { .. } => "list_services",
        Request::ListConnections => "list_connections",
        Request::GetTimeouts => "get_timeouts",
        Request::ListLaddrs { .. } => "list_laddrs",
        Request::ListMarks => "list_marks",
        Request::ListAddrs => "list_addrs",
        Request::ListRoutes => "list_routes",
        Request::ListNeighbours => "list_neighbours",
        Request::ListLinks => "list_links",
        Request::GetStats => "get_stats",
        Request::Info => "info",
        Request::ListDaemons => "list_daemons",
        Request::ListHealth => "list_health",
    }
}

/// Where the addresses the kernel interfaces carry enter the control plane: a runtime
/// input, not a request (see [`ControlState::set_held`]). Cheap to clone; outlives the
/// server harmlessly.
#[derive(Clone)]
pub struct HeldInput {
    shared: Weak<Shared>,
}

impl HeldInput {
    /// [`ControlState::set_held`] under the state's lock, between requests. Fails when a
    /// worker did not confirm (the previous set stays in force) or the server has stopped.
    pub fn set_held(&self, held: Option<Vec<IpAddr>>) -> Result<(), PublishError> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(PublishError { message: "the control server has stopped".into() });
        };
        let mut state = shared.state();
        state.set_held(held)
    }
}

/// Where the health checker's transitions enter the control plane: a runtime input, not a
/// request (see [`ControlState::set_server_health`]), serialised with requests under the
/// state's lock, as [`HeldInput`]'s.
#[derive(Clone)]
pub struct HealthInput {
    shared: Weak<Shared>,
}

impl HealthInput {
    /// [`ControlState::set_server_health`] under the state's lock. Fails when a worker did
    /// not confirm (the previous weights stay in force) or the server has stopped.
    pub fn set_server_health(&self, transition: &crate::health::Transition) -> Result<(), PublishError> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(PublishError { message: "the control server has stopped".into() });
        };
        let mut state = shared.state();
        state.set_server_health(transition)
    }

    /// [`ControlState::passive_tick`] under the state's lock. Fails when a worker did not
    /// confirm (logged; decided again at the next tick) or the server has stopped.
    pub fn passive_tick(&self) -> Result<(), PublishError> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(PublishError { message: "the control server has stopped".into() });
        };
        let mut state = shared.state();
        state.passive_tick()
    }
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
                fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
        }
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path)?;
        let socket = ControlSocket { listener, options };
        fs::set_permissions(&socket.options.socket_path, fs::Permissions::from_mode(0o600))?;
        Ok(socket)
    }

    /// The server answering on this socket from `state`.
    pub fn serve(self, state: ControlState) -> ControlServer {
        let shared = Arc::new(Shared {
            options: self.options.clone(),
            state: Mutex::new(state),
            clients: AtomicUsize::new(0),
            refusals: Mutex::new(RateLimit::new(REFUSALS_LOGGED_PER_SECOND)),
        });
        ControlServer { socket: self, shared, stop: Arc::new(AtomicBool::new(false)) }
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
        &self.shared.options.socket_path
    }

    /// Where the held addresses enter this server's state (see [`HeldInput`]).
    pub fn held_input(&self) -> HeldInput {
        HeldInput { shared: Arc::downgrade(&self.shared) }
    }

    /// Where the health checker's transitions enter this server's state (see
    /// [`HealthInput`]).
    pub fn health_input(&self) -> HealthInput {
        HealthInput { shared: Arc::downgrade(&self.shared) }
    }

    /// Serves on a new thread named `gw-control` until [`ServerHandle::shutdown`].
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let stop = Arc::clone(&self.stop);
        let socket_path = self.shared.options.socket_path.clone();
        let thread = std::thread::Builder::new().name("gw-control".into()).spawn(move || self.run())?;
        Ok(ServerHandle { stop, socket_path, thread: Some(thread) })
    }

    /// Serves on the calling thread until the stop flag is set; returns the state.
    /// Between accepts it runs the rate estimator every
    /// [`ServerOptions::estimate_interval`].
    pub fn run(self) -> ControlState {
        let interval = self.shared.options.estimate_interval;
        let mut last_estimate = Instant::now();
        let mut clients: Vec<JoinHandle<()>> = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            clients.retain(|c| !c.is_finished());
            self.shared.log_suppressed_refusals();
            let since = last_estimate.elapsed();
            if since >= interval {
                self.shared.state().estimate_rates(since);
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
                    if let Some(client) = self.admit(stream) {
                        clients.push(client);
                    }
                }
                // EMFILE and friends: back off instead of spinning; nothing else is fatal.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        // The socket's file goes at once, so no new client waits on a server that has stopped.
        drop(self.socket);
        for c in clients {
            let _ = c.join();
        }
        // Every client thread has ended; a `HeldInput` may still hold `shared` for the
        // publish in progress (bounded by the publish timeout), never longer.
        let mut shared = self.shared;
        let Shared { state, .. } = loop {
            match Arc::try_unwrap(shared) {
                Ok(shared) => break shared,
                Err(busy) => {
                    shared = busy;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        };
        state.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks a new connection's credentials and the client bound, then serves it on a
    /// thread of its own. A refusal is written at once: a reply of a few hundred bytes fits
    /// the socket's empty send buffer, so it never blocks the accepting thread.
    fn admit(&self, stream: UnixStream) -> Option<JoinHandle<()>> {
        let options = &self.shared.options;
        if let Err(e) = peer_allowed(&stream) {
            self.shared.log_refusal("connection", &e);
            refuse(stream, e);
            return None;
        }
        let serving = self.shared.clients.load(Ordering::Acquire);
        if serving >= options.max_clients {
            let e = ApiError::new(
                ErrorKind::Busy,
                format!("gatewayd is busy: {serving} control clients are being served, the most it serves at once; try again"),
            );
            self.shared.log_refusal("connection", &e);
            refuse(stream, e);
            return None;
        }
        self.shared.clients.fetch_add(1, Ordering::AcqRel);
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new().name("gw-control-client".into()).spawn(move || {
            serve(&shared, stream);
            shared.clients.fetch_sub(1, Ordering::AcqRel);
        });
        match spawned {
            Ok(thread) => Some(thread),
            // No thread: the closure (and the connection) is dropped, the client sees the
            // connection closed without a reply.
            Err(_) => {
                self.shared.clients.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }
}

/// Writes a refusal to a client whose request is not read, and closes.
fn refuse(mut stream: UnixStream, error: ApiError) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&encode_response(Err(error)));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Serves one connection. Errors writing the reply mean the client left; there is nobody to
/// tell.
fn serve(shared: &Shared, mut stream: UnixStream) {
    let options = &shared.options;
    let _ = stream.set_write_timeout(Some(options.io_timeout));
    let (what, reply) = match receive(&mut stream, options) {
        None => return,
        Some(Err(e)) => ("request", Err(e)),
        Some(Ok(request)) => (request_name(&request), shared.state().handle(request)),
    };
    if let Err(e) = &reply {
        shared.log_refusal(what, e);
    }
    let _ = stream.write_all(&encode_response(reply));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Reads and decodes one request; `None` when the client left without sending one. A
/// streamed apply is read in full here, outside the state's lock, and handed on as the
/// [`Request::Apply`] of all its changes, so it is validated and published as one snapshot.
fn receive(stream: &mut UnixStream, options: &ServerOptions) -> Option<Result<Request, ApiError>> {
    let mut frames = FrameReader::new(stream);
    let limit = options.max_request_bytes;
    let deadline = Instant::now() + options.io_timeout;
    let request = match frames.next_frame(limit, Some(deadline)) {
        Ok(frame) => decode_request(&frame),
        Err(e) => return frame_error(e, options).map(Err),
    };
    let count = match request {
        Ok(Request::ApplyStream { changes }) => changes,
        other => return Some(other),
    };
    if count > MAX_STREAMED_CHANGES {
        return Some(Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("a streamed apply holds at most {MAX_STREAMED_CHANGES} changes, not {count}"),
        )));
    }
    let mut changes = Vec::new();
    while (changes.len() as u64) < count {
        let index = changes.len();
        let deadline = Instant::now() + options.io_timeout;
        let frame = match frames.next_frame(limit, Some(deadline)) {
            Ok(frame) => frame,
            Err(FrameError::Empty) => {
                let mut e = ApiError::new(
                    ErrorKind::Malformed,
                    format!("the stream ended after {index} of its {count} changes; nothing was applied"),
                );
                e.change_index = Some(index);
                return Some(Err(e));
            }
            Err(e) => {
                return frame_error(e, options).map(|mut e| {
                    e.change_index = Some(index);
                    Err(e)
                })
            }
        };
        match decode_change(&frame, index) {
            Ok(change) => changes.push(change),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(Request::Apply { changes }))
}

/// The error a client gets for a frame that could not be read; `None` when it left.
fn frame_error(e: FrameError, options: &ServerOptions) -> Option<ApiError> {
    match e {
        FrameError::Empty | FrameError::Io(_) => None,
        FrameError::TooLarge { limit } => {
            Some(ApiError::new(ErrorKind::TooLarge, format!("request is larger than {limit} bytes")))
        }
        FrameError::Timeout => Some(ApiError::new(
            ErrorKind::Timeout,
            format!("no complete request within {} ms", options.io_timeout.as_millis()),
        )),
    }
}

/// Whether a connection waits on `listener`, waiting at most `timeout`.
fn readable_within(listener: &UnixListener, timeout: Duration) -> bool {
    let timeout = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    // An interrupted or failed poll just ends this wait early; accept decides.
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

/// Only root and the server's own user may configure the gateway.
fn peer_allowed(stream: &UnixStream) -> Result<(), ApiError> {
    let cred = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|e| ApiError::new(ErrorKind::PermissionDenied, format!("peer credentials unavailable: {e}")))?;
    let uid = cred.uid.as_raw();
    if uid == 0 || uid == rustix::process::geteuid().as_raw() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::PermissionDenied,
            format!("Permission denied (you must be root): uid {uid} may not use the control socket"),
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
        Ok(_) => {
            Err(io::Error::new(io::ErrorKind::AddrInUse, format!("another server is listening on {}", path.display())))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_are_the_wire_commands() {
        let requests = [
            Request::Apply { changes: Vec::new() },
            Request::ApplyStream { changes: 2 },
            Request::Zero { service: None },
            Request::ListServices { service: None },
            Request::ListConnections,
            Request::GetTimeouts,
            Request::ListLaddrs { service: gwapi::api::VirtualService::Fwmark { mark: 1 } },
            Request::ListMarks,
            Request::ListAddrs,
            Request::ListRoutes,
            Request::ListNeighbours,
            Request::ListLinks,
            Request::GetStats,
            Request::Info,
            Request::ListDaemons,
            Request::ListHealth,
        ];
        for request in requests {
            let wire = serde_json::to_value(&request).unwrap();
            assert_eq!(wire["command"], request_name(&request), "{request:?}");
        }
    }
}
