"""The type stubs `_core.pyi` and `_cuda.pyi` match the compiled modules: the same names, the same
parameters (names, or positional-only where the bindings name none) and compatible types.

`_cuda` is checked against the module built from the CUDA binding sources for the CPU
(tests/cuda_emulation), and against the real module too when this build has one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from cuda_emulation.build_emulated_module import split_top_level

from nearzero import _backend

STUBS = Path(__file__).resolve().parents[1] / "python" / "nearzero"


def _stub_function(path: Path, node: ast.FunctionDef, aliases: dict, method: bool = False):
    """(parameter names, positional-only, parameter annotations, return annotation); a
    method's `self` left out."""
    args = node.args
    assert not (args.vararg or args.kwarg or args.kwonlyargs or args.defaults), (
        f"{path.name}: {node.name} must list the binding's parameters one by one")
    params = (args.posonlyargs + args.args)[1 if method else 0:]
    return ([a.arg for a in params], bool(args.posonlyargs) and not args.args,
            [aliases.get(ast.unparse(a.annotation), ast.unparse(a.annotation)) for a in params],
            ast.unparse(node.returns))


def parse_stub(path: Path):
    """(functions, attributes, classes) of a stub: name -> _stub_function(...), name ->
    annotation, and class name -> its __init__ as _stub_function(...); type aliases expanded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {node.targets[0].id: ast.unparse(node.value) for node in tree.body
               if isinstance(node, ast.Assign)}
    functions, attributes, classes = {}, {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _stub_function(path, node, aliases)
        elif isinstance(node, ast.AnnAssign):
            attributes[node.target.id] = ast.unparse(node.annotation)
        elif isinstance(node, ast.ClassDef):
            members = [m for m in node.body if isinstance(m, ast.FunctionDef)]
            assert [m.name for m in members] == ["__init__"], (
                f"{path.name}: class {node.name} must declare its constructor only")
            classes[node.name] = _stub_function(path, members[0], aliases, method=True)
    return functions, attributes, classes


def binding_signature(function, method: bool = False):
    """(parameter names, parameter types, return type) from pybind11's docstring; a method's
    `self` left out."""
    first = (function.__doc__ or "").splitlines()[0]
    match = re.fullmatch(rf"{function.__name__}\((.*)\) -> (.+)", first)
    assert match, f"unexpected pybind11 signature line: {first!r}"
    params = [p.split(":", 1) for p in split_top_level(match[1])] if match[1] else []
    params = params[1 if method else 0:]
    return [n.strip() for n, _ in params], [t.strip() for _, t in params], match[2].strip()


def binding_kind(annotation: str, classes=()) -> str:
    """A pybind11 type (2.x or 3.x spelling) as the kind the stub must state; a class the module
    binds is its own kind."""
    if annotation.rsplit(".", 1)[-1] in classes:
        return annotation.rsplit(".", 1)[-1]
    if annotation.startswith("Optional[") or annotation.endswith("| None"):
        return "object"
    if annotation.startswith(("tuple", "Tuple")):
        return "tuple"
    if re.match(r"(collections\.abc\.Sequence|typing\.Sequence|List|list)\[", annotation) or \
            annotation in ("list", "collections.abc.Sequence", "typing.Sequence"):
        return "sequence"
    if "numpy" in annotation:
        return "array"
    if "SupportsFloat" in annotation or annotation == "float":
        return "float"
    if "SupportsInt" in annotation or annotation == "int":
        return "int"
    if annotation in ("bool", "object", "None", "str", "dict"):
        return annotation
    raise AssertionError(f"no stub kind for the pybind11 type {annotation!r}")


def stub_kind(annotation: str, classes=()) -> str:
    if annotation in classes:
        return annotation
    if annotation.startswith("Optional["):
        return "object"  # bound as py::object: None or a value
    if annotation.startswith("tuple["):
        return "tuple"
    if annotation.startswith("dict["):
        return "dict"
    if annotation.startswith(("Sequence[", "list[")):
        return "sequence"
    kinds = {"np.ndarray": "array"}
    if annotation in kinds:
        return kinds[annotation]
    if annotation in ("int", "float", "bool", "None", "str", "object"):
        return annotation
    raise AssertionError(f"the stub type {annotation!r} has no binding counterpart")


def check_stub_matches(module, stub: Path) -> None:
    functions, attributes, classes = parse_stub(stub)
    declared = set(functions) | set(attributes) | set(classes)
    public = {name for name in dir(module) if not name.startswith("_")}
    assert public == declared, (
        f"{stub.name}: missing {sorted(public - declared)}, "
        f"not in the module {sorted(declared - public)}")
    for name, annotation in attributes.items():
        assert type(getattr(module, name)).__name__ == annotation, f"{stub.name}: {name}"
    callables = [(name, getattr(module, name), False, signature)
                 for name, signature in functions.items()]
    for name, signature in classes.items():
        assert isinstance(getattr(module, name), type), f"{stub.name}: {name} is not a class"
        callables.append((name, getattr(module, name).__init__, True, signature))
    for name, function, method, (params, positional_only, types, returns) in callables:
        bound_names, bound_types, bound_return = binding_signature(function, method)
        where = f"{stub.name}: {name}"
        assert len(params) == len(bound_names), f"{where}: {params} vs {bound_names}"
        if all(re.fullmatch(r"arg\d+", n) for n in bound_names) and bound_names:
            assert positional_only, f"{where}: the binding names no arguments, so mark them '/'"
        else:
            assert params == bound_names and not positional_only, f"{where}: {bound_names}"
        assert ([stub_kind(t, classes) for t in types]
                == [binding_kind(t, classes) for t in bound_types]), where
        assert (stub_kind(returns, classes)
                == binding_kind(bound_return, classes)), f"{where}: returns {returns}"


def test_core_stub_matches_the_module():
    check_stub_matches(_backend.core, STUBS / "_core.pyi")


def test_cuda_stub_matches_the_module_built_from_the_binding_sources():
    from cuda_emulation.harness import load_module
    from gpu_support import emulated_module_path

    check_stub_matches(load_module(emulated_module_path()), STUBS / "_cuda.pyi")


def test_cuda_stub_matches_this_build():
    if _backend._cuda is None:
        pytest.skip("nearzero was built without its CUDA module")
    check_stub_matches(_backend._cuda, STUBS / "_cuda.pyi")


def test_stubs_have_no_escape_hatches():
    for stub in ("_core.pyi", "_cuda.pyi"):
        text = (STUBS / stub).read_text(encoding="utf-8")
        assert not re.search(r"\bAny\b", text), stub
        assert "__getattr__" not in text, stub


def test_the_checker_catches_a_wrong_stub(tmp_path):
    stub = tmp_path / "_core.pyi"
    text = (STUBS / "_core.pyi").read_text(encoding="utf-8")
    stub.write_text(text.replace("max_threads() -> int", "max_threads() -> float"))
    with pytest.raises(AssertionError, match="max_threads"):
        check_stub_matches(_backend.core, stub)
    stub.write_text(text.replace("completeness: float, /", "completeness: float"))
    with pytest.raises(AssertionError, match="mark them '/'"):
        check_stub_matches(_backend.core, stub)
    stub.write_text(text + "def not_bound() -> None: ...\n")
    with pytest.raises(AssertionError, match="not_bound"):
        check_stub_matches(_backend.core, stub)
    stub.write_text(text.replace("counts_int64: bool, cell_stride: int",
                                 "counts_int64: int, cell_stride: int"))
    with pytest.raises(AssertionError, match="ResultSpec"):
        check_stub_matches(_backend.core, stub)
    stub.write_text(text.replace("result: ResultSpec, /", "result: int, /", 1))
    with pytest.raises(AssertionError, match="tensor_classify_f32"):
        check_stub_matches(_backend.core, stub)
