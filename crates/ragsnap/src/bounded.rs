//! Keeping one input from stalling or swamping a rebuild: stages that cannot check the cancel
//! flag themselves (sanitising one slow page, building one HNSW graph) run on their own thread
//! while the caller waits on the flag ([`run_detached`]), and parallel page processing spends
//! from a byte budget instead of taking one page per core ([`map_bounded`]).

use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a waiting caller looks at the cancel flag.
const POLL: Duration = Duration::from_millis(50);

/// Run `work` on a thread of its own and wait for its result, looking at `cancel` every 50 ms.
/// When `cancel` is set the wait ends at once with [`Error::Cancelled`]: `work` is told through
/// the flag it is given (it should stop early where it can) and left to finish on its own; its
/// result is dropped. Without `cancel`, `work` runs on the calling thread.
pub(crate) fn run_detached<T, F>(cancel: Option<&AtomicBool>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> T + Send + 'static,
{
    let Some(flag) = cancel else { return Ok(work(&AtomicBool::new(false))) };
    crate::rebuild::check_cancel(cancel)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let stop_for_work = stop.clone();
    std::thread::Builder::new()
        .name("ragsnap-stage".into())
        .spawn(move || {
            let _ = tx.send(work(&stop_for_work));
        })
        .map_err(|e| Error::Invalid(format!("could not start a worker thread: {e}")))?;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                if flag.load(Ordering::SeqCst) {
                    stop.store(true, Ordering::SeqCst);
                    return Err(Error::Cancelled);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::Invalid("a rebuild worker thread panicked; see the log above".into()))
            }
        }
    }
}

/// The payload [`stop_now`] unwinds with.
struct Stopped;

/// Leave the computation in hand at once (from deep inside code that cannot return early,
/// such as a token-count callback); [`unless_stopped`] catches it. The unwinding does not go
/// through the panic hook, so nothing is printed.
pub(crate) fn stop_now() -> ! {
    std::panic::resume_unwind(Box::new(Stopped))
}

/// Run `f`; `None` when it called [`stop_now`]. Any real panic goes on unwinding.
pub(crate) fn unless_stopped<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) if payload.is::<Stopped>() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// A budget of bytes that concurrent work acquires before it starts and gives back when done.
struct Budget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
    peak: AtomicU64,
}

impl Budget {
    fn new(total: u64) -> Self {
        Budget { total: total.max(1), used: Mutex::new(0), freed: Condvar::new(), peak: AtomicU64::new(0) }
    }

    /// Take `cost` (at most the whole budget, so an item dearer than the budget runs alone);
    /// `None` when `stop` was set while waiting.
    fn acquire(&self, cost: u64, stop: &AtomicBool) -> Option<u64> {
        let cost = cost.clamp(1, self.total);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + cost > self.total {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            used = self.freed.wait_timeout(used, POLL).unwrap_or_else(|p| p.into_inner()).0;
        }
        *used += cost;
        self.peak.fetch_max(*used, Ordering::Relaxed);
        Some(cost)
    }

    fn release(&self, cost: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= cost;
        self.freed.notify_all();
    }
}

/// What [`map_bounded`] returns: one output per item, in order, and the most budget that was
/// in use at once.
pub(crate) struct Bounded<O> {
    pub outputs: Vec<O>,
    pub peak: u64,
}

/// `work` over every item on one thread per core, each item first acquiring `cost(item)` bytes
/// of a `budget`-byte budget (so the memory of items in flight stays within the budget, or is
/// one item's when that item alone costs more). Cancellable as [`run_detached`] is.
pub(crate) fn map_bounded<I, O, C, F>(
    items: Vec<I>,
    budget: u64,
    cost: C,
    work: F,
    cancel: Option<&AtomicBool>,
) -> Result<Bounded<O>>
where
    I: Send + Sync + 'static,
    O: Send + 'static,
    C: Fn(&I) -> u64 + Send + Sync + 'static,
    F: Fn(&I) -> O + Send + Sync + 'static,
{
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(items.len()).max(1);
    let done = run_detached(cancel, move |stop| {
        let budget = Budget::new(budget);
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<O>>> = (0..items.len()).map(|_| Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(charged) = budget.acquire(cost(&items[i]), stop) else { break };
                    let out = work(&items[i]);
                    budget.release(charged);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
                });
            }
        });
        let outputs: Option<Vec<O>> =
            slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
        outputs.map(|outputs| Bounded { outputs, peak: budget.peak.load(Ordering::Relaxed) })
    })?;
    done.ok_or(Error::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn items_in_flight_never_exceed_the_budget_and_a_big_item_runs_alone() {
        let in_flight = Arc::new(AtomicU64::new(0));
        let worst = Arc::new(AtomicU64::new(0));
        let (f, w) = (in_flight.clone(), worst.clone());
        let items: Vec<u64> = (0..40).map(|i| if i == 7 { 500 } else { 10 + i % 5 }).collect();
        let r = map_bounded(
            items.clone(),
            40,
            |c: &u64| *c,
            move |c: &u64| {
                let now = f.fetch_add((*c).min(40), Ordering::SeqCst) + (*c).min(40);
                w.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                f.fetch_sub((*c).min(40), Ordering::SeqCst);
                *c * 2
            },
            None,
        )
        .unwrap();
        assert_eq!(r.outputs, items.iter().map(|c| c * 2).collect::<Vec<_>>());
        assert!(worst.load(Ordering::SeqCst) <= 40, "in flight {}", worst.load(Ordering::SeqCst));
        assert!(r.peak <= 40);
    }

    #[test]
    fn stop_now_leaves_the_computation_and_real_panics_go_on() {
        let mut steps = 0;
        let r = unless_stopped(|| {
            for i in 0..1000 {
                steps = i;
                if i == 10 {
                    stop_now();
                }
            }
            steps
        });
        assert_eq!((r, steps), (None, 10));
        assert_eq!(unless_stopped(|| 7), Some(7));
        let real = std::panic::catch_unwind(|| unless_stopped(|| -> u8 { std::panic::resume_unwind(Box::new(1u8)) }));
        assert!(real.is_err(), "a panic that is not a stop is not swallowed");
    }

    #[test]
    fn cancelling_returns_within_the_poll_even_while_work_is_stuck() {
        let flag = AtomicBool::new(false);
        let t = Instant::now();
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                flag.store(true, Ordering::SeqCst);
            });
            run_detached(Some(&flag), |_stop| std::thread::sleep(Duration::from_secs(30)))
        });
        assert!(matches!(r, Err(Error::Cancelled)));
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    }
}
