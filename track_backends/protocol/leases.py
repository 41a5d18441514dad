"""Leased claims: reserve a trial for a while, keep it with heartbeats, fence out a worker that lost it.

A reservation records ``lease = {"owner", "token", "expires", "attempts"}`` on the trial in the
same atomic step that sets it ``Running``. The token grows with every reservation of the trial,
and every later Protocol write of the worker that holds it is conditional on it: once another
worker has reserved the trial again, the first one's writes change nothing and raise
:class:`~track_backends.errors.LeaseLostError`. Expiry is judged by the store's clock
(:meth:`~track_backends.store.Store.now`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import LeaseLostError, QueryError, StoreError
from ..model import Status, Trial
from ..store import TRIALS, Query
from .core import ProtocolCore
from .updates import (
    and_query,
    heartbeat_update,
    mirror,
    pending_query,
    requeue_update,
    reserve_update,
    stale_query,
    status_update,
    with_release,
)

DEFAULT_LEASE = 60.0
"""Seconds a reservation lasts unless it is extended by a heartbeat."""


def default_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _check_lease(lease: Any) -> float:
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not 0 < lease < 10**9:
        raise QueryError(f"lease must be a positive number of seconds, got {lease!r}")
    return float(lease)


class LeasedProtocol(ProtocolCore):
    """The Protocol with leased reservations, heartbeats, fencing, ``run_trial`` and recovery."""

    def reserve_trial(
        self,
        query: Query = None,
        *,
        lease: float = DEFAULT_LEASE,
        owner: str | None = None,
        max_attempts: int | None = None,
    ) -> Trial | None:
        """Atomically hand out one trial that is pending, or ``Running`` with an expired lease.

        Args:
            query: Which trials qualify, e.g. ``{"group_id": g}`` (pinning the group lets every
                store answer through its index).
            lease: Seconds the reservation lasts; :meth:`heartbeat` extends it.
            owner: Who holds it (default ``host:pid``).
            max_attempts: A trial reserved more often than this is set ``Broken`` instead, with
                an error saying why, and the next trial is tried.

        Returns:
            The trial, ``Running`` and fenced by its new token, or ``None`` when none qualifies.

        Raises:
            QueryError: The query or an argument is malformed.
        """
        seconds = _check_lease(lease)
        if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
            raise QueryError(f"max_attempts must be a positive int, got {max_attempts!r}")
        who = default_owner() if owner is None else str(owner)
        while True:
            now = self.store.now()
            update = reserve_update(now, seconds, who)
            doc = self.store.find_one_and_update(TRIALS, and_query(query, pending_query()), update)
            if doc is None:
                doc = self.store.find_one_and_update(TRIALS, and_query(query, stale_query(now)), update)
            if doc is None:
                return None
            trial = Trial.from_doc(doc)
            trial.fence, trial.lease_seconds = doc["lease"]["token"], seconds
            attempts = doc["lease"]["attempts"]
            if max_attempts is not None and attempts > max_attempts:
                self._break(trial, f"reserved {attempts} times, more than max_attempts={max_attempts}")
                continue
            if trial.metric_summary:
                self._archive_summary(trial)
            return trial

    def _archive_summary(self, trial: Trial) -> None:
        """Move an earlier attempt's metric summary to ``previous_attempts``: this attempt starts clean.

        The earlier worker can no longer write (its token is stale), so what the reservation
        returned is all it logged. Its points stay stored under its own attempt.
        """
        assert trial.fence is not None
        entry = {"token": trial.fence - 1, "metric_summary": trial.metric_summary}
        with contextlib.suppress(LeaseLostError):
            self._apply(TRIALS, trial, {"$set": {"metric_summary": {}}, "$push": {"previous_attempts": entry}})

    def _break(self, trial: Trial, why: str) -> None:
        with contextlib.suppress(LeaseLostError):  # someone else took it meanwhile: theirs now
            self._apply(TRIALS, trial, with_release(status_update(Status.Broken, why)))

    def heartbeat(self, trial: Trial, lease: float | None = None) -> None:
        """Extend the trial's lease to the store's clock plus ``lease`` seconds.

        Args:
            trial: A trial returned by :meth:`reserve_trial`.
            lease: Seconds from now (default: the duration it was reserved with).

        Raises:
            LeaseLostError: The trial was reserved again by someone else; nothing changed.
            QueryError: The trial was not obtained from :meth:`reserve_trial`.
        """
        if trial.fence is None:
            raise QueryError(f"trial {trial.uid} holds no lease: reserve it with reserve_trial first")
        seconds = _check_lease(lease if lease is not None else trial.lease_seconds or 60.0)
        update = heartbeat_update(self.store.now(), seconds)
        query = {**self._target(trial), "status.name": "Running"}
        if not self.store.update(TRIALS, query, update):
            raise self._missed_lease(trial)
        mirror(trial, update)

    def _missed_lease(self, trial: Trial) -> Exception:
        err = self._missed(TRIALS, trial)
        if isinstance(err, LeaseLostError) or trial.fence is None:
            return err
        return LeaseLostError(f"trial {trial.uid} is no longer Running: its lease has ended")

    def requeue_stale(self, query: Query = None) -> int:
        """Set every ``Running`` trial whose lease has expired back to ``Interrupted``.

        Args:
            query: Restrict to the trials this query matches.

        Returns:
            How many trials were requeued.
        """
        return self.store.update(TRIALS, and_query(query, stale_query(self.store.now())), requeue_update(), many=True)

    def stale_trials(self, query: Query = None) -> list[Trial]:
        """The ``Running`` trials whose lease has expired (what :meth:`requeue_stale` would requeue)."""
        return [Trial.from_doc(d) for d in self.store.find(TRIALS, and_query(query, stale_query(self.store.now())))]

    @contextlib.contextmanager
    def run_trial(self, trial: Trial, *, heartbeat: float | None = None) -> Iterator[Trial]:
        """Run a reserved trial: start it, keep its lease alive, and finish it whatever happens.

        On entry the trial is started (``log_trial_start``). While the block runs, a background
        thread heartbeats every ``heartbeat`` seconds (default: a third of the lease). On a normal
        exit the trial becomes ``Completed``; on an exception ``Exception``, with the error
        recorded, and the exception propagates; on ``KeyboardInterrupt``, ``SystemExit`` or
        SIGTERM (in the main thread) ``Interrupted``, reservable again at once. In every case the
        lease ends; its token and attempt count stay.

        Raises:
            LeaseLostError: The trial was reserved again by someone else meanwhile (raised on
                entry or exit; the other worker's writes stand).
        """
        self.log_trial_start(trial)
        beat = _Heartbeat(self, trial, heartbeat) if trial.fence is not None else None
        try:
            with _sigterm_as_exit():
                yield trial
        except BaseException as e:
            _stop(beat)
            self.log_trial_finish(trial, type(e), e, e.__traceback__)
            raise
        _stop(beat)
        self.log_trial_finish(trial)


def _stop(beat: _Heartbeat | None) -> None:
    if beat is not None:
        beat.stop()


class _Heartbeat:
    """A daemon thread that extends a lease until stopped or lost."""

    def __init__(self, proto: LeasedProtocol, trial: Trial, every: float | None) -> None:
        lease = trial.lease_seconds or 60.0
        self.every = every if every is not None else lease / 3
        self.proto, self.trial = proto, trial
        self.lost: LeaseLostError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.uid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.proto.heartbeat(self.trial)
            except LeaseLostError as e:
                self.lost = e
                return
            except StoreError:
                continue  # a passing outage: the next beat may get through before the lease ends

    def stop(self) -> None:
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
