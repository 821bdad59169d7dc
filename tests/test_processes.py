import os
import subprocess
import sys

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
def test_workers_are_forked_unless_they_would_run_a_loaded_torch_on_several_threads():
    # A fresh interpreter each: this test process may have imported torch already.
    def start_method(preamble: str, threads: int) -> str:
        ask = f"from drivesim.processes import worker_context; print(worker_context({threads}).get_start_method())"
        return subprocess.run([sys.executable, "-c", preamble + ask], capture_output=True, text=True, check=True).stdout.strip()

    assert start_method("", 4) == "fork"
    assert start_method("import torch; ", 1) == "fork"  # one thread: a forked child's OpenMP runs inline
    assert start_method("import torch; ", 2) == "spawn"  # would wait forever on the parent's pool threads
