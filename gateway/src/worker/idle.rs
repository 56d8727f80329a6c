//! What a poll loop does when it finds nothing to do (`"idle"` in the
//! configuration): spin on ([`IdleMode::Poll`], the lowest latency, a whole
//! core per loop), or back off ([`IdleMode::Sleep`]) so several gateways,
//! a router and their clients can share a small machine.
//!
//! [`IdleBackoff`] is the backoff itself, pure arithmetic on iteration
//! outcomes: after [`IdleBackoff::SPIN_ITERATIONS`] consecutive empty
//! iterations it asks for a pause, doubling from [`IdleBackoff::FIRST_PAUSE`]
//! up to [`IdleBackoff::MAX_PAUSE`]; one iteration with work starts over. The
//! bound is what a packet arriving at an idle loop waits at most (plus the
//! kernel's timer slack), and it stays far below any heartbeat deadline.
//! The workers' loop and the main lcore's exception loop use it alike.

use std::fmt;
use std::time::Duration;

/// How a poll loop spends an iteration that found nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleMode {
    /// Poll again at once (busy polling: a core per loop, no added latency).
    #[default]
    Poll,
    /// Back off with [`IdleBackoff`].
    Sleep,
}

impl IdleMode {
    /// The configuration's names for the modes, in order.
    pub const NAMES: [&'static str; 2] = ["poll", "sleep"];

    /// The mode named `name` (exactly as in [`IdleMode::NAMES`]).
    pub fn parse(name: &str) -> Option<IdleMode> {
        match name {
            "poll" => Some(IdleMode::Poll),
            "sleep" => Some(IdleMode::Sleep),
            _ => None,
        }
    }

    /// The backoff this mode calls for: none when polling.
    pub fn backoff(self) -> Option<IdleBackoff> {
        match self {
            IdleMode::Poll => None,
            IdleMode::Sleep => Some(IdleBackoff::default()),
        }
    }
}

impl fmt::Display for IdleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdleMode::Poll => "poll",
            IdleMode::Sleep => "sleep",
        })
    }
}

/// The backoff of one poll loop: how long to pause after each iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleBackoff {
    /// Consecutive iterations without work, saturating.
    empty: u32,
    /// The pause the next empty iteration past the spin takes.
    next: Duration,
}

impl Default for IdleBackoff {
    fn default() -> IdleBackoff {
        IdleBackoff { empty: 0, next: IdleBackoff::FIRST_PAUSE }
    }
}

impl IdleBackoff {
    /// Empty iterations polled at full speed before the first pause: a gap
    /// between packets of a busy flow (tens of microseconds at most) is
    /// spun through, not slept through.
    pub const SPIN_ITERATIONS: u32 = 256;
    /// The first pause.
    pub const FIRST_PAUSE: Duration = Duration::from_micros(1);
    /// The longest pause: the most a packet waits for an idle loop to wake.
    pub const MAX_PAUSE: Duration = Duration::from_millis(1);

    /// Records one iteration (`worked`: it received, sent or queued
    /// something) and says how long to pause before the next one, if at all.
    pub fn pause_after(&mut self, worked: bool) -> Option<Duration> {
        if worked {
            *self = IdleBackoff::default();
            return None;
        }
        self.empty = self.empty.saturating_add(1);
        if self.empty <= Self::SPIN_ITERATIONS {
            return None;
        }
        let pause = self.next;
        self.next = (pause * 2).min(Self::MAX_PAUSE);
        Some(pause)
    }

    /// [`IdleBackoff::pause_after`], then sleeps the pause (a syscall, only
    /// ever taken with nothing to do).
    pub fn rest_after(&mut self, worked: bool) {
        if let Some(pause) = self.pause_after(worked) {
            std::thread::sleep(pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pauses(backoff: &mut IdleBackoff, iterations: u32) -> Vec<Option<Duration>> {
        (0..iterations).map(|_| backoff.pause_after(false)).collect()
    }

    #[test]
    fn an_idle_loop_spins_then_doubles_its_pause_up_to_the_bound() {
        let mut b = IdleBackoff::default();
        let spin = pauses(&mut b, IdleBackoff::SPIN_ITERATIONS);
        assert!(spin.iter().all(Option::is_none), "no pause while spinning: {spin:?}");
        let micros: Vec<u128> = pauses(&mut b, 14).into_iter().map(|p| p.expect("a pause").as_micros()).collect();
        assert_eq!(micros, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000, 1000]);
    }

    #[test]
    fn work_starts_the_backoff_over() {
        let mut b = IdleBackoff::default();
        pauses(&mut b, IdleBackoff::SPIN_ITERATIONS + 20);
        assert_eq!(b.pause_after(false), Some(IdleBackoff::MAX_PAUSE), "backed off to the bound");
        assert_eq!(b.pause_after(true), None, "an iteration with work never pauses");
        assert_eq!(b, IdleBackoff::default());
        // A full spin again before the first, shortest pause.
        assert!(pauses(&mut b, IdleBackoff::SPIN_ITERATIONS).iter().all(Option::is_none));
        assert_eq!(b.pause_after(false), Some(IdleBackoff::FIRST_PAUSE));
        // Work in the middle of the spin restarts the spin.
        pauses(&mut b, 3);
        b.pause_after(true);
        assert!(pauses(&mut b, IdleBackoff::SPIN_ITERATIONS).iter().all(Option::is_none));
    }

    #[test]
    fn a_loop_idle_for_ever_keeps_the_bound() {
        let mut b = IdleBackoff { empty: u32::MAX - 1, next: IdleBackoff::MAX_PAUSE };
        for _ in 0..4 {
            assert_eq!(b.pause_after(false), Some(IdleBackoff::MAX_PAUSE), "the count saturates");
        }
    }

    #[test]
    fn resting_sleeps_only_past_the_spin() {
        let mut b = IdleBackoff::default();
        let started = std::time::Instant::now();
        for _ in 0..IdleBackoff::SPIN_ITERATIONS {
            b.rest_after(false);
        }
        let spun = started.elapsed();
        for _ in 0..3 {
            b.rest_after(false);
        }
        // 1 + 2 + 4 µs asked for; the kernel may sleep longer, never shorter.
        assert!(started.elapsed() >= spun + Duration::from_micros(7), "{:?} after {spun:?}", started.elapsed());
    }

    #[test]
    fn the_modes_have_their_configuration_names() {
        for name in IdleMode::NAMES {
            assert_eq!(IdleMode::parse(name).map(|m| m.to_string()).as_deref(), Some(name));
        }
        assert_eq!(IdleMode::parse("Sleep"), None);
        assert_eq!(IdleMode::parse(""), None);
        assert_eq!(IdleMode::default(), IdleMode::Poll);
        assert_eq!(IdleMode::Poll.backoff(), None, "polling never backs off");
        assert_eq!(IdleMode::Sleep.backoff(), Some(IdleBackoff::default()));
    }
}
