//! The IPVS connection state machine and its timeouts.
//!
//! TCP follows IPVS's `tcp_states` table (`net/netfilter/ipvs/ip_vs_proto_tcp.c`) exactly:
//! a state is tracked per connection, not per direction, driven by the flags of each packet
//! (RST before SYN before FIN before ACK) and by where the packet comes from: the client
//! (input), the real server (output), or the client of a DR/TUN connection whose replies we
//! never see (input-only, IPVS's `NOOUTPUT`). Each state has its own timeout; a packet
//! re-arms the connection with the timeout of the state it leaves it in. UDP has one state.
//!
//! The state names are the ones `ipvsadm -lnc` prints.

use std::fmt;

/// A connection's state (IPVS `IP_VS_TCP_S_*`, plus the single UDP state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum State {
    #[default]
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Synack,
    /// Every UDP connection (IPVS `IP_VS_UDP_S_NORMAL`).
    Udp,
}

impl State {
    const COUNT: usize = 12;
    const TCP: [State; 11] = [
        State::None,
        State::Established,
        State::SynSent,
        State::SynRecv,
        State::FinWait,
        State::TimeWait,
        State::Close,
        State::CloseWait,
        State::LastAck,
        State::Listen,
        State::Synack,
    ];

    /// IPVS's number of a TCP state (`IP_VS_TCP_S_*`, what a sync record carries), which
    /// is its place in [`State`]; `None` for UDP's state.
    pub fn tcp_number(self) -> Option<u16> {
        Self::TCP.iter().position(|&s| s == self).map(|n| n as u16)
    }

    /// The TCP state IPVS numbers `n`, if there is one.
    pub fn from_tcp_number(n: u16) -> Option<State> {
        Self::TCP.get(usize::from(n)).copied()
    }

    /// The name `ipvsadm -lnc` prints.
    pub const fn name(self) -> &'static str {
        match self {
            State::None => "NONE",
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait => "FIN_WAIT",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::Synack => "SYNACK",
            State::Udp => "UDP",
        }
    }

    /// Whether a connection in this state counts as active (IPVS: only ESTABLISHED does).
    pub const fn is_active(self) -> bool {
        matches!(self, State::Established)
    }

    /// Whether the client's handshake is still open (only its SYN seen): what a full
    /// connection table sheds first, since a spoofed SYN never gets further.
    pub const fn is_half_open(self) -> bool {
        matches!(self, State::None | State::SynRecv)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a packet of a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to virtual service.
    In = 0,
    /// Real server back to us (NAT and FNAT only).
    Out = 1,
}

/// TCP header flag bits, as in the header's flags byte (the wire layer's).
pub use crate::wire::tcp::flags as tcp_flags;

// Table rows: IPVS's `tcp_state_idx` order (syn, fin, ack, rst), for each of the three
// directions (input, output, input-only); columns are the current state.
use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI, SynRecv as SR,
    SynSent as SS, TimeWait as TW,
};
const TCP_STATES: [[[State; 11]; 4]; 3] = [
    // INPUT:  sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW], // fin
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR], // rst
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// Whether a TCP packet with `flags` leaves a connection in `state` established: most
/// packets, an ACK (no SYN, FIN or RST) of an established connection, which stays
/// established in every table (the ack rows' sES column), either way.
#[inline(always)]
pub fn stays_established(state: State, flags: u8) -> bool {
    use tcp_flags::*;
    state == State::Established && flags & (RST | SYN | FIN | ACK) == ACK
}

/// The state a TCP packet with `flags` moves a connection in `state` to. `sees_replies` is
/// false for DR and TUN, whose client packets use IPVS's input-only row. A packet with none
/// of SYN, FIN, ACK, RST closes the connection, as in IPVS (`new_state` starts as CLOSE).
#[inline(always)]
pub fn tcp_transition(state: State, dir: Direction, sees_replies: bool, flags: u8) -> State {
    use tcp_flags::*;
    if stays_established(state, flags) {
        return State::Established;
    }
    let row = if flags & RST != 0 {
        3
    } else if flags & SYN != 0 {
        0
    } else if flags & FIN != 0 {
        1
    } else if flags & ACK != 0 {
        2
    } else {
        return State::Close;
    };
    let table = match (dir, sees_replies) {
        (Direction::Out, _) => 1,
        (Direction::In, true) => 0,
        (Direction::In, false) => 2,
    };
    let col = state as usize;
    if col >= State::TCP.len() {
        return state; // a UDP state never reaches here; keep it rather than index out
    }
    TCP_STATES[table][row][col]
}

/// Seconds a connection lives in each state without a packet; `--set tcp tcpfin udp` edits
/// the ESTABLISHED, FIN_WAIT and UDP ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    secs: [u32; State::COUNT],
}

