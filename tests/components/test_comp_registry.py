"""Component registration and lookup (SPEC 8.3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from rattan.components import (
    BUILTIN_REGISTRY,
    Component,
    ComponentImportError,
    DataObject,
    Registry,
    Service,
    collecting_into,
    registry,
    resolve_component_class,
)
from rattan.errors import ComponentConflictError, ComponentNotExistException, NotFoundError, RattanError


class Svc(Service):
    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        return True


def _code() -> str:
    return "c_" + uuid.uuid4().hex[:12]


def test_class_statement_registers_into_given_registry() -> None:
    reg = Registry()
    the_code = _code()

    class C(Component, registry=reg):
        name = "c"
        code = the_code
        bound_service = Svc

    code = the_code
    assert reg.get_component_class(code) is C
    assert reg.get_component_class(code, "legacy") is C
    assert reg.has_component(code) and not registry.has_component(code)
    assert reg.get_service_class(code) is Svc
    assert reg.components() == [C]


def _component(
    reg: Registry, code: str, version: str = "legacy", cls_name: str = "", **extra: object
) -> type[Component]:
    attrs = {"name": "n", "code": code, "version": version, "bound_service": Svc, **extra}
    with collecting_into(reg):
        return type(cls_name or f"Comp_{code}_{version}", (Component,), attrs)


def test_versioned_lookup_and_missing() -> None:
    reg = Registry()
    code = _code()
    legacy = _component(reg, code)
    v1 = _component(reg, code, "1.0")
    assert reg.get_component_class(code) is legacy
    assert reg.get_component_class(code, "1.0") is v1
    assert reg.versions(code) == ["1.0", "legacy"]
    with pytest.raises(ComponentNotExistException, match=rf"{code}.*'2.0'"):
        reg.get_component_class(code, "2.0")
    with pytest.raises(ComponentNotExistException, match=r"nope.*legacy"):
        reg.get_service_class("nope")
    assert issubclass(ComponentNotExistException, NotFoundError)


def test_conflict_replace_and_redefinition() -> None:
    reg = Registry()
    code = same_code = _code()

    def define() -> type[Component]:
        class Same(Component, registry=reg):
            name = "n"
            code = same_code
            bound_service = Svc

        return Same

    first = define()
    second = define()  # same module + qualname: silent replacement
    assert first is not second
    assert reg.get_component_class(code) is second
    code = _code()

    _component(reg, code)
    with pytest.raises(ComponentConflictError, match=code):
        _component(reg, code, cls_name="Other")  # a different class under the same key
    replacing = _component(reg, code, cls_name="Replacing", __replace__=True)
    assert reg.get_component_class(code) is replacing

    other = _component(Registry(), code, cls_name="Third")
    with pytest.raises(ComponentConflictError):
        reg.register(other)
    reg.register(other, replace=True)
    assert reg.get_component_class(code) is other


def test_abstract_intermediate_not_registered() -> None:
    reg = Registry()
    the_code = _code()
    with collecting_into(reg):

        class Base(Component):
            name = "base"
            bound_service = Svc

        class Concrete(Base):
            code = the_code

    assert reg.components() == [Concrete]
    assert Concrete.name == "base"


def test_validation_errors() -> None:
    reg = Registry()
    with pytest.raises(ValueError, match="bound_service"):
        _component(reg, _code(), bound_service=None)
    with pytest.raises(ValueError, match="bound_service"):
        _component(reg, _code(), bound_service=int)
    with pytest.raises(ValueError, match="name"):
        _component(reg, _code(), name="")
    assert reg.components() == []


def test_register_false_and_register_type_errors() -> None:
    reg = Registry()
    the_code = _code()
    with collecting_into(reg):

        class NotReg(Component, register=False):
            name = "n"
            code = the_code
            bound_service = Svc

    assert reg.components() == []
    reg.register(NotReg)
    assert reg.get_component_class(the_code) is NotReg
    with pytest.raises(TypeError):
        reg.register(int)


def test_component_metadata_and_formats() -> None:
    reg = Registry()
    comp = _component(reg, _code(), embedded_form=True)
    assert comp.group_name == "Test_Comp_Registry"
    assert comp.group_icon == ""
    assert comp.form_is_embedded() is True
    assert comp.is_default_version is False and comp.desc == "" and comp.form is None
    assert [i["key"] for i in comp.outputs_format()] == ["_result", "_loop", "_inner_loop"]
    assert comp.inputs_format() == []
    assert comp.get_output_schema("_result") == {}
    with pytest.raises(NotFoundError):
        comp.get_input_schema("nope")


def test_copy_merge_unregister() -> None:
    reg = Registry()
    code = _code()
    comp = _component(reg, code)
    clone = reg.copy()
    reg.unregister(code)
    assert clone.get_component_class(code) is comp and not reg.has_component(code)
    reg.merge(clone)
    assert reg.get_component_class(code) is comp
    with pytest.raises(ComponentConflictError):
        reg.merge(_reg_with(code))
    reg.clear()
    assert reg.components() == []


def _reg_with(code: str) -> Registry:
    other = Registry()
    _component(other, code, cls_name="Clash")
    return other


def test_thread_safe_registration() -> None:
    reg = Registry()
    codes = [_code() for _ in range(50)]
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for code in chunk:
                _component(reg, code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(codes[i::5],)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(reg.components()) == 50


def test_builtin_components_fallback() -> None:
    reg = Registry()
    assert BUILTIN_REGISTRY.has_component("example_component")
    assert not registry.has_component("example_component")
    pipe = resolve_component_class(reg, "pipe_example_component")
    data = DataObject({"a": 1, "_loop": 1})
    assert pipe.bound_service().execute(data, DataObject({})) is True
    assert data.outputs == {"a": 1, "_loop": 1}
    with pytest.raises(ComponentNotExistException):
        resolve_component_class(reg, "example_component", include_builtin=False)
    with pytest.raises(ComponentNotExistException):
        resolve_component_class(reg, "nothing")


def _write(root: Path, rel: str, body: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))


COMPONENT_MODULE = """
    from rattan.components import Component, Service

    class S(Service):
        def execute(self, data, parent_data):
            return True

    class C(Component):
        name = "n"
        code = "{code}"
        bound_service = S
