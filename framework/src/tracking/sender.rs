//! The background metric sender behind [`ActiveRun::log_metric`](super::ActiveRun::log_metric):
//! a training loop's call only puts the point into a bounded queue; worker threads take what has
//! accumulated, pack it into `log-batch` requests of at most 1000 points, and send them.
//! [`MetricSender::flush`] waits until everything queued so far has been sent.
//!
//! Requests in flight are capped per store *and process*: every run of the process logging to the
//! same store (same URI) shares [`Tracker::max_in_flight`] permits, so that runs logging at once
//! do not pile more concurrent requests on a server than it serves well. A worker takes its permit
//! before it packs its batch, so points that arrive while it waits go into that batch.
//!
//! Points are never dropped: a full queue makes the logging call wait (back-pressure) rather than
//! lose data, and a batch the store refuses is counted and reported by the next flush (the run's
//! end), so that the run is not recorded FINISHED with metrics missing. An unreachable server is
//! the store's business (the REST store spools to the embedded store), not the sender's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use super::limits::MAX_METRICS_PER_BATCH;
use super::{MetricPoint, Tracker};

/// Points the queue holds before a logging call waits for the workers.
pub const QUEUE_CAPACITY: usize = 100_000;

/// What the workers have done with the points queued so far.
#[derive(Default)]
struct Delivery {
    /// Points taken out of the queue and settled (sent, or refused by the store).
    settled: u64,
    /// Points the store refused.
    lost: u64,
    /// The first refusal, for the report.
    first_error: Option<String>,
}

/// State shared by the logging side and the workers.
#[derive(Default)]
struct Shared {
    /// Points put into the queue.
    queued: AtomicU64,
    /// Settled points and errors.
    delivery: Mutex<Delivery>,
    /// Signalled whenever points are settled.
    settled: Condvar,
}

impl Shared {
    fn settle(&self, points: usize, result: anyhow::Result<()>) {
        let mut delivery = self.delivery.lock().unwrap_or_else(PoisonError::into_inner);
        delivery.settled += points as u64;
        if let Err(error) = result {
            delivery.lost += points as u64;
            if delivery.first_error.is_none() {
                delivery.first_error = Some(format!("{error:#}"));
            }
        }
        drop(delivery);
        self.settled.notify_all();
    }
}

/// The permits for requests in flight to one store, shared by every run of the process.
struct InFlight {
    /// Permits in all.
    limit: usize,
    /// Permits taken.
    taken: Mutex<usize>,
    /// Signalled when a permit is returned.
    returned: Condvar,
}

impl InFlight {
    /// The permits of the store at `uri` (created with `limit` permits on first use).
    fn of(uri: &str, limit: usize) -> Arc<InFlight> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<InFlight>>>> = OnceLock::new();
        let mut stores = STORES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        stores
            .entry(uri.to_string())
            .or_insert_with(|| {
                Arc::new(InFlight {
                    limit: limit.max(1),
                    taken: Mutex::new(0),
                    returned: Condvar::new(),
                })
            })
            .clone()
    }

    /// Take a permit, waiting for one; it is returned when the guard is dropped.
    fn acquire(&self) -> Permit<'_> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        while *taken >= self.limit {
            taken = self.returned.wait(taken).unwrap_or_else(PoisonError::into_inner);
        }
        *taken += 1;
        Permit(self)
    }
}

/// A request's permit ([`InFlight::acquire`]).
struct Permit<'a>(&'a InFlight);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.returned.notify_one();
    }
}

/// A run's background metric sender: a bounded queue and the worker threads draining it.
pub struct MetricSender {
    /// The queue's sending end (`None` once shut down).
    queue: Option<SyncSender<MetricPoint>>,
    /// Counters shared with the workers.
    shared: Arc<Shared>,
    /// The workers, joined on drop.
    workers: Vec<JoinHandle<()>>,
    /// Where the points go, for messages.
    target: String,
}

impl MetricSender {
    /// Start the workers sending `run_id`'s points to `tracker`, as many as it allows requests in
    /// flight (the permits for them are shared with the process's other runs on that store).
    pub fn start(tracker: Arc<dyn Tracker>, run_id: &str) -> anyhow::Result<MetricSender> {
        let (queue, receiver) = sync_channel(QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        let shared = Arc::new(Shared::default());
        let permits = InFlight::of(&tracker.uri(), tracker.max_in_flight());
        let workers = (0..permits.limit)
            .map(|i| {
                let (tracker, receiver, shared) = (tracker.clone(), receiver.clone(), shared.clone());
                let (run_id, permits) = (run_id.to_string(), permits.clone());
                std::thread::Builder::new()
                    .name(format!("fairlab-metrics-{i}"))
                    .spawn(move || work(tracker.as_ref(), &run_id, &receiver, &shared, &permits))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(MetricSender {
            queue: Some(queue),
            shared,
            workers,
            target: format!("run {run_id} in {}", tracker.uri()),
        })
    }

    /// Queue a point; waits only when the queue is full.
    pub fn send(&self, point: MetricPoint) -> anyhow::Result<()> {
        let queue = self.queue.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "metrics for {} can no longer be logged: the sender was shut down",
                self.target
            )
        })?;
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        queue.send(point).map_err(|_| {
            anyhow::anyhow!(
                "metrics for {} can no longer be logged: the sender's workers stopped",
                self.target
            )
        })
    }

    /// Wait until every point queued so far is settled. An error says how many points the store
    /// refused and why (the first refusal); it is returned by every later flush too.
    pub fn flush(&self) -> anyhow::Result<()> {
        let mut delivery = self.shared.delivery.lock().unwrap_or_else(PoisonError::into_inner);
        while delivery.settled < self.shared.queued.load(Ordering::SeqCst) {
            if self.workers.iter().all(JoinHandle::is_finished) {
                anyhow::bail!("the metric sender of {} stopped with points still queued", self.target);
            }
            delivery = self
                .shared
                .settled
                .wait_timeout(delivery, std::time::Duration::from_millis(200))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        match &delivery.first_error {
            None => Ok(()),
            Some(error) => anyhow::bail!(
                "{} metric point(s) of {} could not be logged: {error}",
                delivery.lost,
                self.target
            ),
        }
    }
}

impl Drop for MetricSender {
    fn drop(&mut self) {
        // Closing the queue lets the workers send what is left and stop.
        self.queue = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: take the first point waiting (blocking), a permit (waiting for one), then whatever
/// else is queued up to one batch; send it, and settle it; stop when the queue is closed and empty.
fn work(
    tracker: &dyn Tracker,
    run_id: &str,
    receiver: &Mutex<Receiver<MetricPoint>>,
    shared: &Shared,
    permits: &InFlight,
) {
    loop {
        let (batch, _permit) = {
            let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
            let Ok(first) = receiver.recv() else { return };
            let permit = permits.acquire();
            let mut batch = Vec::with_capacity(64);
            batch.push(first);
            while batch.len() < MAX_METRICS_PER_BATCH {
                match receiver.try_recv() {
                    Ok(point) => batch.push(point),
                    Err(_) => break,
                }
            }
            (batch, permit)
        };
        let result = tracker.log_batch(run_id, &batch, &[], &[]);
        if let Err(error) = &result {
            tracing::error!(
                "{} metric point(s) of run {run_id} could not be logged to {}: {error:#}",
                batch.len(),
                tracker.uri()
            );
        }
        shared.settle(batch.len(), result);
    }
}
