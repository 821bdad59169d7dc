import os
import signal
import subprocess
import sys
import time

import pytest

from drivesim.processes import cpu_quota, usable_cores


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_tightest_on_the_way_to_the_root(tmp_path):
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "0::/pod/worker\n")
    write(root / "cpu.max", "max 100000\n")
    write(root / "pod" / "cpu.max", "150000 100000\n")  # 1.5 CPUs for the pod
    write(root / "pod" / "worker" / "cpu.max", "max 100000\n")
    assert cpu_quota(root, tmp_path / "self") == 1.5
    assert usable_cores(root, tmp_path / "self") == min(len(os.sched_getaffinity(0)), 2)

    write(root / "pod" / "cpu.max", "max 100000\n")
    assert cpu_quota(root, tmp_path / "self") is None
    assert usable_cores(root, tmp_path / "self") == len(os.sched_getaffinity(0))


def test_cgroup_v1_quota_under_the_cpu_controller(tmp_path):
    # A container that sees its host's cgroup path: the path is missing under the mount, the mount's own files count.
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "50000\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cpu_quota(root, tmp_path / "self") == 0.5
    assert usable_cores(root, tmp_path / "self") == 1  # half a CPU still runs one worker

    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    assert cpu_quota(root, tmp_path / "self") is None


def test_unreadable_cgroups_fall_back_to_affinity(tmp_path):
    assert cpu_quota(tmp_path, tmp_path / "missing") is None
    write(tmp_path / "self", "0::/\n")
    write(tmp_path / "cpu.max", "garbage\n")
    assert usable_cores(tmp_path, tmp_path / "self") == len(os.sched_getaffinity(0))


def test_a_malformed_cgroup_line_is_skipped(tmp_path):
    write(tmp_path / "self", "not a cgroup line\n0::/\n")
    write(tmp_path / "cpu.max", "100000 100000\n")
    assert cpu_quota(tmp_path, tmp_path / "self") == 1.0


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked only on Linux")
def test_workers_are_forked_unless_they_would_run_torch_on_several_threads():
    # A fresh interpreter each: this test process may have imported torch already.
    def start_method(preamble: str, threads: int) -> str:
        ask = f"from drivesim.processes import worker_context; print(worker_context({threads}).get_start_method())"
        return subprocess.run([sys.executable, "-c", preamble + ask], capture_output=True, text=True, check=True).stdout.strip()

    assert start_method("", 1) == "fork"
    assert start_method("import torch; ", 1) == "fork"  # one thread: a forked child's OpenMP runs inline
    assert start_method("import torch; ", 2) == "spawn"  # would wait forever on the parent's pool threads
    assert start_method("", 2) == "spawn"  # as would anything else built on OpenMP


def test_a_worker_starts_with_default_signal_handlers_and_one_opencv_thread():
    # A forked worker inherits the caller's Python handlers (a training script's save-and-stop, say), which
    # would then run in every worker at once; SIG_IGN (nohup) is the caller's choice and stays. SIGTERM, as
    # timeout sends it to the whole process group, stops a worker as Ctrl-C does.
    script = (
        "import signal, cv2\n"
        "from drivesim.processes import init_worker\n"
        "signal.signal(signal.SIGINT, lambda *a: None)\n"
        "signal.signal(signal.SIGTERM, lambda *a: None)\n"
        "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "cv2.setNumThreads(2)\n"
        "init_worker(1)\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL,\n"
        "      signal.getsignal(signal.SIGHUP) == signal.SIG_IGN, cv2.getNumThreads())\n"
        "try:\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped as on Ctrl-C')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["True True True 1", "stopped as on Ctrl-C"], result.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_end_with_a_killed_parent(tmp_path, repo_root):
    # They used to finish the shards queued to them and then wait forever; a resumed run would have written
    # into the same folder beside them.
    script = tmp_path / "long_run.py"
    script.write_text(
        "from drivesim.config import GenerateConfig\nfrom drivesim.generate import generate\n"
        "if __name__ == '__main__':\n"
        f"    generate(GenerateConfig(frames=20000, shard_frames=100, tracks={str(repo_root / 'tracks' / 'val')!r}), {str(tmp_path / 'rec')!r}, workers=2, progress=False)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def workers() -> list[int]:
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) != parent.pid:
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        if str(script).encode() in f.read():
                            found.append(int(entry.name))
                except OSError:
                    pass
        return found

    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "rec").glob("shard-*.h5*")):
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert len(workers()) == 2
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers() == []
    finally:
        parent.kill()
        for pid in workers():
            os.kill(pid, signal.SIGKILL)


def test_garbage_is_finalized_in_the_process_that_made_it_not_in_a_forked_worker(tmp_path):
    # A training's DataLoader iterator left in a reference cycle was freed in generate's forked workers, whose
    # finalizer then printed "AssertionError: can only test a child process" once per worker.
    script = tmp_path / "garbage.py"
    script.write_text(
        "import gc, os\n"
        "from tqdm import tqdm\n"
        "from drivesim.processes import run_in_workers\n"
        "PARENT = os.getpid()\n"
        "class Owned:\n"
        "    def __del__(self):\n"
        "        print('finalized in', 'parent' if os.getpid() == PARENT else 'worker', flush=True)\n"
        "def collect_garbage():\n"
        "    gc.collect()\n"
        "    return 0\n"
        "if __name__ == '__main__':\n"
        "    gc.disable()  # only the collections the code asks for\n"
        "    owned = Owned()\n"
        "    owned.cycle = owned\n"
        "    del owned\n"
        "    run_in_workers(collect_garbage, [()], workers=1, torch_threads=1, bar=tqdm(disable=True), on_result=lambda i, r: None)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "finalized in parent", result.stdout
