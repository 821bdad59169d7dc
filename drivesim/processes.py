"""Worker processes: how many cores there are for them, and waiting on them while their progress reaches the parent's bar.

`generate` and `evaluate` both hand work to a spawned process pool; the workers
put frame counts on a queue, and the parent moves them onto its tqdm bar while
it waits. This is that waiting loop, once.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset narrows), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def wait_with_progress(futures: Iterable[Future], progress_queue: Any, bar: Any, on_result: Callable[[Future], None]) -> None:
    """Wait for every future, calling `on_result` on each as it finishes and moving the counts on
    `progress_queue` onto `bar`. A failed future's error (or an interrupt) cancels the ones not yet
    started and is raised; those already running are the caller's to stop."""
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain_progress(progress_queue, bar)
            for future in finished:
                on_result(future)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    drain_progress(progress_queue, bar)


def drain_progress(progress_queue: Any, bar: Any) -> None:
    """Move every count waiting on `progress_queue` onto `bar`."""
    while True:
        try:
            bar.update(progress_queue.get_nowait())
        except queue.Empty:
            return
