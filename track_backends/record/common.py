"""Shared helpers of :mod:`track_backends.record`: its error, and uids of trials and groups."""

from __future__ import annotations

from typing import Any

from ..errors import TrackBackendsError


class RecordError(TrackBackendsError, ValueError):
    """A cache, recorder or tracing argument is unusable (an unknown serializer, a bad name, ...)."""


def trial_uid_of(trial: Any) -> str:
    """The uid of a :class:`~track_backends.model.Trial` or of a trial uid given as a string.

    Raises:
        RecordError: ``trial`` is neither.
    """
    uid = trial if isinstance(trial, str) else getattr(trial, "uid", None)
    if type(uid) is not str or not uid:
        raise RecordError(f"expected a Trial or a trial uid, got {trial!r:.80}")
    return uid


def group_uid_of(group: Any) -> str:
    """The uid of a :class:`~track_backends.model.TrialGroup` or of a group uid given as a string.

    Raises:
        RecordError: ``group`` is neither.
    """
    uid = group if isinstance(group, str) else getattr(group, "uid", None)
    if type(uid) is not str or not uid:
        raise RecordError(f"expected a TrialGroup or a group uid, got {group!r:.80}")
    return uid
