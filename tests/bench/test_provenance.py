"""Provenance (bench/provenance.py): what a run records about the machine, read from this one."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import namedtuple

from odbench.bench import provenance
from odbench.devices.host import INTERESTING_ISA, detect_host

Temp = namedtuple("Temp", "label current high critical")
Freq = namedtuple("Freq", "current min max")


def test_machine_record_matches_the_detected_host_and_is_json():
    m = provenance.machine()
    host = detect_host()
    assert (m["arch"], m["physical_cores"], m["memory_mb"], tuple(m["isa"])) == (host.arch, host.cores, host.memory_mb, host.isa)
    assert set(m["isa"]) <= set(INTERESTING_ISA)
    assert m["logical_cpus"] >= m["physical_cores"] >= 1
    assert m["python"].startswith("3.") and m["kernel"] and m["hostname"] and m["cpu_model"]
    assert json.loads(json.dumps(m)) == m


def test_snapshot_reads_load_clock_and_temperature(monkeypatch):
    monkeypatch.setattr(provenance.os, "getloadavg", lambda: (1.234, 0.5, 0.25))
    monkeypatch.setattr(provenance.psutil, "cpu_freq", lambda: Freq(2400.04, 0, 0))
    monkeypatch.setattr(provenance.psutil, "sensors_temperatures",
                        lambda: {"k10temp": [Temp("Tctl", 61.26, None, None)], "nvme": [Temp("", 40.0, None, None)]}, raising=False)
    assert provenance.snapshot() == {"load1": 1.23, "load5": 0.5, "cpu_mhz": 2400.0, "temp_c": 61.3}


def test_no_sensors_is_none_not_an_error(monkeypatch):
    def no_sensors():
        raise AttributeError("sensors_temperatures is not available on this platform")

    monkeypatch.setattr(provenance.psutil, "sensors_temperatures", no_sensors, raising=False)
    assert provenance._temperature_c() is None
    monkeypatch.setattr(provenance.psutil, "sensors_temperatures", lambda: {}, raising=False)
    assert provenance._temperature_c() is None


def test_clock_falls_back_to_cpuinfo_then_to_none(monkeypatch, tmp_path):
    def broken():
        raise RuntimeError("no cpufreq here")

    monkeypatch.setattr(provenance.psutil, "cpu_freq", broken)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu MHz\t\t: 1000.0\nprocessor\t: 1\ncpu MHz\t\t: 3000.5\n")
    real_open = open
    monkeypatch.setattr(provenance, "open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k),
                        raising=False)
    assert provenance._cpu_mhz() == 2000.2
    cpuinfo.write_text("processor\t: 0\n")  # e.g. many ARM boards list no clock
    assert provenance._cpu_mhz() is None
    monkeypatch.setattr(provenance, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")), raising=False)
    assert provenance._cpu_mhz() is None


SysTimes = namedtuple("SysTimes", "user nice system idle iowait irq softirq steal guest")
OwnTimes = namedtuple("OwnTimes", "user system")


def test_cpu_share_is_other_busy_time_and_steal_over_all_cpu_time(monkeypatch):
    sys_times = iter([SysTimes(10, 0, 5, 100, 0, 0, 0, 0, 0), SysTimes(13, 1, 6, 104, 0, 0, 0, 1, 3)])  # 10 s spent
    own_times = iter([OwnTimes(2.0, 0.5), OwnTimes(3.5, 0.5)])  # this process: 1.5 s of the 5 s busy
    monkeypatch.setattr(provenance.psutil, "cpu_times", lambda: next(sys_times))
    monkeypatch.setattr(provenance.psutil, "Process", lambda: type("P", (), {"cpu_times": lambda self: next(own_times)})())
    share = provenance.cpu_share(provenance.cpu_window())
    assert (share["others"], share["steal"]) == (0.35, 0.1)  # (5 - 1.5) / 10 busy elsewhere; 1 / 10 stolen


def test_a_busy_neighbour_shows_in_the_cpu_share():
    window = provenance.cpu_window()
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.0: pass"])
    busy.wait()
    time.sleep(0.05)
    share = provenance.cpu_share(window)
    # one process spinning for 1 s on a machine of N CPUs: about 1/N of the window's CPU time, never this process's
    assert 0.5 / provenance.psutil.cpu_count() <= share["others"] <= 1.0 and 0 <= share["steal"] <= 1
