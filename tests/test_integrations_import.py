"""Importing nearzero (and its report layer, and the integrations package) imports none of the
training frameworks: they are optional extras."""

import subprocess
import sys

import pytest

FRAMEWORKS = ("transformers", "accelerate", "lightning", "pytorch_lightning", "tensorboard",
              "tensorboardX", "pandas")


def test_import_never_imports_the_frameworks():
    pytest.importorskip("torch")
    code = (
        "import sys, nearzero, nearzero.report, nearzero.integrations\n"
        "recorder = nearzero.GradientRecorder\n"
        f"print(sorted(name for name in {FRAMEWORKS!r} if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
