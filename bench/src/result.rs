//! What one generator run reports (one JSON object on its stdout).

use serde::{Deserialize, Serialize};

/// A port's own counters at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// The handshakes before an established-flow run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub seconds: f64,
    /// Flows whose handshake completed.
    pub done: u64,
    /// Passes over the flows (1 + retries of lost SYNs).
    pub passes: u32,
}

/// One generator run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenResult {
    /// `established`, `connect` or `synflood`.
    pub mode: String,
    /// Answers counted on the server link (DR, TUN) instead of the client link.
    pub oneway: bool,
    pub flows: u32,
    pub window: u32,
    pub payload: u32,
    /// Handshakes before the measured phase (established runs).
    pub handshake: Option<Phase>,
    /// Segments of the measured phase sent (data segments, or SYNs).
    pub sent: u64,
    /// Their answers, counted until the drain after the phase: data ACKs
    /// back on the client link (or data arriving at the servers, one-way);
    /// completed handshakes (connect); SYN-ACKs (synflood).
    pub received: u64,
    /// Answers counted within the measured time.
    pub received_in_window: u64,
    /// `sent - received`: lost on the way (or still in flight at the end).
    pub lost: u64,
    /// Length of the measured phase.
    pub seconds: f64,
    /// `received_in_window / seconds`.
    pub rate: f64,
    /// `rate` in millions.
    pub mpps: f64,
    /// Handshake ACKs the clients sent.
    pub acks_sent: u64,
    /// Segments that reached the real-server side, and those it answered.
    pub server_seen: u64,
    pub server_answered: u64,
    /// Frames the generator did not expect (wrong addresses, not TCP).
    pub unexpected: u64,
    pub arp_answered: u64,
    /// Frames still waiting in the generator when it stopped (freed).
    pub unsent: u64,
    /// Share of a core the generator got during the measured phase (it
    /// polls: 1.0 is a core of its own).
    pub gen_cpu_share: Option<f64>,
    /// Fraction of the generator's loop iterations in the measured phase in
    /// which nothing moved: it was waiting for the device under test. Near
    /// 0, the generator itself was the slower side and the rate is its
    /// limit, not the device's.
    pub gen_idle: Option<f64>,
    pub client_link: LinkCounters,
    pub server_link: LinkCounters,
}

impl GenResult {
    /// Fraction of the segments sent that were answered.
    pub fn delivery(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.received as f64 / self.sent as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_json() {
        let r =
            GenResult { mode: "established".into(), sent: 10, received: 9, lost: 1, mpps: 1.5, ..GenResult::default() };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<GenResult>(&text).unwrap(), r);
        assert!((r.delivery() - 0.9).abs() < 1e-9);
    }
}
