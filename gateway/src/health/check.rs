//! A health check as the checker runs it: the API's [`HealthCheckConfig`] validated, its
//! durations as [`Duration`]s and its digest as bytes.
//!
//! gwctl refuses what it can judge from the command line; this is where the rest is judged
//! (and everything again, for a request that did not come from gwctl), because only the
//! daemon's side knows whether the script it will run exists and may be executed.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use gwapi::health::{CheckKind, HealthCheckConfig, OnFailure, MAX_COUNT, MAX_INTERVAL_MS, MIN_INTERVAL_MS};

/// A validated check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// As configured; listings show it.
    pub config: HealthCheckConfig,
    pub delay_loop: Duration,
    pub timeout: Duration,
    pub delay_before_retry: Duration,
    /// The body's MD5 an HTTP check expects.
    pub digest: Option<[u8; 16]>,
}

impl Check {
    pub fn retry(&self) -> u32 {
        self.config.retry
    }
    pub fn rise(&self) -> u32 {
        self.config.rise
    }
    pub fn on_failure(&self) -> OnFailure {
        self.config.on_failure
    }
    pub fn kind(&self) -> &CheckKind {
        &self.config.kind
    }
}

/// Why a check was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    DurationOutOfRange {
        name: &'static str,
        ms: u64,
    },
    CountOutOfRange {
        name: &'static str,
        value: u32,
        min: u32,
    },
    BadPath(String),
    BadHost(String),
    /// An https check's host no TLS server name can be.
    BadSni(String),
    BadStatus(u16),
    BadDigest(String),
    ScriptNotFound {
        script: String,
        error: String,
    },
    ScriptNotExecutable(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::DurationOutOfRange { name, ms } => {
                write!(f, "{name} of {ms} ms is out of range {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS} ms")
            }
            CheckError::CountOutOfRange { name, value, min } => {
                write!(f, "{name} {value} is out of range {min}..{MAX_COUNT}")
            }
            CheckError::BadPath(p) => write!(f, "url {p:?} is not a path starting with / without spaces"),
            CheckError::BadHost(h) => write!(f, "host {h:?} is empty or holds spaces"),
            CheckError::BadSni(h) => f.write_str(&super::tls::sni_refusal(h)),
            CheckError::BadStatus(s) => write!(f, "status {s} is out of range 100..599"),
            CheckError::BadDigest(d) => write!(f, "digest {d:?} is not an MD5 digest (32 hex digits)"),
            CheckError::ScriptNotFound { script, error } => write!(f, "misc script {script}: {error}"),
            CheckError::ScriptNotExecutable(s) => {
                write!(f, "misc script {s} is not an executable file (mode or type)")
            }
        }
    }
}

impl Check {
    /// Validates `config`.
    pub fn new(config: &HealthCheckConfig) -> Result<Check, CheckError> {
        let duration = |name: &'static str, ms: u64| {
            if (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
                Ok(Duration::from_millis(ms))
            } else {
                Err(CheckError::DurationOutOfRange { name, ms })
            }
        };
        let delay_loop = duration("delay_loop", config.delay_loop_ms)?;
        let timeout = duration("connect_timeout", config.connect_timeout_ms)?;
        let delay_before_retry = duration("delay_before_retry", config.delay_before_retry_ms)?;
        if config.retry > MAX_COUNT {
            return Err(CheckError::CountOutOfRange { name: "retry", value: config.retry, min: 0 });
        }
        if config.rise == 0 || config.rise > MAX_COUNT {
            return Err(CheckError::CountOutOfRange { name: "rise", value: config.rise, min: 1 });
        }
        let mut digest = None;
        match &config.kind {
            CheckKind::Tcp | CheckKind::Udp { .. } => {}
            CheckKind::Http { path, host, status, digest: hex, tls } => {
                if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                    return Err(CheckError::BadPath(path.clone()));
                }
                if let Some(h) = host {
                    if h.is_empty() || h.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                        return Err(CheckError::BadHost(h.clone()));
                    }
                    if *tls && super::tls::server_name(h).is_none() {
                        return Err(CheckError::BadSni(h.clone()));
                    }
                }
                if !(100..=599).contains(status) {
                    return Err(CheckError::BadStatus(*status));
                }
                if let Some(hex) = hex {
                    digest = Some(parse_digest(hex).ok_or_else(|| CheckError::BadDigest(hex.clone()))?);
                }
            }
            CheckKind::Misc { script, .. } => {
                let meta = std::fs::metadata(Path::new(script))
                    .map_err(|e| CheckError::ScriptNotFound { script: script.clone(), error: e.to_string() })?;
                if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                    return Err(CheckError::ScriptNotExecutable(script.clone()));
                }
            }
        }
        Ok(Check { config: config.clone(), delay_loop, timeout, delay_before_retry, digest })
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(digest: &str) -> HealthCheckConfig {
        HealthCheckConfig::new(CheckKind::Http {
            path: "/".into(),
            host: None,
            status: 200,
            digest: Some(digest.into()),
            tls: false,
        })
    }

    #[test]
    fn refusals_name_the_value() {
        let mut c = HealthCheckConfig::new(CheckKind::Tcp);
        c.connect_timeout_ms = 5;
        assert_eq!(Check::new(&c).unwrap_err().to_string(), "connect_timeout of 5 ms is out of range 10..86400000 ms");
        let mut c = HealthCheckConfig::new(CheckKind::Tcp);
        c.rise = 0;
        assert_eq!(Check::new(&c).unwrap_err().to_string(), "rise 0 is out of range 1..1000");
        assert_eq!(
            Check::new(&http("zz")).unwrap_err().to_string(),
            "digest \"zz\" is not an MD5 digest (32 hex digits)"
        );
        let https = |host: &str| {
            HealthCheckConfig::new(CheckKind::Http {
                path: "/".into(),
                host: Some(host.into()),
                status: 200,
                digest: None,
                tls: true,
            })
        };
        assert_eq!(
            Check::new(&https("bad_name!")).unwrap_err().to_string(),
            "host \"bad_name!\" is neither a DNS name nor an address for the TLS SNI"
        );
        assert!(Check::new(&https("www.example:8443")).is_ok());
        let c = HealthCheckConfig::new(CheckKind::Misc { script: "/nonexistent/check.sh".into(), dynamic: false });
        assert!(Check::new(&c).unwrap_err().to_string().starts_with("misc script /nonexistent/check.sh: "));
        // A file that exists but may not be executed.
        let path = std::env::temp_dir().join(format!("gw-check-{}.sh", std::process::id()));
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let script = path.to_str().unwrap().to_string();
        let c = HealthCheckConfig::new(CheckKind::Misc { script: script.clone(), dynamic: false });
        let refused = Check::new(&c).unwrap_err().to_string();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let accepted = Check::new(&c).is_ok();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(refused, format!("misc script {script} is not an executable file (mode or type)"));
        assert!(accepted, "the same file once executable");
    }

    #[test]
    fn a_valid_check_carries_its_durations_and_digest() {
        let check = Check::new(&http("00112233445566778899aabbccddeeff")).unwrap();
        assert_eq!(check.delay_loop, Duration::from_secs(60));
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert_eq!(check.digest.unwrap()[15], 0xff);
    }
}
