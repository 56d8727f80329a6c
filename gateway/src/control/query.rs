//! Questions the control plane asks every worker about state only the worker holds (its
//! connection table, for `gwctl -Lc`), answered between bursts.
//!
//! Same shape as [`publish`](super::publish): the control thread sends the question to one
//! [`Answerer`] per worker and waits, with a deadline, for every answer; a worker calls
//! [`Answerer::poll`] between bursts with a closure that computes its answer. Polling with
//! no question pending is a `try_recv` on an empty channel. Each question carries a sequence
//! number that its answers repeat, so an answer that arrives after its question timed out is
//! never taken for the answer to a later one.

use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The number of the question being asked, and where the workers' answers
/// (question number, worker, answer) arrive.
type Answers<R> = (u64, Receiver<(u64, usize, R)>);

/// The control side: asks every worker.
pub struct Asker<Q, R> {
    to_workers: Vec<SyncSender<(u64, Q)>>,
    /// Behind a mutex so `ask` takes `&self` (a `DataplaneView` answers through `&self`);
    /// the control server asks one question at a time anyway.
    answers: Mutex<Answers<R>>,
    timeout: Duration,
}

/// A worker's side.
pub struct Answerer<Q, R> {
    index: usize,
    questions: Receiver<(u64, Q)>,
    answers: Sender<(u64, usize, R)>,
}

/// An asker and `workers` answerers; `timeout` bounds how long [`Asker::ask`] waits for the
/// slowest worker.
pub fn queries<Q: Clone + Send, R: Send>(workers: usize, timeout: Duration) -> (Asker<Q, R>, Vec<Answerer<Q, R>>) {
    let (answer_tx, answer_rx) = mpsc::channel();
    let mut to_workers = Vec::with_capacity(workers);
    let mut answerers = Vec::with_capacity(workers);
    for index in 0..workers {
        // Capacity 1: a worker has at most one question waiting.
        let (tx, rx) = mpsc::sync_channel(1);
        to_workers.push(tx);
        answerers.push(Answerer { index, questions: rx, answers: answer_tx.clone() });
    }
    let asker = Asker { to_workers, answers: Mutex::new((0, answer_rx)), timeout };
    (asker, answerers)
}

impl<Q: Clone + Send, R: Send> Asker<Q, R> {
    /// How many workers are asked.
    pub fn workers(&self) -> usize {
        self.to_workers.len()
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
            _ => Err(QueryError { message: format!("workers {late:?} did not answer within {:?}", self.timeout) }),
        }
    }

    /// Asks every worker `question`; returns each worker's answer, or why it has none, in
    /// worker order, so the answers of the others are not lost to one silent worker.
    pub fn ask_each(&self, question: Q) -> Vec<Result<R, QueryError>> {
        let mut guard = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (seq, answers) = &mut *guard;
        *seq += 1;
        let seq = *seq;
        let deadline = Instant::now() + self.timeout;
        let mut got: Vec<Option<Result<R, QueryError>>> = (0..self.to_workers.len()).map(|_| None).collect();
        let mut missing = 0;
        for (i, tx) in self.to_workers.iter().enumerate() {
            match tx.try_send((seq, question.clone())) {
                Ok(()) => missing += 1,
                // A question from an earlier, timed-out ask is still waiting: this worker
                // is not polling.
                Err(TrySendError::Full(_)) => {
                    got[i] = Some(Err(QueryError { message: format!("worker {i} is not answering") }))
                }
                Err(TrySendError::Disconnected(_)) => {
                    got[i] = Some(Err(QueryError { message: format!("worker {i} has stopped") }))
                }
            }
        }
        while missing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match answers.recv_timeout(left) {
                Ok((s, i, r)) if s == seq && i < got.len() && got[i].is_none() => {
                    got[i] = Some(Ok(r));
                    missing -= 1;
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        got.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    Err(QueryError { message: format!("worker {i} did not answer within {:?}", self.timeout) })
                })
            })
            .collect()
    }
}

impl<Q, R> Answerer<Q, R> {
    /// Answers the pending question, if any, with `answer(question)`. Returns whether there
    /// was one. Call between bursts.
    pub fn poll(&mut self, answer: impl FnOnce(&Q) -> R) -> bool {
        let Ok((seq, question)) = self.questions.try_recv() else {
            return false;
        };
        // The asker may have given up waiting; a lost answer is harmless.
        let _ = self.answers.send((seq, self.index, answer(&question)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

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
        assert!(answerers[0].poll(|q| *q));
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
