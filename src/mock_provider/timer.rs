//! Sleeps that end close to their deadline, for scripted latencies.
//!
//! Tokio's timer counts in whole milliseconds and rounds every deadline up,
//! and its worker then waits in `epoll_wait` with a millisecond timeout: a
//! scripted 100 ms turn answered after 101–103 ms. A turn's latency is what
//! users benchmark their plans against, so latencies are kept by one thread
//! that waits with the kernel's fine-grained timeouts (typically within
//! 0.1 ms of the deadline) and wakes each waiting request at its deadline,
//! never before it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;

/// One waiting sleep: its deadline, an order for equal deadlines, its waker.
struct Waiting {
    deadline: Instant,
    order: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.order) == (other.deadline, other.order)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.order).cmp(&(other.deadline, other.order))
    }
}

/// A sleep handed to the timer thread: its deadline and its waker.
type Request = (Instant, oneshot::Sender<()>);

fn timer() -> Option<&'static Mutex<mpsc::Sender<Request>>> {
    static TIMER: OnceLock<Option<Mutex<mpsc::Sender<Request>>>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("mock-timer".into())
                .spawn(move || run(&rx))
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// The timer thread: keeps the waiting sleeps in deadline order and wakes each at its deadline.
fn run(rx: &mpsc::Receiver<Request>) {
    let mut waiting: BinaryHeap<Reverse<Waiting>> = BinaryHeap::new();
    let mut order = 0_u64;
    loop {
        let now = Instant::now();
        while waiting
            .peek()
            .is_some_and(|Reverse(next)| next.deadline <= now)
        {
            if let Some(Reverse(due)) = waiting.pop() {
                let _ = due.wake.send(());
            }
        }
        let received = match waiting.peek() {
            Some(Reverse(next)) => rx.recv_timeout(next.deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((deadline, wake)) => {
                order += 1;
                waiting.push(Reverse(Waiting {
                    deadline,
                    order,
                    wake,
                }));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Waits until `deadline` (at once when it has passed).
pub async fn sleep_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    let (wake, woken) = oneshot::channel();
    let queued = timer().is_some_and(|timer| {
        timer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send((deadline, wake))
            .is_ok()
    });
    if !queued || woken.await.is_err() {
        // No timer thread: tokio's timer, a little late but never early.
        tokio::time::sleep_until(deadline.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleeps_end_at_their_deadline_never_before_and_in_order() {
        let start = Instant::now();
        let mut handles = Vec::new();
        for ms in [30_u64, 10, 20, 10] {
            handles.push(tokio::spawn(async move {
                let deadline = start + Duration::from_millis(ms);
                sleep_until(deadline).await;
                let woke = Instant::now();
                assert!(woke >= deadline, "woke {:?} early", deadline - woke);
                woke - start
            }));
        }
        let mut elapsed = Vec::new();
        for handle in handles {
            elapsed.push(handle.await.unwrap());
        }
        assert!(elapsed[0] >= Duration::from_millis(30));
        assert!(elapsed[1] >= Duration::from_millis(10) && elapsed[1] < elapsed[0]);
        // A deadline in the past returns at once.
        sleep_until(start).await;
    }
}
