//! Framing and decoding of the control protocol.
//!
//! One connection carries one request and one reply, each a JSON object followed by a
//! newline (a client may instead end its request by shutting down its write side). One
//! exchange per connection keeps the server's state per client to nothing, and makes a
//! half-open or slow client cost exactly one bounded read. The one request longer than a
//! line is the streamed apply: its request line counts the change lines that follow
//! ([`encode_apply_stream`]), read one bounded frame at a time by a [`FrameReader`].
//!
//! Decoding is layered so every bad request gets the most specific error: not JSON at all,
//! then the envelope (`version` before anything else, so a future client talking to this
//! server is told about the version, not about fields it cannot know), then the command name
//! (unknown command), then the command's fields.

use std::io::{self, Read};
use std::time::Instant;

use serde_json::Value;

use crate::api::{
    ApiError, Change, ErrorKind, Outcome, Reply, Request, RequestEnvelope, ResponseEnvelope, PROTOCOL_VERSION,
};

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// More than the limit without a newline.
    TooLarge {
        limit: usize,
    },
    /// The deadline passed before a complete frame arrived.
    Timeout,
    /// The peer closed without sending anything.
    Empty,
    Io(io::Error),
}

/// A stream whose read timeout can be set, so a read can be bounded by a deadline.
pub trait TimedRead: Read {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()>;
}

impl TimedRead for std::os::unix::net::UnixStream {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left)
            }
        };
        self.set_read_timeout(timeout)
    }
}

/// Reads one frame: bytes up to the first newline (excluded), or to end of stream. At most
/// `limit` bytes are buffered; the whole read ends by `deadline`, however slowly the peer
/// trickles bytes.
pub fn read_frame<S: TimedRead>(
    stream: &mut S,
    limit: usize,
    deadline: Option<Instant>,
) -> Result<Vec<u8>, FrameError> {
    FrameReader::new(stream).next_frame(limit, deadline)
}

/// Reads successive frames from one stream, keeping what arrived after a frame's newline for
/// the next one (a streamed apply sends many frames in one write).
pub struct FrameReader<S> {
    stream: S,
    /// Bytes read and not yet returned start at `start`.
    pending: Vec<u8>,
    start: usize,
}

