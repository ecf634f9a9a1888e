"""The engine: runs due steps in HyperPod-time order, in the background for a real clock and
on demand (advance, settle) for a manual one."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter

from hyperpod_local.domain.faults import RecoveryPolicy
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Task
from hyperpod_local.engine.clock import MAX_TIME, Clock, ClockLimit, ManualClock
from hyperpod_local.engine.durations import Durations
from hyperpod_local.engine.operations import BACKGROUND_KINDS
from hyperpod_local.engine.reports import EngineObserver, StepReport
from hyperpod_local.engine.steps import BATCH_STEPS, STEPS, StepContext, record_abandoned
from hyperpod_local.providers.base import Provider
from hyperpod_local.store.database import Store
from hyperpod_local.store.unit_of_work import Tx

log = logging.getLogger(__name__)

# A step that raises is retried this much HyperPod time later, and abandoned after so many.
STEP_RETRY_DELAY = 60.0
MAX_STEP_FAILURES = 5
# The longest a settle() may move time: two HyperPod days are past any operation; only work
# that never ends (a Continuous cluster retrying against a standing capacity shortage) hits it.
SETTLE_LIMIT = 2 * 86400.0
# Cap the background sleep, so a clock change of mind (or a missed wake-up) costs little.
_MAX_SLEEP = 1.0
# How long (wall seconds) the engine goes on taking the steps of later due instants into one
# transaction: a request waiting for its turn to write waits about this much at most.
_TX_BUDGET = 0.01
# Events and finished operations are kept 14 days (spec 4.6), and at most so many events a
# cluster (the oldest go first); looked at once an hour of HyperPod time.
RETENTION = 14 * 86400.0
EVENTS_PER_CLUSTER = 10_000
_PRUNE_EVERY = 3600.0


class _Declined(Exception):
    """A batch step declined its batch: rolled back like a failure, but not one."""


def _run_together(tasks: list[Task], index: int) -> list[Task]:
    """The run of tasks from `index` that one batch step can take: the same step of the same
    kind in the same cluster, one after another in due order."""
    first = tasks[index]
    key = (first.kind, first.step)
    if key not in BATCH_STEPS:
        return [first]
    end = index + 1
    while (
        end < len(tasks)
        and (tasks[end].kind, tasks[end].step) == key
        and (tasks[end].cluster_id == first.cluster_id)
    ):
        end += 1
    return tasks[index:end]


class NotManual(Exception):
    pass


class Unsettled(RuntimeError):
    """settle() gave up with work still scheduled: what it is, so the caller can say."""

    def __init__(self, reason: str, clusters: list[str], operations: list[str], steps: int) -> None:
        super().__init__(
            f"operations still in flight {reason}: {steps} step(s) of "
            f"{', '.join(operations) or 'no operation'} in "
            f"{', '.join(clusters) or 'no cluster'}"
        )
        self.clusters, self.operations, self.steps = clusters, operations, steps


class Engine:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        durations: Durations,
        provider: Provider,
        ids: IdSource,
        policy: RecoveryPolicy,
        *,
        batch: int = 50,
        events_per_cluster: int = EVENTS_PER_CLUSTER,
        observer: EngineObserver | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.durations = durations
        self.provider = provider
        self.ids = ids
        self.policy = policy
        self.batch = batch
        self.events_per_cluster = events_per_cluster
        # Told of the steps run, once they are committed (the server's metrics).
        self.observer = observer
        # One runner at a time in this process: the background loop or an advance.
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = float("-inf")
        # Whether a prune looked at every cluster's events for its cap: the first does, for
        # what was written before this process counted (Store.events_written).
        self._capped_all = False

    # Running due work -------------------------------------------------------------------

    def run_due(self) -> int:
        """Run every step due by now, earliest first; returns how many ran."""
        return self._run_due()[0]

    def _run_due(self) -> tuple[int, float | None]:
        """run_due, and the earliest due time left after it (None: no work at all), as the
        last transaction saw it."""
        ran = 0
        with self._lock:
            now = self.clock.now()
            while True:
                began = time.monotonic()
                reports: list[StepReport] = []
                with self.store.write() as tx:
                    pruned = self._prune(tx, now)
                    taken = 0
                    # The steps of several due instants share one transaction (its BEGIN,
                    # the clock saved, the commit: the fixed cost of a wake-up), as long as
                    # it stays short: a request waits for it to end.
                    while True:
                        due = tx.tasks.due_together(now, self.batch)
                        if not due.tasks:
                            done, next_due = True, due.later
                            break
                        if taken and (
                            taken >= self.batch or time.monotonic() - began >= _TX_BUDGET
                        ):
                            done, next_due = False, None  # the rest in a transaction of its own
                            break
                        reports += self._run_instant(tx, due.tasks)
                        taken += len(due.tasks)
                        # What was seen after the instant is still the next work unless its
                        # steps scheduled some before it: then no need to look again.
                        if due.later is not None:
                            soonest = min(due.later, tx.tasks.earliest_written)
                            if soonest > now:
                                done, next_due = True, soonest
                                break
                    self._trim(tx)
                    self.store.save_time(now, tx=tx)
                    # An idle tick (every second) saves only the clock.
                    tx.answers_unchanged = not taken and not pruned
                self._report(reports)
                ran += taken
                if done:
                    return ran, None if next_due == math.inf else next_due

    def _run_instant(self, tx: Tx, tasks: list[Task]) -> list[StepReport]:
        """The tasks of one due instant, in order; those that go together in batches."""
        removals = tx.tasks.removals
        reports: list[StepReport] = []
        index = 0
        while index < len(tasks):
            task = tasks[index]
            # A step before it may have removed it (its node went, a rollback cancelled it):
            # then it does not run.
            if tx.tasks.removals != removals and tx.tasks.get(task.id or -1) != task:
                index += 1
                continue
            together = _run_together(tasks, index)
            if len(together) > 1 and tx.tasks.removals == removals:
                done = self._run_batch(tx, together)
                if done is not None:
                    reports += done
                    index += len(together)
                    continue
            reports.append(self._run_one(tx, task))
            index += 1
        return reports

    def _prune(self, tx: Tx, now: float) -> int:
        """Age out events and operations: a cached answer that showed them is stale then."""
        if now < self._next_prune:
            return 0
        self._next_prune = now + _PRUNE_EVERY
        cap = None if self._capped_all else self.events_per_cluster
        self._capped_all = True
        return tx.events.prune(now - RETENTION, cap)

    def _trim(self, tx: Tx) -> None:
        """A cluster written a fifth of its cap of events since it was last trimmed (by this
        process's requests or its engine: Store.events_written) is trimmed to its cap now,
        not at the next hourly prune: a fleet's settle writes five events a node, and the
        store would hold every one of them until then (2.4 GB for a million nodes). A fifth,
        not half: the store's file is as big as the most it ever held (a million-node settle
        left 974 MB, against 1,045 at half a cap), and finding where to trim walks only the
        cap's entries of one index."""
        written = self.store.events_written
        # This transaction's own are counted here, not again after its commit.
        written.update(tx.events.added)
        tx.events.added.clear()
        every = max(1, self.events_per_cluster // 5)
        crowded = [c for c, n in written.items() if n >= every]
        for cluster_id in crowded:
            tx.events.trim(cluster_id, self.events_per_cluster)
            del written[cluster_id]

    def _run_one(self, tx: Tx, task: Task) -> StepReport:
        """One step in its own savepoint: a step that fails leaves no half of its work behind,
        and is tried again a little later, then given up with an error event."""
        step, due_at = task.step, task.due_at
        now = self.clock.now()
        late = self._lateness(due_at, now)
        # A step happens at its due time, or now if the engine runs it late, so no event is
        # stamped earlier than one a request has already written.
        context = StepContext(
            tx, max(due_at, now), self.durations, self.provider, self.ids, self.policy
        )
        outcome = "ok"
        try:
            with tx.savepoint():
                rescheduled = STEPS[task.kind](context, task)
                if rescheduled is None:
                    tx.tasks.remove(task.id or -1)
                else:
                    tx.tasks.save(rescheduled)
        except Exception as error:
            log.exception("step %s/%s of task %s failed", task.kind, step, task.id)
            # Rolled back: what the step counted did not happen.
            context.tally.clear()
            task.step, task.due_at = step, due_at
            failures = int(task.data.get("failures", 0)) + 1
            if failures >= MAX_STEP_FAILURES:
                tx.tasks.remove(task.id or -1)
                record_abandoned(context, task, error)
                outcome = "abandoned"
            else:
                task.data = {**task.data, "failures": failures}
                task.due_at = round(due_at + STEP_RETRY_DELAY, 3)
                tx.tasks.save(task)
                outcome = "failed"
        return StepReport(task.kind, outcome, late, context.tally.counts)

    def _run_batch(self, tx: Tx, tasks: list[Task]) -> list[StepReport] | None:
        """Tasks of one step of one cluster, due together, done at once in one savepoint;
        None if that could not be (the batch step declined, or raised and was rolled back),
        and each then runs alone, with its own retries."""
        first = tasks[0]
        now = self.clock.now()
        context = StepContext(
            tx, max(first.due_at, now), self.durations, self.provider, self.ids, self.policy
        )
        saved = [(task.step, task.due_at, task.data) for task in tasks]
        try:
            with tx.savepoint():
                done = BATCH_STEPS[(first.kind, first.step)](context, tasks)
                if done is None:
                    raise _Declined
                for task, rescheduled in zip(tasks, done, strict=True):
                    if rescheduled is None:
                        tx.tasks.remove(task.id or -1)
                    else:
                        tx.tasks.save(rescheduled)
        except Exception as error:
            if not isinstance(error, _Declined):
                log.debug(
                    "batch of %s/%s rolled back; each runs alone",
                    first.kind,
                    first.step,
                    exc_info=True,
                )
            for task, (step_name, due_at, data) in zip(tasks, saved, strict=True):
                task.step, task.due_at, task.data = step_name, due_at, data
            return None
        late = self._lateness(first.due_at, now)
        # What the batch counted is reported once, with its first step.
        return [
            StepReport(task.kind, "ok", late, context.tally.counts if i == 0 else Counter())
            for i, task in enumerate(tasks)
        ]

    def _lateness(self, due_at: float, now: float) -> float:
        """Wall-clock seconds a step due at `due_at` runs late at `now`."""
        late = self.clock.wall_seconds(now - due_at) if now > due_at else 0.0
        # A manual clock's span never passes by itself (inf): its steps run at their due time.
        return late if math.isfinite(late) else 0.0

    def _report(self, reports: list[StepReport]) -> None:
        if self.observer is None:
            return
        try:
            self.observer.steps_committed(reports)
        except Exception:
            # The steps are committed: a fault in the metrics must not make the loop retry.
            log.exception("the engine's observer failed")

    def next_due_at(self, besides: frozenset[str] = frozenset()) -> float | None:
        with self.store.read() as tx:
            return tx.tasks.next_due_at(besides)

    def pending(self) -> int:
        with self.store.read() as tx:
            return tx.tasks.total()

    # Manual time --------------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Move a manual clock forward, running each step at its own due time on the way."""
        clock = self._manual()
        with self._lock:
            target = clock.now() + max(0.0, seconds)
            if not target <= MAX_TIME:
                # Refused before any step runs: an advance happens whole or not at all.
                raise ClockLimit(clock.now(), target)
            while (due := self._next_after_catch_up()) is not None and due <= target:
                clock.set(due)
                self.run_due()
            clock.set(target)
            self.save_clock()
            return clock.now()

    def settle(self, limit: float = SETTLE_LIMIT) -> float:
        """Advance until no operation is in flight; returns the HyperPod seconds that passed.
        Work that never ends by itself (a random_hardware fault's strikes) goes on meanwhile,
        at its times, but is not waited for."""
        clock = self._manual()
        with self._lock:
            start = clock.now()
            while (due := self._next_after_catch_up(BACKGROUND_KINDS)) is not None:
                if due - start > limit:
                    raise self._unsettled(f"after {limit:g} s")
                if due > MAX_TIME:
                    raise self._unsettled("past the end of HyperPod time")
                clock.set(due)
                self.run_due()
            self.save_clock()
            return clock.now() - start

    def _next_after_catch_up(self, besides: frozenset[str] = frozenset()) -> float | None:
        """The next due step, once the provider's own work in flight has ended: a manual
        clock does not move while a lifecycle script runs in real time."""
        self.provider.catch_up()
        return self.next_due_at(besides)

    def _unsettled(self, reason: str) -> Unsettled:
        with self.store.read() as tx:
            names = {
                cluster_id: cluster.name if (cluster := tx.clusters.get(cluster_id)) else cluster_id
                for cluster_id in tx.tasks.cluster_ids(BACKGROUND_KINDS)
            }
            return Unsettled(
                reason,
                sorted(names.values()),
                tx.tasks.kinds(BACKGROUND_KINDS),
                tx.tasks.total(BACKGROUND_KINDS),
            )

    def _manual(self) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise NotManual("the clock is real; start the server with --clock manual to move it")
        return self.clock

    def save_clock(self) -> None:
        with self.store.write() as tx:
            self.store.save_time(self.clock.now(), tx=tx)
            # A manual advance may jump over an hour: what aged out goes now.
            tx.answers_unchanged = not self._prune(tx, self.clock.now())

    # The background loop ------------------------------------------------------------------

    def notify(self) -> None:
        """New work was committed: wake the loop to look at when it is due."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None or isinstance(self.clock, ManualClock):
            return
        self._thread = threading.Thread(target=self._loop, name="hyperpod-engine", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Stop the background loop; False if it is still inside a step after 10 s."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                # The next due time as the engine's own transaction saw it: work added since
                # by a request wakes the loop (notify), so it needs no look of its own.
                _ran, due = self._run_due()
            except Exception:
                log.exception("engine step failed; retrying in a second")
                due, sleep = None, 1.0
            else:
                sleep = _MAX_SLEEP
                if due is not None:
                    sleep = min(_MAX_SLEEP, self.clock.wall_seconds(due - self.clock.now()))
            self._wake.wait(timeout=max(0.0, sleep))
            self._wake.clear()
