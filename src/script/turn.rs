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
//! Waiters keep waiting as tasks while the running script is long (it handed its worker off: see
//! [`super::current::hook`]), and stop only once it has run past `busy-reply-threshold`: they then
//! dispatch their request, which answers `-BUSY`. They used to stop as soon as the script became long and
//! wait for the command lock in `block_in_place`: with 50 clients on a loaded machine, one preempted
//! script turned every connection into a blocked thread, the waiting threads kept the gate
//! (`server::gate`) closed for the next scripts, and the server stayed in that state, 25–280 scripts a
//! second instead of ~1,000–1,600 (docs/performance.md, branch `script3`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

    /// Waits for the turn and takes it; `None` once the running script has passed `busy-reply-threshold`
    /// (`busy_at`: when it does, if a script runs and the threshold is set), for the caller to answer
    /// `-BUSY`. While the script is short (`long` unset) the wait needs no timer: the turn comes back
    /// within microseconds, or the script becomes long and [`Turn::release_waiters`] wakes the waiters,
    /// which then wait with a timer set at the threshold.
    pub async fn take(&self, long: &AtomicBool, busy_at: impl Fn() -> Option<Instant>) -> Option<TurnGuard<'_>> {
        /// Counts the waiter for the length of one wait, also when the wait is dropped half way.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        /// The longest sleep of a waiter behind a long script: the threshold can change meanwhile.
        const RECHECK: Duration = Duration::from_millis(100);
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
            if !self.held.load(Ordering::SeqCst) {
                continue;
            }
            if !long.load(Ordering::SeqCst) {
                // A dropped `Notified` that was woken passes its wake-up on to another waiter (tokio), so
                // a connection that closes while woken loses nobody's turn.
                notified.await;
                continue;
            }
            let now = Instant::now();
            let wake = match busy_at() {
                Some(at) if at <= now => return None,
                Some(at) => at.min(now + RECHECK),
                None => now + RECHECK,
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
        }
    }

    /// Wakes every waiter (the running script has become long: they wait with a timer for its threshold).
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
                        let guard = turn.take(&long, || None).await.expect("never busy");
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
    fn waiters_behind_a_long_script_wait_until_its_busy_threshold() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let turn = Arc::new(Turn::default());
            let long = Arc::new(AtomicBool::new(false));
            let busy_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
            let held = turn.try_take().unwrap();
            let waiter = {
                let (turn, long, busy_at) = (turn.clone(), long.clone(), busy_at.clone());
                tokio::spawn(async move { turn.take(&long, || *busy_at.lock().unwrap()).await.is_none() })
            };
            tokio::task::yield_now().await;
            // Long, no threshold: the waiter keeps waiting (as a task).
            long.store(true, Ordering::SeqCst);
            turn.release_waiters();
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiter.is_finished(), "a long script alone must not end the wait");
            // The threshold passes 30 ms from now: the waiter gives up then, without a wake-up.
            *busy_at.lock().unwrap() = Some(Instant::now() + Duration::from_millis(30));
            turn.release_waiters();
            let gave_up = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("still waiting").unwrap();
            assert!(gave_up);
            drop(held);
            assert_eq!(turn.waiting.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn a_waiter_behind_a_long_script_gets_the_turn_when_it_ends() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let turn = Arc::new(Turn::default());
            let long = Arc::new(AtomicBool::new(true));
            let held = turn.try_take().unwrap();
            let waiter = {
                let (turn, long) = (turn.clone(), long.clone());
                tokio::spawn(async move { turn.take(&long, || None).await.is_some() })
            };
            tokio::task::yield_now().await;
            drop(held);
            let took = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("still waiting").unwrap();
            assert!(took);
        });
    }
}
