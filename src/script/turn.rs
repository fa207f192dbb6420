//! The script turn: which connection runs the next script when several want to, without a runtime
//! worker spinning while another's script runs.
//!
//! # Why
//! A script runs under [`crate::server::Server::command_lock`] taken exclusively, so scripts from
//! connections on the two runtime workers run one at a time. A connection that found the lock held
//! spun on it (`sched_yield`) and then slept on a condition variable: either way its worker did nothing
//! else meanwhile, and on an idle machine the spin cost ~2.5 µs of CPU per script (docs/performance.md,
//! issue 9: one worker thread ran EVALSHA at 11.35 µs of CPU, two at 13.9).
//!
//! # How
//! The turn is a flag a connection takes before it dispatches a script command on a worker, and gives
//! back once the command has run ([`TurnGuard`]'s drop). A connection that finds it taken leaves the
//! request pending and waits for the turn as a task ([`Turn::take`]): its worker goes on with other
//! connections, and the turn's holder wakes one waiter when it gives the turn back (a task wake-up,
//! which on a busy worker costs no system call). The turn is a scheduling hint only: the command lock
//! still makes scripts atomic (EXEC and off-worker scripts take it without a turn, and a holder of the
//! turn still takes the lock), so every ordering rule of the lock holds as before.
//!
//! Waiters stop waiting when the running script becomes long (it handed its worker off: see
//! [`super::current::hook`]); they then dispatch their request and wait for the lock the old way, which
//! answers `-BUSY` past `busy-reply-threshold`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The turn (see the module comment).
#[derive(Debug, Default)]
pub struct Turn {
    /// Some connection holds the turn.
    held: AtomicBool,
    /// Connections waiting in [`Turn::take`] (no wake-up is signalled when none do).
    waiting: AtomicUsize,
    /// Woken once per turn given back while connections wait; all at once when the running script
    /// becomes long ([`Turn::release_waiters`]).
    notify: Notify,
}

/// The turn, held; dropping it gives it back.
#[derive(Debug)]
pub struct TurnGuard<'a>(&'a Turn);

impl Turn {
    /// The turn, if nobody holds it.
    pub fn try_take(&self) -> Option<TurnGuard<'_>> {
        if self.held.load(Ordering::Relaxed) {
            return None;
        }
        self.held.compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed).ok().map(|_| TurnGuard(self))
    }

    /// Waits for the turn and takes it; `None` as soon as `long` is set (a script that handed its worker
    /// off holds the command lock: the caller waits for the lock itself).
    pub async fn take(&self, long: &AtomicBool) -> Option<TurnGuard<'_>> {
        /// Counts the waiter for the length of one wait, also when the wait is dropped half way.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        loop {
            if let Some(guard) = self.try_take() {
                return Some(guard);
            }
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the checks below: a turn given back after them wakes this waiter (or
            // another, who passes it on when done); see `TurnGuard::drop` for the other side.
            notified.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.waiting);
            if long.load(Ordering::SeqCst) {
                return None;
            }
            if self.held.load(Ordering::SeqCst) {
                // A dropped `Notified` that was woken passes its wake-up on to another waiter (tokio), so
                // a connection that closes while woken loses nobody's turn.
                notified.await;
            }
            if long.load(Ordering::SeqCst) {
                return None;
            }
        }
    }

    /// Wakes every waiter (the running script has become long: they stop waiting for the turn).
    pub fn release_waiters(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let turn = self.0;
        turn.held.store(false, Ordering::SeqCst);
        // SeqCst on both sides (Dekker): either the waiter sees the turn free, or this sees it waiting.
        if turn.waiting.load(Ordering::SeqCst) > 0 {
            turn.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_holder_at_a_time() {
        let turn = Turn::default();
        let first = turn.try_take().expect("free");
        assert!(turn.try_take().is_none());
        drop(first);
        assert!(turn.try_take().is_some());
    }

    #[test]
    fn every_waiter_gets_the_turn_once_each_holder_gives_it_back() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let turn = Arc::new(Turn::default());
            let long = Arc::new(AtomicBool::new(false));
            let inside = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (turn, long, inside) = (turn.clone(), long.clone(), inside.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..200 {
                        let guard = turn.take(&long).await.expect("never long");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                        tokio::task::yield_now().await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(guard);
                    }
                }));
            }
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(20), task).await.expect("a waiter was lost").unwrap();
            }
            assert_eq!(turn.waiting.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn waiters_stop_waiting_when_the_script_becomes_long() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let turn = Arc::new(Turn::default());
            let long = Arc::new(AtomicBool::new(false));
            let held = turn.try_take().unwrap();
            let waiter = {
                let (turn, long) = (turn.clone(), long.clone());
                tokio::spawn(async move { turn.take(&long).await.is_none() })
            };
            tokio::task::yield_now().await;
            long.store(true, Ordering::SeqCst);
            turn.release_waiters();
            let gave_up = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("still waiting").unwrap();
            assert!(gave_up);
            drop(held);
            assert_eq!(turn.waiting.load(Ordering::SeqCst), 0);
        });
    }
}
