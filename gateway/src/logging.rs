//! gatewayd's log: the `log` facade, written to standard error in one of two forms.
//!
//! - **Under systemd** (`$JOURNAL_STREAM` names stderr: it is connected to journald) each line
//!   starts with its syslog priority in angle brackets, as sd-daemon(3) describes
//!   (`<4>gatewayd: worker 0 (lcore 1) stalled: ...`), and has no timestamp: journald
//!   stamps the entry and reads the priority from the prefix, so `journalctl -p warning`
//!   filters on it.
//! - **Elsewhere** (a terminal, a file) a line is an RFC 3339 UTC timestamp, the level
//!   word, and the message: `2026-12-04T17:58:45.123Z INFO  gatewayd: running with ...`.
//!
//! The level is the configuration file's `"log_level"` (default `info`);
//! `$GATEWAYD_LOG`, in `RUST_LOG` syntax (`debug`, `gateway::control=debug`), overrides it.
//!
//! [`RateLimit`] bounds the lines one cause may write (refused control requests: a client
//! that loops on a bad request must not fill the disk).

use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter};

/// The environment variable that overrides `"log_level"` (env_logger's filter syntax).
pub const LEVEL_ENV: &str = "GATEWAYD_LOG";

/// The levels `"log_level"` accepts, as written there.
pub const LEVEL_NAMES: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// A `"log_level"` value: one of [`LEVEL_NAMES`] (lower case, as in the file); anything
/// else (including `off`: a gateway that logs nothing is not something to ask for by
/// accident) is `None`.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// `<N>message`: N the syslog priority; journald adds the time.
    Journal,
    /// `TIMESTAMP LEVEL message`.
    Plain,
}

impl LineStyle {
    /// The style for a stream whose device and inode are `stream`, in a process whose
    /// `$JOURNAL_STREAM` is `journal_stream`. systemd sets that to `DEVICE:INODE` of the
    /// stream it connected to journald; it is inherited by whatever the service starts, so
    /// only a match says the lines reach journald (systemd.exec(5)), not a gatewayd run by
    /// hand from a unit's shell with stderr in a file.
    pub fn for_stream(journal_stream: Option<&std::ffi::OsStr>, stream: Option<(u64, u64)>) -> LineStyle {
        let journal = journal_stream.and_then(|v| v.to_str()).and_then(device_and_inode);
        match (journal, stream) {
            (Some(journal), Some(stream)) if journal == stream => LineStyle::Journal,
            _ => LineStyle::Plain,
        }
    }
}

