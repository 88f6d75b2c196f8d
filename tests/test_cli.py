"""The `nearzero` command line: --version, help texts with defaults, bad arguments."""

import subprocess
import sys

import pytest

import nearzero
from nearzero.cli import build_parser, main
from nearzero.demo import DEFAULT_STEPS


def _exit_output(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_version_prints_the_package_version(capsys):
    code, out, _ = _exit_output(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"nearzero {nearzero.__version__}"
    assert nearzero.__version__ == nearzero.build_info()["version"]


def test_version_from_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-m", "nearzero.cli", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nearzero {nearzero.__version__}"


def test_top_level_help_lists_commands_and_version(capsys):
    code, out, _ = _exit_output(["--help"], capsys)
    assert code == 0
    for text in ("--version", "demo", "bench"):
        assert text in out


def test_demo_help_shows_every_default(capsys):
    code, out, _ = _exit_output(["demo", "--help"], capsys)
    assert code == 0
    help_text = " ".join(out.split())  # argparse wraps lines to the terminal width
    assert f"training steps (default: {DEFAULT_STEPS})" in help_text
    assert "(default: nearzero-report)" in help_text
    assert "(default: cpu)" in help_text
    assert "(default: None)" not in help_text
    assert help_text.count("(default: cpu)") == 1  # stated once, not appended twice


def test_bench_help_says_what_each_default_means(capsys):
    code, out, _ = _exit_output(["bench", "--help"], capsys)
    assert code == 0
    help_text = " ".join(out.split())
    assert "all available (default)" in help_text
    assert "(default: None)" not in help_text and "(default: False)" not in help_text


def test_parsed_defaults_match_the_help():
    args = build_parser().parse_args(["demo"])
    assert (args.device, args.steps, args.out) == ("cpu", DEFAULT_STEPS, "nearzero-report")
    args = build_parser().parse_args(["bench"])
    assert (args.device, args.json, args.quick) == (None, None, False)


def test_a_missing_or_unknown_command_is_an_error(capsys):
    code, _, err = _exit_output([], capsys)
    assert code == 2 and "required" in err
    code, _, err = _exit_output(["train"], capsys)
    assert code == 2 and "invalid choice" in err
    code, _, err = _exit_output(["demo", "--steps", "many"], capsys)
    assert code == 2 and "invalid int value" in err