impl<S: TimedRead> FrameReader<S> {
    pub fn new(stream: S) -> FrameReader<S> {
        FrameReader { stream, pending: Vec::new(), start: 0 }
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The next frame, as [`read_frame`] reads one.
    pub fn next_frame(&mut self, limit: usize, deadline: Option<Instant>) -> Result<Vec<u8>, FrameError> {
        let mut scanned = self.start;
        loop {
            if let Some(pos) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                if end - self.start > limit {
                    return Err(FrameError::TooLarge { limit });
                }
                let frame = self.pending[self.start..end].to_vec();
                self.start = end + 1;
                return Ok(frame);
            }
            if self.pending.len() - self.start > limit {
                return Err(FrameError::TooLarge { limit });
            }
            // Drop what was returned before reading more, so the buffer stays one frame
            // plus one read long.
            self.pending.drain(..self.start);
            self.start = 0;
            scanned = self.pending.len();
            match self.stream.set_read_deadline(deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(FrameError::Timeout),
                Err(e) => return Err(FrameError::Io(e)),
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(FrameError::Timeout)
                }
                Err(e) => return Err(FrameError::Io(e)),
            };
            if n == 0 {
                return if self.pending.is_empty() {
                    Err(FrameError::Empty)
                } else {
                    Ok(std::mem::take(&mut self.pending))
                };
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

impl<S: TimedRead + ?Sized> TimedRead for &mut S {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        (**self).set_read_deadline(deadline)
    }
}

/// Decodes a request frame, or says precisely what is wrong with it.
pub fn decode_request(frame: &[u8]) -> Result<Request, ApiError> {
    let malformed = |msg: String| ApiError::new(ErrorKind::Malformed, msg);
    let value: Value =
        serde_json::from_slice(frame).map_err(|e| malformed(format!("request is not valid JSON: {e}")))?;
    let Value::Object(mut envelope) = value else {
        return Err(malformed("request is not a JSON object".into()));
    };
    let version = match envelope.get("version") {
        None => return Err(malformed("request has no \"version\" field".into())),
        Some(v) => {
            v.as_u64().ok_or_else(|| malformed(format!("request \"version\" must be a positive integer, not {v}")))?
        }
    };
    if version != u64::from(PROTOCOL_VERSION) {
        return Err(ApiError::new(
            ErrorKind::UnsupportedVersion,
            format!(
                "protocol version {version} is not supported (this gateway speaks version \
                 {PROTOCOL_VERSION})"
            ),
        ));
    }
    let request = envelope.remove("request").ok_or_else(|| malformed("request has no \"request\" field".into()))?;
    if let Some(extra) = envelope.keys().find(|k| *k != "version") {
        return Err(malformed(format!("unknown field {extra:?} in the request envelope")));
    }
    let command = match request.get("command") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(malformed(format!("\"command\" must be a string, not {other}"))),
        None => return Err(malformed("request has no \"command\" field".into())),
    };
    if !Request::COMMANDS.contains(&command.as_str()) {
        return Err(ApiError::new(
            ErrorKind::UnknownCommand,
            format!("unknown command {command:?}; known commands: {}", Request::COMMANDS.join(", ")),
        ));
    }
    serde_json::from_value(request).map_err(|e| malformed(format!("invalid {command:?} request: {e}")))
}

/// Decodes change `index` of a streamed apply.
pub fn decode_change(frame: &[u8], index: usize) -> Result<Change, ApiError> {
    serde_json::from_slice(frame).map_err(|e| {
        let mut e = ApiError::new(ErrorKind::Malformed, format!("invalid change {index} of the stream: {e}"));
        e.change_index = Some(index);
        e
    })
}

/// The bytes of a streamed apply of `changes`: the request line, then one line per change.
pub fn encode_apply_stream(changes: &[Change]) -> Vec<u8> {
    let mut bytes = encode_request(&Request::ApplyStream { changes: changes.len() as u64 });
    for change in changes {
        // A `Change` always serialises (string keys, no failing impl); skipping one would
        // make the count wrong, which the server refuses, so nothing half-done can happen.
        if serde_json::to_writer(&mut bytes, change).is_ok() {
            bytes.push(b'\n');
        }
    }
    bytes
}

/// The bytes of a request frame (newline included).
pub fn encode_request(request: &Request) -> Vec<u8> {
    let envelope = RequestEnvelope { version: PROTOCOL_VERSION, request: request.clone() };
    encode(&envelope)
}

/// The bytes of a reply frame (newline included).
pub fn encode_response(outcome: Result<Reply, ApiError>) -> Vec<u8> {
    let outcome = match outcome {
        Ok(reply) => Outcome::Ok(reply),
        Err(e) => Outcome::Error(e),
    };
    encode(&ResponseEnvelope { version: PROTOCOL_VERSION, outcome })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising these types cannot fail: every map key is a string and no Serialize impl
    // of ours returns an error. Fall back to a valid error frame rather than panic anyway.
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|e| {
        format!(
            "{{\"version\":{PROTOCOL_VERSION},\"error\":{{\"kind\":\"malformed\",\"message\":{:?}}}}}",
            format!("reply could not be encoded: {e}")
        )
        .into_bytes()
    });
    bytes.push(b'\n');
    bytes
}

