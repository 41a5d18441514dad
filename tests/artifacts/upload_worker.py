"""A worker process that uploads an artifact slowly, to be killed half-way by a test.

Usage: python upload_worker.py URI TRIAL_UID CHUNKS  (each chunk is 1 MiB, one every 50 ms).
"""

import io
import sys
import time

from track_backends import get_protocol


class Slow(io.RawIOBase):
    def __init__(self, chunks: int) -> None:
        self.left = chunks

    def readable(self) -> bool:
        return True

    def readinto(self, buffer):  # type: ignore[no-untyped-def]
        if self.left <= 0:
            return 0
        time.sleep(0.05)
        self.left -= 1
        n = min(len(buffer), 1 << 20)
        buffer[:n] = b"k" * n
        print("chunk", flush=True)
        return n


uri, trial, chunks = sys.argv[1], sys.argv[2], int(sys.argv[3])
proto = get_protocol(uri)
proto.put_artifact(trial, "half.bin", Slow(chunks))
print("done", flush=True)
