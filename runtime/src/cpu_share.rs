//! One app's share of the process's cores. Under `spindle up` many apps share one runtime and
//! one pool of worker threads; without a share, an app flooded with requests keeps every worker
//! busy running its guests, and another app's request waits behind them. With a share of `n`, at
//! most `n` of the app's guests execute at once (Wasm or host code), and the others wait their
//! turn; a guest holds its slot only while it is polled, so one waiting on I/O (a body, an
//! outbound call, a timer) or yielding at an epoch tick lets the next one run.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// How many of an app's guests may execute at once; unlimited by default.
#[derive(Debug, Clone, Default)]
pub struct CpuShare(Option<Arc<Semaphore>>);

impl CpuShare {
    /// A share of at most `slots` guests executing at once (at least one).
    pub fn limited(slots: usize) -> CpuShare {
        CpuShare(Some(Arc::new(Semaphore::new(slots.max(1)))))
    }

    /// `future`, polled only while it holds one of the share's slots.
    pub fn run<F: Future>(&self, future: F) -> Shared<F> {
        Shared {
            inner: Box::pin(future),
            slots: self.0.clone(),
            waiting: None,
        }
    }
}

/// The slots each app gets when several share one process: every core but one (and at least
/// one), so that one app's flood always leaves a worker to the others.
pub fn slots_among_apps() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A future run within a [`CpuShare`].
pub struct Shared<F> {
    inner: Pin<Box<F>>,
    slots: Option<Arc<Semaphore>>,
    /// Its place in the queue for a slot, while it waits for one.
    waiting: Option<Acquiring>,
}

impl<F: Future> Future for Shared<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let Some(slots) = &this.slots else {
            return this.inner.as_mut().poll(cx);
        };
        // A free slot is taken at once; the semaphore is fair, so this never passes a waiter.
        let acquired = match this.waiting.as_mut() {
            None => slots.clone().try_acquire_owned().ok(),
            Some(_) => None,
        };
        let permit = match acquired {
            Some(permit) => permit,
            None => {
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(slots.clone().acquire_owned()));
                match waiting.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(permit) => {
                        this.waiting = None;
                        // The semaphore is never closed.
                        permit.expect("a CPU share is never closed")
                    }
                }
            }
        };
        let polled = this.inner.as_mut().poll(cx);
        drop(permit);
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A future that counts how many like it are being polled at once, and is ready after
    /// `rounds` polls, yielding in between.
    async fn busy(running: Arc<AtomicUsize>, most: Arc<AtomicUsize>, rounds: usize) {
        for _ in 0..rounds {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
            running.fetch_sub(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    }

    async fn most_at_once(share: CpuShare) -> usize {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|_| tokio::spawn(share.run(busy(running.clone(), most.clone(), 5))))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_share_bounds_the_guests_polled_at_once_and_all_finish() {
        assert_eq!(most_at_once(CpuShare::limited(1)).await, 1);
        assert!(most_at_once(CpuShare::limited(2)).await <= 2);
        // Unlimited, the four workers run several at once.
        assert!(most_at_once(CpuShare::default()).await > 1);
    }

    #[tokio::test]
    async fn a_guest_waiting_on_io_lets_the_next_one_run() {
        let share = CpuShare::limited(1);
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        // The first waits for the second, which can only run while the first waits.
        let first = tokio::spawn(share.run(async move { receiver.await.unwrap() }));
        tokio::task::yield_now().await;
        let second = tokio::spawn(share.run(async move { sender.send(()).unwrap() }));
        second.await.unwrap();
        first.await.unwrap();
    }
}
