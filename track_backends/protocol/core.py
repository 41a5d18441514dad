"""The Protocol's projects, groups, trials and queries, written once over the Store interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self

from ..encoding import check_key
from ..errors import DuplicateKeyError, LeaseLostError, NotFoundError, QueryError, StoreError
from ..model import Project, Status, Trial, TrialGroup, trial_uid
from ..store import GROUPS, PROJECTS, TRIALS, Query, Store
from .updates import (
    GROUP_UPDATES,
    TRIAL_UPDATES,
    UpdateDoc,
    chrono_add,
    finish_update,
    mirror,
    start_update,
    status_update,
    with_release,
)

_CHRONO_RETRIES = 100
_REVISION_RETRIES = 100


class ProtocolCore:
    """track's persistence Protocol over any :class:`~track_backends.store.Store` (without leases).

    Args:
        store: The store that holds the documents; the protocol owns it and closes it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._clock: dict[tuple[str, str], float] = {}

    # -- projects and groups -------------------------------------------------------------------
    def new_project(self, project: Project) -> Project:
        """Store a project; if one with the same name exists, return the stored one."""
        try:
            self.store.insert(PROJECTS, project.to_doc())
            return project
        except DuplicateKeyError:
            return self.get_project(project)  # type: ignore[return-value]

    def get_project(self, project: Project) -> Project | None:
        """Return the stored project with the same uid, or ``None``."""
        doc = self.store.find_one(PROJECTS, {"uid": project.uid})
        return Project.from_doc(doc) if doc else None

    def new_trial_group(self, group: TrialGroup) -> TrialGroup:
        """Store a trial group; if it exists already, return the stored one."""
        try:
            self.store.insert(GROUPS, group.to_doc())
            return group
        except DuplicateKeyError:
            return self.get_trial_group(group)  # type: ignore[return-value]

    def get_trial_group(self, group: TrialGroup) -> TrialGroup | None:
        """Return the stored group with the same uid, or ``None``."""
        doc = self.store.find_one(GROUPS, {"uid": group.uid})
        return TrialGroup.from_doc(doc) if doc else None

    def add_project_trial(self, project: Project, trial: Trial) -> None:
        """Attach a trial to a project (in the store too, if the trial is stored)."""
        self.store.update(TRIALS, {"uid": trial.uid}, {"$set": {"project_id": project.uid}})
        trial.project_id = project.uid

    def add_group_trial(self, group: TrialGroup, trial: Trial) -> None:
        """Attach a trial to a group (in the store too, if the trial is stored)."""
        self.store.update(TRIALS, {"uid": trial.uid}, {"$set": {"group_id": group.uid}})
        trial.group_id = group.uid

    def set_group_metadata(self, group: TrialGroup, **metadata: Any) -> None:
        """Set metadata keys of a stored group.

        Raises:
            NotFoundError: The group is not stored.
        """
        self._apply(GROUPS, group, GROUP_UPDATES["set_group_metadata"](**metadata))

    # -- trials ----------------------------------------------------------------------------------
    def new_trial(self, trial: Trial, auto_increment: bool = False) -> Trial | None:
        """Store a new trial.

        Args:
            trial: The trial; its ``revision`` is updated when ``auto_increment`` bumps it.
            auto_increment: When the uid exists, store the trial as the next free revision of
                the same hash instead of giving up.

        Returns:
            The trial, or ``None`` when its uid exists and ``auto_increment`` is false.
        """
        doc = trial.to_doc()
        try:
            self.store.insert(TRIALS, doc)
            trial.stored_hash = doc["hash"]
            return trial
        except DuplicateKeyError:
            if not auto_increment:
                return None
        for _ in range(_REVISION_RETRIES):
            revs = self.store.find(TRIALS, {"hash": doc["hash"]}, sort=[("revision", -1)], limit=1)
            doc["revision"] = (revs[0]["revision"] + 1) if revs else 0
            doc["uid"] = trial_uid(doc["hash"], doc["revision"])
            try:
                self.store.insert(TRIALS, doc)
                trial.revision, trial.stored_hash = doc["revision"], doc["hash"]
                return trial
            except DuplicateKeyError:
                continue  # another process took that revision: try the next one
        raise StoreError(f"could not find a free revision for trial {trial.hash} after {_REVISION_RETRIES} tries")

    def get_trial(self, trial: Trial) -> list[Trial]:
        """Return every stored revision of the trial (same hash), oldest first."""
        docs = self.store.find(TRIALS, {"hash": trial.hash}, sort=[("revision", 1)])
        return [Trial.from_doc(d) for d in docs]

    def _target(self, obj: Any) -> dict[str, Any]:
        """The query a write to ``obj`` goes through: its uid, and its fencing token if it was reserved."""
        fence = getattr(obj, "fence", None)
        return {"uid": obj.uid} if fence is None else {"uid": obj.uid, "lease.token": fence}

    def _missed(self, collection: str, obj: Any) -> Exception:
        """Why a write to ``obj`` matched nothing: its lease was taken over, or it is not stored."""
        if getattr(obj, "fence", None) is not None and self.store.count(collection, {"uid": obj.uid}):
            stored = self.store.find_one(collection, {"uid": obj.uid}) or {}
            token = (stored.get("lease") or {}).get("token")
            return LeaseLostError(
                f"trial {obj.uid} was reserved again (token {token}, this worker holds {obj.fence}): "
                "its write changed nothing"
            )
        return NotFoundError(f"no {collection[:-1]} with uid {obj.uid!r} is stored")

    def _apply(self, collection: str, obj: Any, update: UpdateDoc) -> None:
        if not self.store.update(collection, self._target(obj), update):
            raise self._missed(collection, obj)
        mirror(obj, update)

    def log_trial_start(self, trial: Trial) -> None:
        """Mark the trial Running and record its start time."""
        self._clock[(trial.uid, "runtime")] = time.time()
        self._apply(TRIALS, trial, start_update())

    def log_trial_finish(self, trial: Trial, exc_type: Any = None, exc_val: Any = None, exc_tb: Any = None) -> None:
        """Mark the trial Completed, or Exception/Interrupted with the error recorded."""
        started = self._clock.pop((trial.uid, "runtime"), None)
        runtime = time.time() - started if started is not None else None
        update = finish_update(exc_type, exc_val, exc_tb, runtime=runtime)
        self._apply(TRIALS, trial, with_release(update) if trial.fence is not None else update)

    def log_trial_chrono_start(
        self, trial: Trial, name: str, aggregator: Any = None, start_callback: Any = None, end_callback: Any = None
    ) -> None:
        """Start timing ``name`` for this trial (the clock lives in this process)."""
        check_key(name, "chronos")
        if start_callback is not None:
            start_callback()
        self._clock[(trial.uid, name)] = time.time()

    def log_trial_chrono_finish(
        self, trial: Trial, name: str, exc_type: Any = None, exc_val: Any = None, exc_tb: Any = None
    ) -> None:
        """Stop timing ``name`` and fold the elapsed time into ``chronos[name]`` atomically.

        Raises:
            QueryError: The chrono was not started in this process.
        """
        started = self._clock.pop((trial.uid, check_key(name, "chronos")), None)
        if started is None:
            raise QueryError(f"chrono {name!r} of trial {trial.uid} was not started in this process")
        elapsed = time.time() - started
        path = f"chronos.{name}"
        for _ in range(_CHRONO_RETRIES):  # compare-and-set on the count: safe under concurrency
            doc = self.store.find_one(TRIALS, self._target(trial))
            if doc is None:
                raise self._missed(TRIALS, trial)
            current = doc.get("chronos", {}).get(name)
            guard: dict[str, Any] = {**self._target(trial), path: {"$exists": False}}
            if current:
                guard = {**self._target(trial), f"{path}.count": current["count"]}
            update = {"$set": {path: chrono_add(current, elapsed)}}
            if self.store.update(TRIALS, guard, update):
                mirror(trial, update)
                return
        raise StoreError(f"chrono {name!r} of trial {trial.uid} kept changing under us")

    def log_trial_arguments(self, trial: Trial, **arguments: Any) -> None:
        """Set parameters of the trial (the uid is not recomputed)."""
        self._apply(TRIALS, trial, TRIAL_UPDATES["log_trial_arguments"](**arguments))

    def log_trial_metadata(self, trial: Trial, **metadata: Any) -> None:
        """Set metadata keys of the trial."""
        self._apply(TRIALS, trial, TRIAL_UPDATES["log_trial_metadata"](**metadata))

    def set_trial_status(self, trial: Trial, status: Status | str, error: Any = None) -> None:
        """Set the status (a :class:`Status` or a predefined name) and record ``error``."""
        self._apply(TRIALS, trial, status_update(status, error))

    def add_trial_tags(self, trial: Trial, **tags: Any) -> None:
        """Set tag keys of the trial."""
        self._apply(TRIALS, trial, TRIAL_UPDATES["add_trial_tags"](**tags))

    # -- queries -------------------------------------------------------------------------------
    def fetch_trials(self, query: Query = None) -> list[Trial]:
        """Return the trials matching a MongoDB-style query."""
        return [Trial.from_doc(d) for d in self.store.find(TRIALS, query)]

    def fetch_groups(self, query: Query = None) -> list[TrialGroup]:
        """Return the groups matching a query."""
        return [TrialGroup.from_doc(d) for d in self.store.find(GROUPS, query)]

    def fetch_projects(self, query: Query = None) -> list[Project]:
        """Return the projects matching a query."""
        return [Project.from_doc(d) for d in self.store.find(PROJECTS, query)]

    @staticmethod
    def _builder(table: dict[str, Callable[..., UpdateDoc]], attr: Any, kind: str) -> Callable[..., UpdateDoc]:
        builder = table.get(attr) if isinstance(attr, str) else None
        if builder is None:
            raise QueryError(f"{attr!r} is not a {kind} update method; allowed: {sorted(table)}")
        return builder

    def fetch_and_update_trial(self, query: Query, attr: str, *args: Any, **kwargs: Any) -> Trial | None:
        """Atomically pick one matching trial and apply a Protocol update method to it.

        Args:
            query: Which trials qualify, e.g. ``{"group_id": g, "status.name": {"$in": [...]}}``.
            attr: The update method's name, one of :data:`TRIAL_UPDATES`.
            *args: Arguments of that method, after the trial.
            **kwargs: Keyword arguments of that method.

        Returns:
            The trial after the update, or ``None`` when none matches. Each trial is handed to
            exactly one caller, whatever the number of processes.

        Raises:
            QueryError: ``attr`` is not an allowed update method, or the query is malformed.
        """
        update = self._builder(TRIAL_UPDATES, attr, "trial")(*args, **kwargs)
        doc = self.store.find_one_and_update(TRIALS, query, update)
        return Trial.from_doc(doc) if doc is not None else None

    def fetch_and_update_group(self, query: Query, attr: str, *args: Any, **kwargs: Any) -> TrialGroup | None:
        """Atomically pick one matching group and apply ``set_group_metadata`` to it."""
        update = self._builder(GROUP_UPDATES, attr, "group")(*args, **kwargs)
        doc = self.store.find_one_and_update(GROUPS, query, update)
        return TrialGroup.from_doc(doc) if doc is not None else None

    # -- lifecycle -------------------------------------------------------------------------------
    def commit(self) -> None:
        """Flush buffered writes to the store (each write is already durable on built-in stores)."""
        self.store.commit()

    def close(self) -> None:
        """Close the underlying store."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"
