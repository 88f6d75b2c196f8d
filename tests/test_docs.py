"""The code in README.md and docs/*.md runs and prints what the docs show.

Every ```python block of a file is executed, in order, in one namespace, in a temporary working
directory, with NumPy's, Python's and torch's seeds fixed before the file's first block. An
```output block directly after a ```python block (only blank lines between) must equal what
that block printed, line by line with trailing whitespace stripped. Other fences (```bash,
```text, ...) are not run.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import random
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,})\s*(?P<lang>[^\s`]*)[^`]*$")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    text: str
    follows_previous: bool  # only blank lines between the previous block's closing fence and this


def parse_blocks(text: str, path: str) -> list:
    """The fenced blocks of a Markdown text; an unclosed fence is an error naming its line."""
    lines = text.splitlines()
    blocks, i, last_close = [], 0, None
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, ticks = len(opening["indent"]), opening["ticks"]
        start, body = i, []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(ticks) and set(stripped) == {"`"}:
                break
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        else:
            raise AssertionError(f"{path}:{start + 1}: code fence is never closed")
        between = lines[last_close + 1:start] if last_close is not None else ["x"]
        blocks.append(Block(opening["lang"].lower(), start + 1, "\n".join(body) + "\n",
                            all(not line.strip() for line in between)))
        last_close = i
        i += 1
    return blocks


def _normalise(text: str) -> list:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _set_seeds() -> None:
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)


def _run_block(block: Block, path: str, namespace: dict) -> str:
    # Leading newlines make tracebacks point at the Markdown file's own line numbers.
    code = compile("\n" * block.line + block.text, path, "exec")
    printed, failure = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)
    except Exception as error:  # noqa: BLE001 - reported with the block's place
        trace = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
        failure = (f"{path}: the python block at line {block.line} raised "
                   f"{type(error).__name__}: {error}\n{''.join(trace)}")
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return printed.getvalue()


def _check_output(block: Block, expected: Block, printed: str, path: str) -> None:
    want, got = _normalise(expected.text), _normalise(printed)
    if want != got:
        diff = "\n".join(difflib.unified_diff(want, got, "shown in the docs", "printed",
                                              lineterm=""))
        pytest.fail(f"{path}: the output block at line {expected.line} differs from what the "
                    f"python block at line {block.line} printed:\n{diff}", pytrace=False)


# Optional packages a file's code needs, recognised by how the code uses them.
_OPTIONAL = {"torch": re.compile(r"^\s*(import|from) torch\b", re.MULTILINE),
             "matplotlib": re.compile(r"\.plot(_history)?\(")}


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_runs_and_prints_what_is_shown(doc, tmp_path, monkeypatch):
    path = str(doc.relative_to(ROOT))
    blocks = parse_blocks(doc.read_text(encoding="utf-8"), path)
    code = "".join(block.text for block in blocks if block.lang == "python")
    for package, used in _OPTIONAL.items():
        if used.search(code):
            pytest.importorskip(package, reason=f"{path} needs {package}")
    monkeypatch.chdir(tmp_path)
    _set_seeds()
    namespace = {"__name__": "__main__"}
    previous, printed = None, None
    for block in blocks:
        if block.lang == "output":
            if previous is None or previous.lang != "python" or not block.follows_previous:
                pytest.fail(f"{path}: the output block at line {block.line} does not directly "
                            "follow a python block", pytrace=False)
            _check_output(previous, block, printed, path)
        elif block.lang == "python":
            printed = _run_block(block, path, namespace)
        previous = block


def test_parser_reads_fences_languages_and_adjacency():
    text = ("intro\n```python\nprint(1)\n```\n\n```output\n1\n```\n"
            "- item\n  ```bash\n  echo hi\n  ```\n```\nplain\n```\n")
    blocks = parse_blocks(text, "x.md")
    assert [(b.lang, b.line, b.text) for b in blocks] == [
        ("python", 2, "print(1)\n"), ("output", 6, "1\n"), ("bash", 10, "echo hi\n"),
        ("", 13, "plain\n")]
    assert [b.follows_previous for b in blocks] == [False, True, False, True]
    with pytest.raises(AssertionError, match="x.md:1: code fence is never closed"):
        parse_blocks("```python\nprint(1)\n", "x.md")


def test_a_wrong_output_block_fails_naming_file_and_line(tmp_path, monkeypatch):
    blocks = parse_blocks("```python\nprint('a  ')\nprint('b')\n```\n```output\na\nc\n```\n",
                          "wrong.md")
    monkeypatch.chdir(tmp_path)
    printed = _run_block(blocks[0], "wrong.md", {})
    assert _normalise(printed) == ["a", "b"]  # trailing whitespace is not compared
    with pytest.raises(pytest.fail.Exception,
                       match=r"wrong.md: the output block at line 5 differs .* line 1 printed"):
        _check_output(blocks[0], blocks[1], printed, "wrong.md")


def test_a_failing_block_names_file_and_line(tmp_path, monkeypatch):
    blocks = parse_blocks("text\n\n```python\nx = 1\nundefined_name\n```\n", "broken.md")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.fail.Exception,
                       match=r"broken.md: the python block at line 3 raised NameError") as info:
        _run_block(blocks[0], "broken.md", {})
    assert 'File "broken.md", line 5' in str(info.value)


def test_ci_runs_the_readme_test_command():
    """.ci/run installs the extras and runs the test command that the README gives."""
    blocks = parse_blocks((ROOT / "README.md").read_text(encoding="utf-8"), "README.md")
    # The set-up command that installs and runs the tests (benchmark commands install nothing).
    commands = [b.text.strip() for b in blocks if b.lang == "bash" and "pytest" in b.text
                and b.text.strip().startswith("pip install")]
    assert len(commands) == 1, "the README gives one test command"
    install, run = re.fullmatch(r"pip install torch==2\.13\.0 && pip install (\S+) && (.+)",
                                commands[0]).groups()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0" in ci
    assert re.search(rf"^python -m pip install {re.escape(install)}$", ci, re.MULTILINE)
    assert re.search(rf"^(python -m )?{re.escape(run)}$", ci, re.MULTILINE)
