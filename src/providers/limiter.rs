//! An adaptive concurrency limit shared by the clients of one provider:
//! additive increase, multiplicative decrease, like TCP congestion control.
//!
//! The limit starts at `initial`, grows by one after every
//! `increase_every` successful requests (up to `max`) and halves (not below
//! one) when the provider answers 429 or 529. A burst of overload answers
//! to requests that were all in flight at once halves the limit only once:
//! an overload counts only if its request started after the last decrease.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// A shared, self-tuning concurrency limit. Clients acquire a permit around
/// each HTTP attempt.
pub struct AdaptiveLimiter {
    state: Mutex<State>,
    released: Notify,
    max: usize,
    increase_every: u32,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    successes: u32,
    /// Counts decreases; a permit remembers the value it started under.
    generation: u64,
}

impl fmt::Debug for AdaptiveLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("AdaptiveLimiter")
            .field("limit", &state.limit)
            .field("in_flight", &state.in_flight)
            .field("max", &self.max)
            .field("increase_every", &self.increase_every)
            .finish()
    }
}

/// Successes needed for each step up, unless set otherwise.
pub const DEFAULT_INCREASE_EVERY: u32 = 10;

impl AdaptiveLimiter {
    /// A limiter allowing `initial` concurrent requests at first, at most
    /// `max` (both at least 1), growing by one per
    /// [`DEFAULT_INCREASE_EVERY`] successes.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            state: Mutex::new(State {
                limit: initial.clamp(1, max),
                in_flight: 0,
                successes: 0,
                generation: 0,
            }),
            released: Notify::new(),
            max,
            increase_every: DEFAULT_INCREASE_EVERY,
        }
    }

    /// The same limiter, growing by one per `n` successes (at least 1).
    pub fn with_increase_every(mut self, n: u32) -> Self {
        self.increase_every = n.max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits until fewer than `limit` requests are in flight, and takes a place.
    pub async fn acquire(&self) -> LimiterPermit<'_> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    return LimiterPermit {
                        limiter: self,
                        generation: state.generation,
                    };
                }
            }
            released.await;
        }
    }

    /// Counts a success; every `increase_every` of them raise the limit by one.
    pub fn record_success(&self) {
        let mut state = self.lock();
        state.successes += 1;
        if state.successes >= self.increase_every {
            state.successes = 0;
            if state.limit < self.max {
                state.limit += 1;
                drop(state);
                self.released.notify_waiters();
            }
        }
    }

    /// Halves the limit (not below 1) after a 429/529.
    pub fn record_overload(&self) {
        let mut state = self.lock();
        state.limit = (state.limit / 2).max(1);
        state.successes = 0;
        state.generation += 1;
    }

    fn release(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.released.notify_waiters();
    }
}

/// A place among the limiter's concurrent requests, given back on drop.
#[derive(Debug)]
pub struct LimiterPermit<'a> {
    limiter: &'a AdaptiveLimiter,
    generation: u64,
}

impl LimiterPermit<'_> {
    /// Reports that this permit's request succeeded.
    pub fn success(&self) {
        self.limiter.record_success();
    }

    /// Reports that this permit's request was rate limited: halves the
    /// limit, unless it was already halved since this request started.
    pub fn overloaded(&self) {
        let current = self.limiter.lock().generation;
        if current == self.generation {
            self.limiter.record_overload();
        }
    }
}

impl Drop for LimiterPermit<'_> {
    fn drop(&mut self) {
        self.limiter.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn halves_on_overload_and_grows_back() {
        let l = AdaptiveLimiter::new(8, 10).with_increase_every(3);
        l.record_overload();
        assert_eq!(l.limit(), 4);
        l.record_overload();
        l.record_overload();
        l.record_overload();
        assert_eq!(l.limit(), 1, "never below one");
        for _ in 0..3 {
            l.record_success();
        }
        assert_eq!(l.limit(), 2);
        for _ in 0..300 {
            l.record_success();
        }
        assert_eq!(l.limit(), 10, "capped at max");
    }

    #[tokio::test]
    async fn a_burst_of_overloads_halves_once() {
        let l = AdaptiveLimiter::new(8, 8);
        let a = l.acquire().await;
        let b = l.acquire().await;
        a.overloaded();
        b.overloaded();
        assert_eq!(l.limit(), 4);
        drop((a, b));
        let c = l.acquire().await;
        c.overloaded();
        assert_eq!(l.limit(), 2);
    }

    #[tokio::test]
    async fn acquire_waits_for_a_place() {
        let l = Arc::new(AdaptiveLimiter::new(1, 4));
        let first = l.acquire().await;
        assert_eq!(l.in_flight(), 1);
        let waiter = {
            let l = Arc::clone(&l);
            tokio::spawn(async move {
                let _p = l.acquire().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished(), "second acquire must wait");
        drop(first);
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("released")
            .expect("joined");
        assert_eq!(l.in_flight(), 0);
    }

    #[tokio::test]
    async fn growth_admits_waiters() {
        let l = Arc::new(AdaptiveLimiter::new(1, 2).with_increase_every(1));
        let _first = l.acquire().await;
        let waiter = {
            let l = Arc::clone(&l);
            tokio::spawn(async move {
                let _p = l.acquire().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        l.record_success();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("admitted after growth")
            .expect("joined");
    }
}
