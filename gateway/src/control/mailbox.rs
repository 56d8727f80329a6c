//! The one channel between the control thread and the workers: the control thread asks every
//! worker something, each worker answers between bursts, and the control thread collects the
//! answers with a deadline. [`publish`](super::publish) (switch to this configuration; the
//! answer is "running it") and [`query`](super::query) (what is in your connection table, your
//! port pools) are both uses of it.
//!
//! Each worker has one slot that holds at most one pending request, numbered by the
//! [`Requester`]. A worker's [`Inbox::poll`] is one atomic load while the slot is empty, so it
//! fits a poll-mode loop; only a pending request costs it an uncontended `try_lock` (never a
//! wait: if the control thread holds the slot that instant, the worker takes the request on its
//! next poll). Answers repeat their request's number, so an answer that arrives after its
//! request timed out is never taken for the answer to a later one.
//!
//! A worker that has not taken the previous request (it is stuck, or slower than the last
//! deadline) is handled as the asker says ([`IfPending`]): a newer configuration replaces the
//! pending one, so a worker that wakes switches straight to the newest (and a rollback
//! reaches it); a question is not asked at all, so one stuck worker does not cost every later
//! question the full timeout. A replaced request is dropped on the control thread, never on a
//! worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// What [`Requester::post`] does for a worker whose previous request is still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfPending {
    /// Newest wins: the new request takes the old one's place, and the worker is waited for.
    Replace,
    /// The worker is not asked; its answer is [`NoAnswer::Pending`] at once.
    Skip,
}

/// Why a worker has no answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// Its inbox is gone (the worker has stopped).
    Stopped,
    /// It had not taken the previous request, and the asker said [`IfPending::Skip`].
    Pending,
    /// It did not answer before the deadline.
    Late,
}

/// One worker's slot.
struct Slot<Q> {
    /// Whether `request` holds something: what a worker reads when it polls.
    posted: AtomicBool,
    /// The pending request and its number.
    request: Mutex<Option<(u64, Q)>>,
    /// Set when the worker's inbox is dropped.
    closed: AtomicBool,
}

impl<Q> Slot<Q> {
    fn lock(&self) -> MutexGuard<'_, Option<(u64, Q)>> {
        // The slot's content is valid whatever a panicking holder did.
        self.request.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The control side: posts requests to every worker and collects their answers.
pub struct Requester<Q, R> {
    slots: Vec<Arc<Slot<Q>>>,
    /// (request number, worker, answer).
    answers: Receiver<(u64, usize, R)>,
    seq: u64,
    timeout: Duration,
}

/// One worker's side.
pub struct Inbox<Q, R> {
    index: usize,
    slot: Arc<Slot<Q>>,
    answers: Sender<(u64, usize, R)>,
}

/// The requests of one [`Requester::post`], to hand to [`Requester::collect`].
#[must_use = "a posted round's answers are collected with Requester::collect"]
#[derive(Debug)]
pub struct Round {
    seq: u64,
    /// Per worker: `None` if it was asked, else why it was not.
    refused: Vec<Option<NoAnswer>>,
}

impl Round {
    /// The workers that were not asked, and why, in worker order.
    pub fn refused(&self) -> impl Iterator<Item = (usize, NoAnswer)> + '_ {
        self.refused.iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r)))
    }
}

/// A requester and `workers` inboxes; `timeout` bounds how long [`Requester::collect`] waits
/// for the slowest worker.
pub fn inboxes<Q, R>(workers: usize, timeout: Duration) -> (Requester<Q, R>, Vec<Inbox<Q, R>>) {
    let (answer_tx, answer_rx) = mpsc::channel();
    let slots: Vec<Arc<Slot<Q>>> = (0..workers)
        .map(|_| {
            Arc::new(Slot { posted: AtomicBool::new(false), request: Mutex::new(None), closed: AtomicBool::new(false) })
        })
        .collect();
    let inboxes = slots
        .iter()
        .enumerate()
        .map(|(index, slot)| Inbox { index, slot: Arc::clone(slot), answers: answer_tx.clone() })
        .collect();
    (Requester { slots, answers: answer_rx, seq: 0, timeout }, inboxes)
}

impl<Q: Clone, R> Requester<Q, R> {
    /// Leaves `request` in every worker's slot, as `if_pending` says for a worker that has not
    /// taken the previous one. Returns at once.
    pub fn post(&mut self, request: &Q, if_pending: IfPending) -> Round {
        self.seq += 1;
        let seq = self.seq;
        let refused = self
            .slots
            .iter()
            .map(|slot| {
                if slot.closed.load(Ordering::Acquire) {
                    return Some(NoAnswer::Stopped);
                }
                let mut pending = slot.lock();
                if pending.is_some() && if_pending == IfPending::Skip {
                    return Some(NoAnswer::Pending);
                }
                let replaced = pending.replace((seq, request.clone()));
                slot.posted.store(true, Ordering::Release);
                drop(pending);
                // On this thread, outside the lock: a worker never frees a request it did not take.
                drop(replaced);
                None
            })
            .collect();
        Round { seq, refused }
    }
}

