"""A process's threads counted by their OS name, read from Linux's /proc."""

from __future__ import annotations

import collections
from pathlib import Path


def thread_names(pid: int | str = "self") -> dict[str, int]:
    """The threads of process `pid` (default: this one) counted by OS name (TensorFlow names its own)."""
    names: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:
            pass  # The thread ended while we looked.
    return dict(names)


def native_thread_names(pid: int | str = "self") -> dict[str, int]:
    """TensorFlow's and the allocator's own threads by OS name, leaving out Python's own threads."""
    # Python threads keep the process's name ("python", "python3", ...); native ones name themselves.
    process_name = Path(f"/proc/{pid}/comm").read_text().strip()
    return {name: count for name, count in thread_names(pid).items() if name != process_name}
