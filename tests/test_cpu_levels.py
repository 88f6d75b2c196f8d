"""CPU levels (SPEC §12): the build holds the kernels for several instruction-set levels, picks
the best one at import, and NEARZERO_CPU_ISA forces another; every level this machine runs
gives the same counts and sums within SPEC §4 (scripts/cpu_smoke.py, one process per level).
.ci/run also runs the op tests once per level."""

import os
import pathlib
import subprocess
import sys

import pytest

import nearzero as nz

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scripts" / "cpu_smoke.py"


def _run(args, level, **kwargs):
    env = dict(os.environ, NEARZERO_CPU_ISA=level)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_build_info_names_levels():
    cpu = nz.build_info()["cpu"]
    assert cpu["built"] and set(cpu["supported"]) <= set(cpu["built"])
    want = os.environ.get("NEARZERO_CPU_ISA") or cpu["supported"][-1]
    assert cpu["selected"] == want
    if cpu["built"][0] == "v2":
        assert cpu["built"] == ["v2", "v3", "v4"]


def test_unknown_level_fails_the_import_with_the_reason():
    r = _run(["-c", "import nearzero"], "v9")
    assert r.returncode != 0
    assert "NEARZERO_CPU_ISA=v9 is not a CPU level of this build" in r.stderr
    assert ", ".join(nz.build_info()["cpu"]["built"]) in r.stderr


@pytest.mark.parametrize("level", ["", "v2", "v3", "v4"])
def test_forced_level_is_selected(level):
    supported = nz.build_info()["cpu"]["supported"]
    if level and level not in supported:
        pytest.skip(f"this CPU does not run {level}")
    r = _run(["-c", "import nearzero; print(nearzero.build_info()['cpu']['selected'])"], level)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (level or supported[-1])


def test_every_level_gives_the_same_results(tmp_path):
    supported = nz.build_info()["cpu"]["supported"]
    for level in supported:
        r = _run([str(SMOKE), "run", str(tmp_path / f"{level}.npz")], level)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"cpu level {level}:" in r.stdout
    for level in supported[:-1]:
        r = _run([str(SMOKE), "compare", str(tmp_path / f"{level}.npz"),
                  str(tmp_path / f"{supported[-1]}.npz")], "")
        assert r.returncode == 0, r.stdout + r.stderr
