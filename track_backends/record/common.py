"""Shared helpers of :mod:`track_backends.record`: its error, and uids of trials and groups."""

from __future__ import annotations

from typing import Any

from ..errors import TrackBackendsError
from ..model import uid_of


class RecordError(TrackBackendsError, ValueError):
    """A cache, recorder or tracing argument is unusable (an unknown serializer, a bad name, ...)."""


def trial_uid_of(trial: Any) -> str:
    """The uid of a :class:`~track_backends.model.Trial` or of a trial uid given as a string.

    Raises:
        RecordError: ``trial`` is neither.
    """
    uid = uid_of(trial)
    if uid is None:
        raise RecordError(f"expected a Trial or a trial uid, got {trial!r:.80}")
    return uid


def group_uid_of(group: Any) -> str:
    """The uid of a :class:`~track_backends.model.TrialGroup` or of a group uid given as a string.

    Raises:
        RecordError: ``group`` is neither.
    """
    uid = uid_of(group)
    if uid is None:
        raise RecordError(f"expected a TrialGroup or a group uid, got {group!r:.80}")
    return uid