"""


def test_import_modules_recursive_ignore_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = "pkg_" + uuid.uuid4().hex[:8]
    _write(tmp_path, f"{pkg}/__init__.py", "")
    _write(tmp_path, f"{pkg}/a.py", COMPONENT_MODULE.format(code=f"{pkg}_a"))
    _write(tmp_path, f"{pkg}/sub/__init__.py", "__group_name__ = 'G'\n")
    _write(
        tmp_path,
        f"{pkg}/sub/b.py",
        "from .. import a\n" + textwrap.dedent(COMPONENT_MODULE).format(code=f"{pkg}_b"),
    )
    _write(
        tmp_path,
        f"{pkg}/ignored.py",
        "__register_ignore__ = True\n" + textwrap.dedent(COMPONENT_MODULE).format(code=f"{pkg}_ignored"),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    reg.import_modules([pkg])
    assert {c.code for c in reg.components()} == {f"{pkg}_a", f"{pkg}_b"}
    assert not registry.has_component(f"{pkg}_a")
    # a second registry importing the same (already imported) modules still finds the classes
    reg2 = Registry()
    reg2.import_modules([f"{pkg}.a"])
    assert reg2.get_component_class(f"{pkg}_a") is reg.get_component_class(f"{pkg}_a")

    _write(tmp_path, f"{pkg}_bad.py", "raise RuntimeError('boom')\n")
    with pytest.raises(ComponentImportError, match="boom") as info:
        Registry().import_modules([f"{pkg}_bad"])
    assert isinstance(info.value, RattanError) and isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ComponentImportError, match="no_such_module_xyz"):
        Registry().import_modules(["no_such_module_xyz"])


def test_load_entry_points_empty_group() -> None:
    reg = Registry()
    reg.load_entry_points("rattan.components.test-none")
    assert reg.components() == []


def test_importing_rattan_registers_nothing_globally() -> None:
    code = (
        "import rattan, rattan.components as c, rattan.testing, rattan.io, rattan.interval\n"
        "assert c.registry.components() == [] and c.registry.sink_types() == frozenset()\n"
        "assert c.registry.lazy_variables() == []\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
