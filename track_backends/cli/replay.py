"""``track-backends replay``: the argparse wiring of :mod:`track_backends.replay`, where its logic lives."""

from __future__ import annotations

import argparse
from typing import Any

from .. import replay
from .common import URI_HELP

NAME = "replay"

run = replay.cmd_replay


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``replay`` subparser to the command line's subparsers."""
    return replay.add_parser(sub, URI_HELP)