/// Decodes a reply frame (client side).
pub fn decode_response(frame: &[u8]) -> Result<ResponseEnvelope, String> {
    serde_json::from_slice(frame).map_err(|e| format!("reply is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::VirtualService;
    use std::time::Duration;

    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let c = self.0.remove(0);
            buf[..c.len()].copy_from_slice(&c);
            Ok(c.len())
        }
    }

    impl TimedRead for Chunks {
        fn set_read_deadline(&mut self, _deadline: Option<Instant>) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frames_end_at_newline_or_eof_and_respect_the_limit() {
        let mut s = Chunks(vec![b"{\"a\"".to_vec(), b":1}\nrest".to_vec()]);
        assert_eq!(read_frame(&mut s, 100, None).unwrap(), b"{\"a\":1}");
        let mut s = Chunks(vec![b"abc".to_vec()]);
        assert_eq!(read_frame(&mut s, 100, None).unwrap(), b"abc");
        let mut s = Chunks(vec![]);
        assert!(matches!(read_frame(&mut s, 100, None), Err(FrameError::Empty)));
        let mut s = Chunks(vec![vec![b'x'; 60], vec![b'x'; 60]]);
        assert!(matches!(read_frame(&mut s, 100, None), Err(FrameError::TooLarge { limit: 100 })));
        let mut s = Chunks(vec![vec![b'x'; 100], b"\n".to_vec()]);
        assert_eq!(read_frame(&mut s, 100, None).unwrap().len(), 100);
    }

    #[test]
    fn a_frame_reader_keeps_what_follows_a_frame_for_the_next() {
        let mut s = Chunks(vec![b"one\ntwo\nthr".to_vec(), b"ee\n".to_vec(), vec![b'x'; 120]]);
        let mut frames = FrameReader::new(&mut s);
        assert_eq!(frames.next_frame(100, None).unwrap(), b"one");
        assert_eq!(frames.next_frame(100, None).unwrap(), b"two");
        assert_eq!(frames.next_frame(100, None).unwrap(), b"three");
        assert!(matches!(frames.next_frame(100, None), Err(FrameError::TooLarge { limit: 100 })));
        let mut s = Chunks(vec![b"last".to_vec()]);
        let mut frames = FrameReader::new(&mut s);
        assert_eq!(frames.next_frame(100, None).unwrap(), b"last");
        assert!(matches!(frames.next_frame(100, None), Err(FrameError::Empty)));
    }

    #[test]
    fn a_passed_deadline_is_a_timeout() {
        let (mut a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let deadline = Instant::now() + Duration::from_millis(30);
        let t = Instant::now();
        assert!(matches!(read_frame(&mut a, 100, Some(deadline)), Err(FrameError::Timeout)));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn each_kind_of_bad_request_gets_its_own_error() {
        let cases: [(&[u8], ErrorKind, &str); 8] = [
            (b"\xff\xfe garbage", ErrorKind::Malformed, "request is not valid JSON"),
            (b"[1,2]", ErrorKind::Malformed, "request is not a JSON object"),
            (br#"{"request":{"command":"info"}}"#, ErrorKind::Malformed, "request has no \"version\" field"),
            (
                br#"{"version":2,"request":{"command":"info"}}"#,
                ErrorKind::UnsupportedVersion,
                "protocol version 2 is not supported (this gateway speaks version 1)",
            ),
            (
                br#"{"version":1,"request":{"command":"reboot"}}"#,
                ErrorKind::UnknownCommand,
                "unknown command \"reboot\"; known commands: apply, ",
            ),
            (br#"{"version":1,"request":{}}"#, ErrorKind::Malformed, "request has no \"command\" field"),
            (
                br#"{"version":1,"request":{"command":"zero","service":{"tcp":{"addr":"10.0.0.300","port":80}}}}"#,
                ErrorKind::Malformed,
                "invalid \"zero\" request: invalid IP address syntax",
            ),
            (
                br#"{"version":1,"request":{"command":"info"},"x":1}"#,
                ErrorKind::Malformed,
                "unknown field \"x\" in the request envelope",
            ),
        ];
        for (frame, kind, prefix) in cases {
            let e = decode_request(frame).unwrap_err();
            assert_eq!(e.kind, kind, "{}", String::from_utf8_lossy(frame));
            assert!(e.message.starts_with(prefix), "{:?} does not start with {prefix:?}", e.message);
        }
    }

    #[test]
    fn requests_round_trip_and_every_command_is_known() {
        let vs = VirtualService::Udp { addr: "10.0.0.1".parse().unwrap(), port: 53 };
        let requests = vec![
            Request::Apply { changes: vec![Change::Clear, Change::DeleteService { service: vs }] },
            Request::ApplyStream { changes: 2 },
            Request::Zero { service: Some(vs) },
            Request::ListServices { service: None },
            Request::ListConnections,
            Request::GetTimeouts,
            Request::ListLaddrs { service: vs },
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
        assert_eq!(requests.len(), Request::COMMANDS.len());
        for r in requests {
            let frame = encode_request(&r);
            assert_eq!(frame.last(), Some(&b'\n'));
            let v: Value = serde_json::from_slice(&frame).unwrap();
            let name = v["request"]["command"].as_str().unwrap().to_string();
            assert!(Request::COMMANDS.contains(&name.as_str()), "{name}");
            assert_eq!(decode_request(&frame[..frame.len() - 1]).unwrap(), r);
        }
        let reply = encode_response(Err(ApiError::new(ErrorKind::TooLarge, "big")));
        assert_eq!(reply, b"{\"version\":1,\"error\":{\"kind\":\"too_large\",\"message\":\"big\"}}\n");
        let ok = encode_response(Ok(Reply::Zeroed));
        assert_eq!(ok, b"{\"version\":1,\"ok\":{\"reply\":\"zeroed\"}}\n");
        assert_eq!(decode_response(&ok).unwrap().outcome, Outcome::Ok(Reply::Zeroed));
    }
}