impl Default for Timeouts {
    /// IPVS's defaults (`tcp_timeouts`, `udp_timeouts`): `--timeout` prints 900 120 300.
    fn default() -> Self {
        let mut secs = [0; State::COUNT];
        secs[State::None as usize] = 2;
        secs[State::Established as usize] = 15 * 60;
        secs[State::SynSent as usize] = 2 * 60;
        secs[State::SynRecv as usize] = 60;
        secs[State::FinWait as usize] = 2 * 60;
        secs[State::TimeWait as usize] = 2 * 60;
        secs[State::Close as usize] = 10;
        secs[State::CloseWait as usize] = 60;
        secs[State::LastAck as usize] = 30;
        secs[State::Listen as usize] = 2 * 60;
        secs[State::Synack as usize] = 2 * 60;
        secs[State::Udp as usize] = 5 * 60;
        Timeouts { secs }
    }
}

impl Timeouts {
    /// The timeout of `state` in seconds.
    #[inline]
    pub fn of(&self, state: State) -> u32 {
        self.secs[state as usize]
    }

    pub fn tcp(&self) -> u32 {
        self.of(State::Established)
    }

    pub fn tcp_fin(&self) -> u32 {
        self.of(State::FinWait)
    }

    pub fn udp(&self) -> u32 {
        self.of(State::Udp)
    }

    /// `--set tcp tcpfin udp`; a 0 keeps the current value, as in ipvsadm.
    pub fn set(&mut self, tcp: u32, tcp_fin: u32, udp: u32) {
        for (state, v) in [(State::Established, tcp), (State::FinWait, tcp_fin), (State::Udp, udp)] {
            if v != 0 {
                self.secs[state as usize] = v;
            }
        }
    }

    /// Sets the timeout of any state (the short ones have no ipvsadm option).
    pub fn set_state(&mut self, state: State, secs: u32) {
        self.secs[state as usize] = secs.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;

    #[test]
    fn an_established_connections_ack_takes_the_tables_answer_without_the_table() {
        // The shortcut in tcp_transition must say what the table says.
        for table in &TCP_STATES {
            assert_eq!(table[2][State::Established as usize], State::Established);
        }
        for flags in [ACK, ACK | PSH, ACK | PSH | URG] {
            for dir in [Direction::In, Direction::Out] {
                for sees_replies in [true, false] {
                    assert_eq!(tcp_transition(State::Established, dir, sees_replies, flags), State::Established);
                }
            }
        }
        // Anything else still goes by the table.
        assert_eq!(tcp_transition(State::Established, Direction::In, true, ACK | FIN), State::CloseWait);
        assert_eq!(tcp_transition(State::Established, Direction::Out, true, ACK | RST), State::Close);
    }

    fn walk(start: State, steps: &[(Direction, u8)], sees_replies: bool) -> Vec<State> {
        let mut s = start;
        steps
            .iter()
            .map(|&(d, f)| {
                s = tcp_transition(s, d, sees_replies, f);
                s
            })
            .collect()
    }

    #[test]
    fn nat_handshake_and_close() {
        use Direction::{In, Out};
        let states = walk(
            State::None,
            &[(In, SYN), (Out, SYN | ACK), (In, ACK), (In, FIN | ACK), (Out, ACK), (Out, FIN | ACK), (In, ACK)],
            true,
        );
        // A client's FIN from ESTABLISHED reads as CLOSE_WAIT in IPVS's single-state view.
        assert_eq!(
            states,
            vec![
                State::SynRecv,
                State::SynRecv,
                State::Established,
                State::CloseWait,
                State::CloseWait,
                State::TimeWait,
                State::TimeWait
            ]
        );
    }

    #[test]
    fn direct_routing_sees_only_the_client() {
        use Direction::In;
        let states = walk(State::None, &[(In, SYN), (In, ACK), (In, FIN | ACK), (In, ACK)], false);
        assert_eq!(states, vec![State::SynRecv, State::Established, State::FinWait, State::FinWait]);
        assert_eq!(tcp_transition(State::Established, In, false, RST), State::Close);
    }

    #[test]
    fn flagless_packet_closes_and_ack_from_none_closes() {
        assert_eq!(tcp_transition(State::Established, Direction::In, true, 0), State::Close);
        assert_eq!(tcp_transition(State::None, Direction::In, true, ACK), State::Close);
    }

    #[test]
    fn timeouts_defaults_and_set() {
        let mut t = Timeouts::default();
        assert_eq!((t.tcp(), t.tcp_fin(), t.udp()), (900, 120, 300));
        t.set(3600, 0, 30);
        assert_eq!((t.tcp(), t.tcp_fin(), t.udp()), (3600, 120, 30));
        assert_eq!(t.of(State::Close), 10);
    }
}
