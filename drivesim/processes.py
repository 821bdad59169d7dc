"""Worker processes: how many cores there are for them (CPU affinity and a container's CPU quota), and waiting on them while their progress reaches the parent's bar.

`generate` and `evaluate` both hand work to a process pool (`run_in_workers`):
the workers put frame counts on a queue, and the parent moves them onto its
tqdm bar while it waits; how the workers start, what each does first, and how
the parent stops them early are decided here, once.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKER_DIED = (
    "a worker process died: out of memory (try fewer --workers), or, when drivesim is called from a Python script, "
    "the script starts the workers outside `if __name__ == \"__main__\":` (worker processes may be spawned, and then import it)"
)
"""What a BrokenProcessPool means to a user of generate and eval."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Where the cgroup file systems are mounted (v2 at the root, or v1 per controller)."""


def worker_context(torch_threads: int = 1) -> multiprocessing.context.BaseContext:
    """How worker processes that each run torch on `torch_threads` threads start: forked where safe, else spawned.

    A forked worker inherits the parent's imported modules (numpy, OpenCV,
    h5py, scipy, torch: 0.5-1.5 s a spawned worker spends importing before its
    first frame). Forking is safe only on Linux (macOS's system frameworks are
    not fork-safe), only for workers that run torch (and anything else built on
    OpenMP) on one thread: a forked child inherits the book-keeping of the
    parent's OpenMP pool but not its threads, and waits forever for them in
    its first parallel region, while one-thread work runs inline. Nor may the
    parent have started CUDA, which cannot start again in a forked child.
    Workers must call `init_worker` before anything else, and be started
    inside `ready_to_fork`.
    """
    torch = sys.modules.get("torch")
    cuda_started = torch is not None and torch.cuda.is_initialized()
    if sys.platform == "linux" and torch_threads == 1 and not cuda_started:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))  # no SIGHUP on Windows
"""Signals that stop drivesim as Ctrl-C does, its workers included: kill, timeout, a batch scheduler, a
closed terminal."""


def init_worker(torch_threads: int) -> None:
    """First thing in a worker process: what a spawned one starts with, set up for one worker per core.

    OpenCV on one thread and torch on `torch_threads`; the default signal
    handlers (a forked worker would run the caller's, say a training script's
    save-and-stop handler, in every worker at once), except that SIGTERM and
    SIGHUP stop it as Ctrl-C does (`_stop_worker`); and the worker ends when
    its parent does, instead of finishing the shards queued to it and then
    waiting forever for more.
    """
    import cv2

    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = str(torch_threads)  # for torch imported from here on (a spawned worker)
    if "torch" in sys.modules:  # a forked worker: torch is loaded with the parent's thread count
        sys.modules["torch"].set_num_threads(torch_threads)
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    for signum in TERMINATION_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:  # nohup's choice stays
            signal.signal(signum, _stop_worker)
    _end_with_parent()


def _stop_worker(signum: int, frame: object) -> None:
    """SIGTERM or SIGHUP in a worker. Sent to the process group (timeout, a batch scheduler, a closed
    terminal), it stops the worker as Ctrl-C does, so that it deletes its unfinished shard instead of dying
    with it half-written, while the parent, stopping too, tells the others. Sent because the parent died
    (`_end_with_parent`), nobody is left to collect more work: the worker ends at once."""
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(128 + signum)
    raise KeyboardInterrupt


def end_quietly_on_termination(worker_id: int = 0) -> None:
    """A DataLoader's `worker_init_fn`: SIGTERM or SIGHUP ends the worker at once, with status 0.

    Sent to the process group (timeout, a batch scheduler, a closed terminal), they reach the loader's
    workers too. torch's own handler lets a worker die by the signal, and the training process, stopping
    as on Ctrl-C, then raised that death as a RuntimeError with a traceback. A worker only reads frames:
    there is nothing of its own to clean up."""
    for signum in TERMINATION_SIGNALS:
        signal.signal(signum, _exit_quietly)


def _exit_quietly(signum: int, frame: object) -> None:
    os._exit(0)


