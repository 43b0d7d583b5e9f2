"""Which students a grading run takes: ``--shard I/N`` (0-based, like a Kubernetes indexed Job's
``JOB_COMPLETION_INDEX`` or a Slurm array started at 0).

A student belongs to shard ``int(sha256(student id)) mod N``: the same on every machine, in every
Python (``hash()`` is salted per process) and on every run, so N runs with the same N and the
indices 0 to N-1 split the students between them, each student to exactly one.
"""

import hashlib
import re
from dataclasses import dataclass

_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, spec):
        """``"I/N"`` -> Shard; ValueError that says what is wrong with any other text."""
        match = _SPEC.match(spec.strip())
        if not match:
            raise ValueError(f"--shard {spec!r}: write I/N, two whole numbers (for example 0/3, 1/3 and 2/3)")
        index, count = map(int, match.groups())
        if count < 1:
            raise ValueError(f"--shard {spec}: the number of shards N must be at least 1")
        if index >= count:
            raise ValueError(f"--shard {spec}: the index I counts from 0, so it must be below N ({0}..{count - 1})")
        return cls(index, count)

    def holds(self, key):
        """Whether ``key`` (a student id, or what a problem row is about) falls in this shard."""
        digest = hashlib.sha256(str(key).encode("utf-8", "replace")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self):
        return f"{self.index}/{self.count}"
