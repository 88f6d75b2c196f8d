"""Runs a test case in its own Python process with a timeout: a crash (SIGSEGV, SIGABRT), a hang
or a failed assertion there is a failed test here, never a dead test run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import nearzero

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(nearzero.__file__)))


def run_case(code: str, *, timeout: float = 120, env: dict | None = None,
             prelude: str = "") -> str:
    """Runs `prelude` and then `code` (dedented) in a fresh interpreter; returns its stdout.
    The case must print 'ok' last."""
    environment = dict(os.environ)
    environment.update(env or {})
    environment["PYTHONPATH"] = os.pathsep.join(
        [PYTHON_DIR] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    # A script file, not -c: spawn and forkserver children import the main module's functions.
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(prelude + textwrap.dedent(code))
    try:
        done = subprocess.run([sys.executable, script.name], env=environment,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the case hung (no exit within {timeout} s); output so far:\n"
                             f"{e.stdout}\n{e.stderr}") from None
    finally:
        os.unlink(script.name)
    assert done.returncode == 0, (f"the case exited with {done.returncode}\nstdout:\n"
                                  f"{done.stdout}\nstderr:\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1] == "ok", f"the case did not finish:\n{done.stdout}\n{done.stderr}"
    return done.stdout
