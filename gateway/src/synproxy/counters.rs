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
    /// Proxied connections the server refused (a RST for our SYN), passed
    /// to the client as its RST.
    pub server_resets: Counter,
    /// Server SYN-ACKs whose window-scale shift differs from the one our
    /// SYN-ACK announced: the client misreads that server's windows, so the
    /// configuration's `wscale` must match the servers'.
    pub wscale_mismatches: Counter,
}

impl SynProxyCounters {
    /// Every counter with its stable name, as `gwctl stats` prints the
    /// worker's events.
    pub fn values(&self) -> [(&'static str, u64); 8] {
        [
            ("synproxy syn-acks sent", self.syn_acks_sent.get()),
            ("synproxy cookies valid", self.cookies_valid.get()),
            ("synproxy cookies invalid", self.cookies_invalid.get()),
            ("synproxy server handshakes", self.server_handshakes.get()),
            ("synproxy syn retransmits", self.syn_retransmits.get()),
            ("synproxy server timeouts", self.server_timeouts.get()),
            ("synproxy server resets", self.server_resets.get()),
            ("synproxy server wscale mismatches", self.wscale_mismatches.get()),
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
            &c.server_resets,
            &c.wscale_mismatches,
        ];
        // Counter i is incremented i + 1 times, so a swapped name shows.
        for (i, counter) in fields.iter().enumerate() {
            counter.add(i as u64 + 1);
        }
        let values = c.values();
        for (i, (name, value)) in values.iter().enumerate() {
            assert_eq!(*value, i as u64 + 1, "{name}");
        }
        assert_eq!(values[0].0, "synproxy syn-acks sent");
        assert_eq!(values[6].0, "synproxy server resets");
        let mut names: Vec<_> = values.iter().map(|v| v.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), values.len());
    }
}