def _end_with_parent() -> None:
    """Have Linux send this process SIGTERM when its parent ends (PR_SET_PDEATHSIG); elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the parent ended before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def ready_to_fork(context: multiprocessing.context.BaseContext) -> Iterator[None]:
    """Around the point where `context`'s workers start; when they fork:

    - Garbage is collected first. A child inherits the parent's uncollected reference cycles, and when
      its own collector frees them their finalizers run in the wrong process: a training's DataLoader
      iterator, freed in a generate worker `dagger` forked after the training, printed an
      "AssertionError: can only test a child process" traceback per worker.
    - OpenCV's thread pool is wound down and restored after. A forked child has none of the parent's
      threads, and OpenCV in the child waits forever for the pool's threads it inherited the bookkeeping of.
    """
    if context.get_start_method() != "fork":
        yield
        return
    gc.collect()
    cv2 = sys.modules.get("cv2")  # not imported: no pool to park
    if cv2 is None:
        yield
        return
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # joins the pool's threads
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def usable_cores(cgroup_root: Path = CGROUP_ROOT, cgroup_list: Path = Path("/proc/self/cgroup")) -> int:
    """Cores this process may keep busy: its CPU affinity (which a container's cpuset narrows), further
    limited by a CFS CPU quota (`docker --cpus`, a Kubernetes CPU limit), rounded up; not the host's count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, cgroup_list)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, cgroup_list: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs' worth of time the CFS quotas on this process's cgroup and its ancestors allow (the tightest),
    or None when none is set or the cgroup files cannot be read.

    cgroup v2 keeps "quota period" (or "max period") in cpu.max; v1 keeps cpu.cfs_quota_us (-1: none)
    and cpu.cfs_period_us under the cpu controller's mount."""
    try:
        lines = cgroup_list.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one unified hierarchy
            files = [(folder / "cpu.max", None) for folder in _up_to_root(cgroup_root, path)]
        elif "cpu" in controllers.split(","):
            mount = next((cgroup_root / name for name in (controllers, "cpu", "cpu,cpuacct") if (cgroup_root / name).is_dir()), None)
            if mount is None:
                continue
            files = [(folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us") for folder in _up_to_root(mount, path)]
        else:
            continue
        for quota_file, period_file in files:
            try:
                if period_file is None:
                    quota, period = quota_file.read_text().split()[:2]
                else:
                    quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
                if quota not in ("max", "-1") and float(period) > 0:
                    limits.append(float(quota) / float(period))
            except (OSError, ValueError):
                continue
    return min(limits) if limits else None


def _up_to_root(mount: Path, path: str) -> list[Path]:
    """The cgroup folder of `path` under `mount` and each of its parents up to the mount itself."""
    parts = [part for part in path.split("/") if part]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


_progress_queue: Any = None
"""In a worker: where `report_progress` puts frame counts for the parent's bar."""
_stop: Any = None
"""In a worker: set by the parent when the run ends early (a failure, Ctrl-C); see `stop_requested`."""


def run_in_workers(
    function: Callable[..., Any],
    calls: list[tuple[Any, ...]],
    workers: int,
    torch_threads: int,
    bar: Any,
    on_result: Callable[[int, Any], None],
) -> None:
    """`function(*args)` for every `args` in `calls`, shared out to `workers` processes that each run torch on
    `torch_threads` threads; `on_result(i, result)` for call i as it finishes, and the workers'
    `report_progress` counts moved onto `bar` meanwhile.

    The workers start as `worker_context` says (inside `ready_to_fork`, each first calling `init_worker`).
    A failed call or an interrupt sets the stop that workers check with `stop_requested`, so none goes on
    with work nobody will collect, and is raised; a worker that died raises BrokenProcessPool."""
    context = worker_context(torch_threads)
    progress_queue, stop = context.Queue(), context.Event()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(progress_queue, stop, torch_threads)) as executor:
        with ready_to_fork(context):  # the workers start (fork) at the first submit
            futures = {executor.submit(function, *args): i for i, args in enumerate(calls)}
        try:
            wait_with_progress(futures, progress_queue, bar, lambda future: on_result(futures[future], future.result()))
        except BaseException:
            stop.set()  # a worker already handed its next call would otherwise work it out before the pool closes
            raise


def _start_worker(progress_queue: Any, stop: Any, torch_threads: int) -> None:
    global _progress_queue, _stop
    _progress_queue, _stop = progress_queue, stop
    init_worker(torch_threads)


def report_progress(frames: int) -> None:
    """In a worker of `run_in_workers`: `frames` more done, for the parent's progress bar."""
    _progress_queue.put(frames)


def stop_requested() -> bool:
    """In a worker of `run_in_workers`: whether the parent has given up on the run (another worker failed, Ctrl-C)."""
    return _stop is not None and _stop.is_set()


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
