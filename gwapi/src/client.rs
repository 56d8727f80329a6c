//! The client side of the control protocol, used by `gwctl` and by tests.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{ApiError, Change, Outcome, Reply, Request, MAX_REPLY_BYTES, PROTOCOL_VERSION};
use crate::protocol::{decode_response, encode_apply_stream, encode_request};

/// Talks to one gateway's control socket; one connection per call.
#[derive(Debug, Clone)]
pub struct Client {
    socket_path: PathBuf,
    /// Bounds the whole exchange; publishing waits for every worker, so it is generous.
    timeout: Duration,
}

#[derive(Debug)]
pub enum ClientError {
    /// The gateway is not running (or the socket is not ours to use).
    Connect { path: PathBuf, source: io::Error },
    /// The connection broke or timed out mid-exchange.
    Io(io::Error),
    /// The reply was not a reply of this protocol.
    Protocol(String),
    /// The gateway refused the request.
    Refused(ApiError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, source } => write!(
                f,
                "cannot connect to gatewayd at {}: {source} (is gatewayd running? the socket \
                 path comes from --socket, then GATEWAYD_SOCKET)",
                path.display()
            ),
            ClientError::Io(e) => write!(f, "control connection failed: {e}"),
            ClientError::Protocol(m) => write!(f, "unexpected reply from gatewayd: {m}"),
            ClientError::Refused(e) => write!(f, "{}", e.message),
        }
    }
}

impl std::error::Error for ClientError {}

impl Client {
    pub fn new(socket_path: impl Into<PathBuf>) -> Client {
        Client { socket_path: socket_path.into(), timeout: Duration::from_secs(60) }
    }

    pub fn with_timeout(self, timeout: Duration) -> Client {
        Client { timeout, ..self }
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Sends `request` and returns the gateway's reply.
    pub fn call(&self, request: &Request) -> Result<Reply, ClientError> {
        self.call_raw(&encode_request(request))
    }

    /// Applies `changes` as one transaction whatever their number, streamed one change per
    /// line ([`Request::ApplyStream`]), so no frame limit caps a rule file.
    pub fn apply_streamed(&self, changes: &[Change]) -> Result<Reply, ClientError> {
        self.call_raw(&encode_apply_stream(changes))
    }

    /// Sends arbitrary bytes as a request (tests of the server's error handling use this).
    pub fn call_raw(&self, frame: &[u8]) -> Result<Reply, ClientError> {
        let mut stream = UnixStream::connect(&self.socket_path)
            .map_err(|source| ClientError::Connect { path: self.socket_path.clone(), source })?;
        stream.set_read_timeout(Some(self.timeout)).map_err(ClientError::Io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(ClientError::Io)?;
        // The server may refuse before reading everything (too large, not allowed) and close;
        // its reply is still waiting to be read, so a failed write is not the end.
        let write_error = stream.write_all(frame).err();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let read = (&mut stream).take(MAX_REPLY_BYTES as u64 + 1).read_to_end(&mut reply);
        if reply.is_empty() {
            return Err(ClientError::Io(match (write_error, read) {
                (Some(e), _) | (None, Err(e)) => e,
                (None, Ok(_)) => {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "gatewayd closed the connection without a reply")
                }
            }));
        }
        if reply.len() > MAX_REPLY_BYTES {
            return Err(ClientError::Protocol(format!("reply over {MAX_REPLY_BYTES} bytes")));
        }
        let envelope = decode_response(&reply).map_err(ClientError::Protocol)?;
        if envelope.version != PROTOCOL_VERSION {
            return Err(ClientError::Protocol(format!(
                "gatewayd speaks protocol version {}, this client {PROTOCOL_VERSION}",
                envelope.version
            )));
        }
        match envelope.outcome {
            Outcome::Ok(reply) => Ok(reply),
            Outcome::Error(e) => Err(ClientError::Refused(e)),
        }
    }
}