/// `DEVICE:INODE`, both decimal, as `$JOURNAL_STREAM` holds them.
fn device_and_inode(text: &str) -> Option<(u64, u64)> {
    let (device, inode) = text.split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// The syslog priority of a level (sd-daemon(3): `<3>` error, `<4>` warning, `<6>` info,
/// `<7>` debug; trace is debug too, syslog has nothing finer).
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Writes one log line in `style`; `timestamp` is used only by [`LineStyle::Plain`].
pub fn write_line(
    out: &mut impl Write,
    style: LineStyle,
    level: Level,
    timestamp: &dyn fmt::Display,
    message: &fmt::Arguments,
) -> io::Result<()> {
    match style {
        LineStyle::Journal => writeln!(out, "<{}>{message}", syslog_priority(level)),
        LineStyle::Plain => writeln!(out, "{timestamp} {level:<5} {message}"),
    }
}

/// Installs gatewayd's logger: `level` unless [`LEVEL_ENV`] says otherwise, to standard
/// error, in the [`LineStyle`] `$JOURNAL_STREAM` calls for. A second call (there is one
/// logger per process) changes nothing.
#[cfg(feature = "dpdk")]
pub fn init(level: LevelFilter) {
    use std::os::unix::fs::MetadataExt;
    // The stat of the stream itself (a pipe or socket too): /proc's fd links resolve to it.
    let stderr = std::fs::metadata("/proc/self/fd/2").ok().map(|m| (m.dev(), m.ino()));
    let style = LineStyle::for_stream(std::env::var_os("JOURNAL_STREAM").as_deref(), stderr);
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .parse_env(env_logger::Env::new().filter(LEVEL_ENV))
        .write_style(env_logger::WriteStyle::Never)
        .format(move |buf, record| {
            let timestamp = buf.timestamp_millis();
            write_line(buf, style, record.level(), &timestamp, record.args())
        })
        .try_init();
}

/// At most `per_second` lines in each one-second window; what is held back is counted
/// and reported with the next line let through.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    window_start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

impl RateLimit {
    pub const WINDOW: Duration = Duration::from_secs(1);

    pub fn new(per_second: u32) -> RateLimit {
        RateLimit { per_second, window_start: None, written: 0, suppressed: 0 }
    }

    /// Whether a line may be written at `now`: `Some(k)` with `k` the lines suppressed
    /// since the last one written (for the line to say so), `None` to drop this one.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let window_over = self.window_start.is_none_or(|start| now.saturating_duration_since(start) >= Self::WINDOW);
        if window_over {
            self.window_start = Some(now);
            self.written = 0;
        }
        if self.written >= self.per_second {
            self.suppressed += 1;
            return None;
        }
        self.written += 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// The lines suppressed in a window that is over, taken (so said once), for a summary
    /// line when no later line came to carry the count; `None` when there are none yet to
    /// report.
    pub fn take_suppressed(&mut self, now: Instant) -> Option<u64> {
        let window_over = self.window_start.is_some_and(|start| now.saturating_duration_since(start) >= Self::WINDOW);
        if !window_over || self.suppressed == 0 {
            return None;
        }
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(style: LineStyle, level: Level, message: fmt::Arguments) -> String {
        let mut out = Vec::new();
        write_line(&mut out, style, level, &"2026-12-04T17:58:45.123Z", &message).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn journal_lines_carry_the_syslog_priority_and_no_timestamp() {
        let n = 2;
        assert_eq!(
            line(LineStyle::Journal, Level::Info, format_args!("gatewayd: running with {n} worker(s)")),
            "<6>gatewayd: running with 2 worker(s)\n"
        );
        assert_eq!(line(LineStyle::Journal, Level::Warn, format_args!("refused")), "<4>refused\n");
        assert_eq!(line(LineStyle::Journal, Level::Error, format_args!("failed")), "<3>failed\n");
        assert_eq!(line(LineStyle::Journal, Level::Debug, format_args!("d")), "<7>d\n");
        assert_eq!(line(LineStyle::Journal, Level::Trace, format_args!("t")), "<7>t\n");
    }

    #[test]
    fn plain_lines_carry_the_timestamp_and_an_aligned_level_word() {
        assert_eq!(
            line(LineStyle::Plain, Level::Info, format_args!("gatewayd: port p0 (net_af_packet): link up")),
            "2026-12-04T17:58:45.123Z INFO  gatewayd: port p0 (net_af_packet): link up\n"
        );
        assert_eq!(line(LineStyle::Plain, Level::Error, format_args!("x")), "2026-12-04T17:58:45.123Z ERROR x\n");
    }

    #[test]
    fn the_journal_style_only_for_the_stream_journal_stream_names() {
        use std::ffi::OsStr;
        let style = |v: Option<&str>, stream| LineStyle::for_stream(v.map(OsStr::new), stream);
        assert_eq!(style(Some("8:12345"), Some((8, 12345))), LineStyle::Journal);
        // Inherited by a process whose stderr went elsewhere.
        assert_eq!(style(Some("8:12345"), Some((8, 12346))), LineStyle::Plain);
        assert_eq!(style(Some("8:12345"), Some((9, 12345))), LineStyle::Plain);
        assert_eq!(style(Some("8:12345"), None), LineStyle::Plain);
        assert_eq!(style(None, Some((8, 12345))), LineStyle::Plain);
        for bad in ["", "8", "8:", ":12345", "8:12345:1", "x:12345", "-8:12345"] {
            assert_eq!(style(Some(bad), Some((8, 12345))), LineStyle::Plain, "{bad:?}");
        }
    }

    #[test]
    fn only_the_five_level_names_parse() {
        for (name, level) in LEVEL_NAMES.iter().zip([
            LevelFilter::Error,
            LevelFilter::Warn,
            LevelFilter::Info,
            LevelFilter::Debug,
            LevelFilter::Trace,
        ]) {
            assert_eq!(parse_level(name), Some(level));
        }
        for bad in ["nonsense", "off", "INFO", "", "warning"] {
            assert_eq!(parse_level(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_rate_limit_lets_n_lines_a_second_through_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(3);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(limit.admit(ms(0)), Some(0));
        assert_eq!(limit.admit(ms(10)), Some(0));
        assert_eq!(limit.admit(ms(20)), Some(0));
        for n in 0..100 {
            assert_eq!(limit.admit(ms(30 + n)), None, "line {n} past the budget");
        }
        // The window started at 0 ms: 999 ms is still in it.
        assert_eq!(limit.admit(ms(999)), None);
        // A new window: the first line reports the 101 held back, the next ones none.
        assert_eq!(limit.admit(ms(1000)), Some(101));
        assert_eq!(limit.admit(ms(1001)), Some(0));
        assert_eq!(limit.admit(ms(1002)), Some(0));
        assert_eq!(limit.admit(ms(1003)), None);
        // A quiet spell: the window restarts at the next line, not on a fixed grid.
        assert_eq!(limit.admit(ms(5500)), Some(1));
        assert_eq!(limit.admit(ms(6400)), Some(0));
        assert_eq!(limit.admit(ms(6401)), Some(0));
        assert_eq!(limit.admit(ms(6402)), None);
        assert_eq!(limit.admit(ms(6500)), Some(1));
    }

    #[test]
    fn suppressed_lines_are_summed_up_once_their_window_is_over() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(1);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(limit.take_suppressed(ms(0)), None, "nothing yet");
        assert_eq!(limit.admit(ms(0)), Some(0));
        assert_eq!(limit.take_suppressed(ms(2000)), None, "nothing suppressed");
        assert_eq!(limit.admit(ms(2000)), Some(0));
        assert_eq!(limit.admit(ms(2001)), None);
        assert_eq!(limit.admit(ms(2002)), None);
        assert_eq!(limit.take_suppressed(ms(2999)), None, "the window is still open");
        assert_eq!(limit.take_suppressed(ms(3000)), Some(2));
        assert_eq!(limit.take_suppressed(ms(3500)), None, "said once");
        // Taken by the summary, the count is not repeated on the next line.
        assert_eq!(limit.admit(ms(3600)), Some(0));
    }
}
