"""cl_course's layers, read from every module's imports (function-level ones too): the library (every module
outside teaching/ and lessons/) below the teaching layer (cl_course.teaching), and that below the lessons
(cl_course.lessons) and the grader. A layer imports only those below it, nothing in cl_course imports the
grader, and no modules import each other in a circle."""
import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cl_course"


def module_name(path):
    parts = ("cl_course",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def bound_names(path):
    """The names a module's top level binds: what `from it import name` may take besides its submodules."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).partition(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def imported(name, path):
    """The modules that the module `name` (its file at `path`) imports, anywhere in it: for `from X import y`,
    X.y where that is a module or where X does not bind y (a module moved away), else X."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            source = ".".join(p for p in (base, node.module) if p)
            if source not in MODULES:
                found.add(source)
                continue
            found |= {source if a.name in bound_names(MODULES[source]) and f"{source}.{a.name}" not in MODULES
                      else f"{source}.{a.name}" for a in node.names}
    return found


IMPORTS = {name: imported(name, path) for name, path in MODULES.items()}


def layer(name):
    """"teaching", "lessons" or "library"."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("teaching", "lessons") else "library"


def inside(imported_name, package):
    return imported_name == package or imported_name.startswith(package + ".")


FORBIDDEN = {"library": ("cl_course.teaching", "cl_course.lessons"), "teaching": ("cl_course.lessons",),
             "lessons": ()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_its_own_layer_and_those_below_and_never_the_grader(name):
    for other in IMPORTS[name]:
        for package in FORBIDDEN[layer(name)]:
            assert not inside(other, package), f"{name} ({layer(name)}) imports {other}: move what it needs down"
        assert not inside(other, "grader"), f"{name} imports {other}: cl_course never imports the grader"


USERS = sorted(p for folder in ("grader", "tests", "benchmarks") for p in (PACKAGE.parent / folder).rglob("*.py"))


@pytest.mark.parametrize("path", [*MODULES.values(), *USERS], ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_every_import_of_cl_course_names_one_of_its_modules(path):
    """An import of a module moved away (`from .blanks import BLANKS` in the library, say) fails here, by name,
    and not only when that line runs."""
    name = module_name(path) if path.is_relative_to(PACKAGE) else path.stem
    stale = sorted(n for n in imported(name, path) if inside(n, "cl_course") and n not in MODULES)
    assert not stale, f"{path.name} imports {', '.join(stale)}: no such module in cl_course (moved? see its layers)"


def test_the_layers_are_where_the_issue_puts_them():
    """The teaching modules and the lessons' helpers are in their subpackages, and the library is most of it."""
    assert {n for n in MODULES if layer(n) == "teaching"} >= {
        f"cl_course.teaching.{m}" for m in ("blanks", "mistakes", "exercises", "fixtures", "selfcheck",
                                            "replay_mistakes")}
    assert {n for n in MODULES if layer(n) == "lessons"} == {
        "cl_course.lessons", "cl_course.lessons.notebook", "cl_course.lessons.lesson2", "cl_course.lessons.lesson3"}
    assert {"cl_course.strategies", "cl_course.train", "cl_course.registry"} <= {
        n for n in MODULES if layer(n) == "library"}


def cycle():
    """A circle of imports among cl_course's modules ([a, b, ..., a]), or None."""
    edges = {name: sorted(n for n in IMPORTS[name] if n in MODULES and n != name) for name in MODULES}
    state = {}  # name -> "open" while on the current path, "done" once every path from it is explored

    def visit(name, path):
        state[name] = "open"
        for other in edges[name]:
            if state.get(other) == "open":
                return path[path.index(other):] + [other]
            if other not in state:
                found = visit(other, path + [other])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in MODULES:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def test_no_modules_import_each_other_in_a_circle():
    found = cycle()
    assert found is None, "import circle: " + " -> ".join(found)