impl<Q, R> Requester<Q, R> {
    /// How many workers there are.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// How long [`collect`](Self::collect) waits.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits, up to the timeout, for the answer of every worker `round` asked; returns each
    /// worker's answer, or why it has none, in worker order.
    pub fn collect(&mut self, round: Round) -> Vec<Result<R, NoAnswer>> {
        let deadline = Instant::now() + self.timeout;
        let mut got: Vec<Option<Result<R, NoAnswer>>> = round.refused.into_iter().map(|r| r.map(Err)).collect();
        let mut missing = got.iter().filter(|g| g.is_none()).count();
        while missing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok((seq, i, answer)) if seq == round.seq && got.get(i).is_some_and(Option::is_none) => {
                    got[i] = Some(Ok(answer));
                    missing -= 1;
                }
                // An answer to an earlier request that timed out.
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        got.into_iter().map(|g| g.unwrap_or(Err(NoAnswer::Late))).collect()
    }
}

impl<Q, R> Inbox<Q, R> {
    /// Takes the pending request, if any, and answers it with `answer(request)`. Returns
    /// whether there was one. Call between bursts: with nothing pending it is one atomic load,
    /// and it never blocks.
    pub fn poll(&mut self, answer: impl FnOnce(Q) -> R) -> bool {
        if !self.slot.posted.load(Ordering::Acquire) {
            return false;
        }
        let mut pending = match self.slot.request.try_lock() {
            Ok(pending) => pending,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // The control thread is posting this instant: next poll.
            Err(TryLockError::WouldBlock) => return false,
        };
        let taken = pending.take();
        self.slot.posted.store(false, Ordering::Release);
        drop(pending);
        let Some((seq, request)) = taken else {
            return false;
        };
        // The requester may have given up waiting; a lost answer is harmless.
        let _ = self.answers.send((seq, self.index, answer(request)));
        true
    }
}

impl<Q, R> std::fmt::Debug for Inbox<Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("index", &self.index).finish_non_exhaustive()
    }
}

impl<Q, R> Drop for Inbox<Q, R> {
    fn drop(&mut self) {
        self.slot.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_answers_only_what_was_posted_once() {
        let (mut requester, mut inboxes) = inboxes::<u32, u32>(2, Duration::from_secs(5));
        assert!(!inboxes[0].poll(|q| q), "nothing posted");
        let round = requester.post(&7, IfPending::Skip);
        assert_eq!(round.refused().count(), 0);
        assert!(inboxes[0].poll(|q| q + 1));
        assert!(!inboxes[0].poll(|q| q), "taken once");
        assert!(inboxes[1].poll(|q| q + 2));
        assert_eq!(requester.collect(round), vec![Ok(8), Ok(9)]);
    }

    #[test]
    fn a_pending_request_is_replaced_or_skipped_as_asked() {
        let (mut requester, mut inboxes) = inboxes::<Arc<u32>, u32>(1, Duration::from_millis(50));
        let first = Arc::new(1);
        let round = requester.post(&first, IfPending::Replace);
        assert_eq!(requester.collect(round), vec![Err(NoAnswer::Late)]);
        // Skip: the worker still has the first request, so it is not asked.
        let round = requester.post(&Arc::new(2), IfPending::Skip);
        assert_eq!(round.refused().collect::<Vec<_>>(), vec![(0, NoAnswer::Pending)]);
        assert_eq!(requester.collect(round), vec![Err(NoAnswer::Pending)]);
        // Replace: the newest takes its place, and the requester's thread dropped the old one.
        let round = requester.post(&Arc::new(3), IfPending::Replace);
        assert_eq!(Arc::strong_count(&first), 1, "the replaced request was dropped by the requester");
        assert!(inboxes[0].poll(|q| *q));
        assert!(!inboxes[0].poll(|q| *q), "only the newest was pending");
        assert_eq!(requester.collect(round), vec![Ok(3)]);
    }

    #[test]
    fn a_late_answer_is_not_taken_for_a_later_request() {
        let (mut requester, mut inboxes) = inboxes::<u32, u32>(1, Duration::from_millis(50));
        let round = requester.post(&1, IfPending::Skip);
        assert_eq!(requester.collect(round), vec![Err(NoAnswer::Late)]);
        assert!(inboxes[0].poll(|q| q * 10), "answers the first request late");
        let round = requester.post(&2, IfPending::Skip);
        assert!(inboxes[0].poll(|q| q * 10));
        assert_eq!(requester.collect(round), vec![Ok(20)]);
    }

    #[test]
    fn a_dropped_inbox_is_a_stopped_worker() {
        let (mut requester, mut inboxes) = inboxes::<u32, u32>(2, Duration::from_secs(5));
        drop(inboxes.remove(0));
        let round = requester.post(&1, IfPending::Replace);
        assert_eq!(round.refused().collect::<Vec<_>>(), vec![(0, NoAnswer::Stopped)]);
        assert!(inboxes[0].poll(|q| q));
        assert_eq!(requester.collect(round), vec![Err(NoAnswer::Stopped), Ok(1)]);
    }
}
