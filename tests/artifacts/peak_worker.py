"""Upload then read back a big artifact, printing the peak Python memory (tracemalloc) in bytes.

Usage: python peak_worker.py URI SOURCE_FILE
"""

import hashlib
import sys
import tracemalloc

from track_backends import Trial, get_protocol

uri, source = sys.argv[1], sys.argv[2]
proto = get_protocol(uri)
trial = proto.new_trial(Trial({"big": 1}))
tracemalloc.start()
info = proto.put_artifact(trial, "big.bin", source)
digest = hashlib.sha256()
with proto.open_artifact(trial, "big.bin") as f:
    while chunk := f.read(1 << 20):
        digest.update(chunk)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
proto.close()
print(info.size, info.sha256, digest.hexdigest(), peak)
