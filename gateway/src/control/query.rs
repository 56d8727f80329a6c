//! Questions the control plane asks every worker about state only the worker holds (its
//! connection table for `gwctl -Lc`, its port pools for `-G`), answered between bursts.
//!
//! A use of the workers' [`mailbox`]: the control thread posts the question to
//! one [`Answerer`] per worker and waits, with a deadline, for every answer; a worker calls
//! [`Answerer::poll`] between bursts with a closure that computes its answer. A worker that
//! has not taken the previous question is not asked again but reported at once, so one stuck
//! worker does not cost the full timeout per question (`-G` asks once per local address).

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::mailbox::{self, IfPending, Inbox, NoAnswer, Requester};

/// Why a question got no complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

/// The control side: asks every worker.
pub struct Asker<Q, R> {
    /// Behind a mutex so `ask` takes `&self` (a `DataplaneView` answers through `&self`);
    /// the control server asks one question at a time anyway.
    workers: Mutex<Requester<Q, R>>,
}

/// A worker's side: it answers each question with `poll(|question| answer)`.
pub type Answerer<Q, R> = Inbox<Q, R>;

/// An asker and `workers` answerers; `timeout` bounds how long [`Asker::ask`] waits for the
/// slowest worker.
pub fn queries<Q: Clone + Send, R: Send>(workers: usize, timeout: Duration) -> (Asker<Q, R>, Vec<Answerer<Q, R>>) {
    let (requester, answerers) = mailbox::inboxes(workers, timeout);
    (Asker { workers: Mutex::new(requester) }, answerers)
}

impl<Q: Clone + Send, R: Send> Asker<Q, R> {
    /// How many workers are asked.
    pub fn workers(&self) -> usize {
        self.requester().workers()
    }

    fn requester(&self) -> MutexGuard<'_, Requester<Q, R>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks every worker `question`; returns the answers in worker order.
    pub fn ask(&self, question: Q) -> Result<Vec<R>, QueryError> {
        let answers = self.ask_each(question);
        let late: Vec<usize> = (0..answers.len()).filter(|&i| answers[i].is_err()).collect();
        match late.as_slice() {
            [] => Ok(answers.into_iter().flatten().collect()),
            // One reason is enough, and "not answering" says the most.
            [one] => Err(answers
                .into_iter()
                .nth(*one)
                .and_then(Result::err)
                .unwrap_or_else(|| QueryError { message: format!("worker {one} did not answer") })),
            _ => Err(QueryError {
                message: format!("workers {late:?} did not answer within {:?}", self.requester().timeout()),
            }),
        }
    }

    /// Asks every worker `question`; returns each worker's answer, or why it has none, in
    /// worker order, so the answers of the others are not lost to one silent worker.
    pub fn ask_each(&self, question: Q) -> Vec<Result<R, QueryError>> {
        let mut workers = self.requester();
        let timeout = workers.timeout();
        let round = workers.post(&question, IfPending::Skip);
        workers
            .collect(round)
            .into_iter()
            .enumerate()
            .map(|(i, answer)| {
                answer.map_err(|why| QueryError {
                    message: match why {
                        NoAnswer::Stopped => format!("worker {i} has stopped"),
                        // A question from an earlier, timed-out ask is still waiting: this
                        // worker is not polling.
                        NoAnswer::Pending => format!("worker {i} is not answering"),
                        NoAnswer::Late => format!("worker {i} did not answer within {timeout:?}"),
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn every_worker_answers_in_order() {
        let (asker, answerers) = queries::<u32, (usize, u32)>(3, Duration::from_secs(10));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = answerers
            .into_iter()
            .enumerate()
            .map(|(w, mut a)| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        a.poll(|q| (w, q * 10));
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        assert_eq!(asker.ask(4).unwrap(), vec![(0, 40), (1, 40), (2, 40)]);
        assert_eq!(asker.ask(5).unwrap(), vec![(0, 50), (1, 50), (2, 50)]);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_silent_worker_times_out_and_its_late_answer_is_not_reused() {
        let (asker, mut answerers) = queries::<u32, u32>(1, Duration::from_secs(1));
        let err = asker.ask(1).unwrap_err();
        assert_eq!(err.message, "worker 0 did not answer within 1s");
        // The worker answers the old question late; the next ask does not take that answer.
        assert!(answerers[0].poll(|q| q));
        let worker = {
            let mut a = answerers.remove(0);
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until && !a.poll(|q| q + 100) {
                    std::thread::yield_now();
                }
            })
        };
        assert_eq!(asker.ask(2).unwrap(), vec![102]);
        worker.join().unwrap();
    }

    #[test]
    fn one_silent_worker_does_not_lose_the_others_answers() {
        let (asker, mut answerers) = queries::<u32, u32>(2, Duration::from_millis(300));
        let mut answering = answerers.remove(0);
        let worker = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && !answering.poll(|q| q + 1) {
                std::thread::yield_now();
            }
        });
        let answers = asker.ask_each(7);
        worker.join().unwrap();
        assert_eq!(answers[0], Ok(8));
        assert_eq!(answers[1], Err(QueryError { message: "worker 1 did not answer within 300ms".into() }));
        // Its question is still pending: asked again, it is reported as such; the other
        // worker's answerer is gone, so that one has stopped.
        assert_eq!(
            asker.ask_each(8),
            vec![
                Err(QueryError { message: "worker 0 has stopped".into() }),
                Err(QueryError { message: "worker 1 is not answering".into() })
            ]
        );
        drop(answerers);
    }
}
