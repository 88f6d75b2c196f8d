"""Builds `nearzero._cuda` from the CUDA sources for the CPU (see include/cuda_emulation.h).

The kernel files are copied with their launches (`kernel<<<grid, block, shared, stream>>>(...)`)
and dynamic shared memory declarations rewritten for the emulation, then compiled with g++
together with the unchanged binding files. Used by the GPU tests through tests/gpu_support.py.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w ]+?)\s+(\w+)\[\];")


def split_top_level(text: str) -> list:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _matching(src: str, i: int, opening: str, closing: str, step: int) -> int:
    """Index of the bracket that closes the one at src[i], walking by `step` (1 forward from an
    opening bracket, -1 back from a closing one)."""
    depth = 0
    while True:
        if src[i] == opening:
            depth += 1
        elif src[i] == closing:
            depth -= 1
        if depth == 0:
            return i
        i += step


def _kernel_start(src: str, end: int) -> int:
    """Start of the kernel expression (name with optional template arguments) ending at `end`."""
    i = end
    while src[i - 1].isspace():
        i -= 1
    if src[i - 1] == ">":
        i = _matching(src, i - 1, ">", "<", -1)
    while i > 0 and (src[i - 1].isalnum() or src[i - 1] in "_:"):
        i -= 1
    return i


def rewrite_launches(src: str) -> str:
    out, pos = [], 0
    while True:
        open_at = src.find("<<<", pos)
        if open_at < 0:
            out.append(src[pos:])
            return "".join(out)
        start = _kernel_start(src, open_at)
        kernel = src[start:open_at].strip()
        close = src.find(">>>", open_at)
        config = split_top_level(src[open_at + 3:close])
        paren = src.index("(", close)
        i = _matching(src, paren, "(", ")", 1)
        args = src[paren + 1:i]
        shared = config[2] if len(config) > 2 else "0"
        out.append(src[pos:start])
        out.append(f"::emu::launch(dim3({config[0]}), dim3({config[1]}), size_t({shared}), "
                   f"[&]() {{ {kernel}({args}); }})")
        pos = i + 1


def rewrite(src: str) -> str:
    src = _EXTERN_SHARED.sub(
        lambda m: f"{m.group(1)} *{m.group(2)} = reinterpret_cast<{m.group(1)} *>("
                  f"::emu::dynamic_shared());", src)
    return rewrite_launches(src)


def build(out_dir: Path) -> Path:
    """Compile the emulated module into out_dir (reused while the sources are unchanged)."""
    import pybind11

    sources = sorted((ROOT / "csrc").rglob("*")) + sorted(HERE.rglob("*.h")) + [Path(__file__)]
    digest = hashlib.sha256()
    for path in sources:
        if path.is_file():
            digest.update(path.read_bytes())
    out_dir = Path(out_dir) / digest.hexdigest()[:16]
    target = out_dir / ("_cuda" + sysconfig.get_config_var("EXT_SUFFIX"))
    if target.exists():
        return target
    tree = out_dir / "csrc"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(ROOT / "csrc", tree)
    units = [tree / "bindings" / p.name for p in (ROOT / "csrc" / "bindings").glob("cuda_*.cpp")]
    for header in sorted((tree / "cuda").glob("*.cuh")):
        header.write_text(rewrite(header.read_text()))
    for cu in sorted((tree / "cuda").glob("*.cu")):
        converted = cu.with_suffix(".emulated.cpp")
        converted.write_text(rewrite(cu.read_text()))
        units.append(converted)
    # Hidden symbols: the real CUDA module may be loaded in the same process with the same names.
    flags = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-w", "-fvisibility=hidden",
             "-include", str(HERE / "include" / "cuda_emulation.h"),
             f"-I{HERE / 'include'}", f"-I{tree}", f"-I{pybind11.get_include()}",
             f"-I{sysconfig.get_paths()['include']}",
             '-DNEARZERO_CUDA_ARCHITECTURES="emulated"', '-DNEARZERO_CUDA_RUNTIME_VERSION="emulated"']

    def compile_unit(unit: Path) -> Path:
        obj = unit.with_suffix(".o")
        subprocess.run(["g++", *flags, "-c", str(unit), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        objects = list(pool.map(compile_unit, units))
    subprocess.run(["g++", "-shared", "-pthread", "-Wl,-Bsymbolic", "-o", str(target), *map(str, objects)],
                   check=True)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/nearzero-cuda-emulation")))
