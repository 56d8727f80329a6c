//! What one worker's SYN proxy counts. Same single-writer [`Counter`] as the
//! rest of the worker's statistics; malformed handshake segments are not
//! counted here but as drops, by [`super::HandshakeError::drop_reason`].

use crate::worker::counters::Counter;

/// Per-worker SYN-proxy counters.
#[derive(Debug, Default)]
pub struct SynProxyCounters {
    /// SYN-ACKs answered with a cookie.
    pub syn_acks_sent: Counter,
    /// Client ACKs whose cookie checked: connections opened to a server.
    pub cookies_valid: Counter,
    /// Client ACKs (of no connection) whose cookie did not check: forged,
    /// stale, or a connection the gateway forgot.
    pub cookies_invalid: Counter,
    /// Server SYN-ACKs that completed a proxied handshake.
    pub server_handshakes: Counter,
    /// SYNs sent to a server again after no answer.
    pub syn_retransmits: Counter,
    /// Proxied connections given up after the last retransmission.
    pub server_timeouts: Counter,
}

impl SynProxyCounters {
    /// Every counter with its stable snake_case name, for `gwctl stats` and
    /// exporters.
    pub fn values(&self) -> [(&'static str, u64); 6] {
        [
            ("synproxy_syn_acks_sent", self.syn_acks_sent.get()),
            ("synproxy_cookies_valid", self.cookies_valid.get()),
            ("synproxy_cookies_invalid", self.cookies_invalid.get()),
            ("synproxy_server_handshakes", self.server_handshakes.get()),
            ("synproxy_syn_retransmits", self.syn_retransmits.get()),
            ("synproxy_server_timeouts", self.server_timeouts.get()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_has_its_own_name_and_value() {
        let c = SynProxyCounters::default();
        let fields = [
            &c.syn_acks_sent,
            &c.cookies_valid,
            &c.cookies_invalid,
            &c.server_handshakes,
            &c.syn_retransmits,
            &c.server_timeouts,
        ];
        // Counter i is incremented i + 1 times, so a swapped name shows.
        for (i, counter) in fields.iter().enumerate() {
            counter.add(i as u64 + 1);
        }
        let values = c.values();
        for (i, (name, value)) in values.iter().enumerate() {
            assert_eq!(*value, i as u64 + 1, "{name}");
        }
        assert_eq!(values[0].0, "synproxy_syn_acks_sent");
        assert_eq!(values[5].0, "synproxy_server_timeouts");
        let mut names: Vec<_> = values.iter().map(|v| v.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), values.len());
    }
}
