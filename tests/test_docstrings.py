"""Every public function and class documents its parameters, return value and an example (issue 8).

The examples themselves run as doctests (``--doctest-modules``), so this checks they exist.
"""
import importlib
import inspect

import pytest

MODULES = ["cdr.data", "cdr.schema", "cdr.reference", "cdr.synthetic", "cdr.rates", "cdr.aggregate",
           "cdr.footprints", "cdr.trends", "cdr.factors", "cdr.models", "cdr.disclosure", "cdr.report"]


def _public():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) or (inspect.isclass(obj) and not issubclass(obj, BaseException)):
                yield f"{name}.{attr}", obj


def _takes_parameters(obj) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return any(p not in ("self", "cls") for p in params)


@pytest.mark.parametrize(("name", "obj"), list(_public()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_api_is_documented(name, obj):
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        init_doc = inspect.getdoc(obj.__init__) if obj.__init__ is not object.__init__ else ""
        doc = doc + "\n" + (init_doc or "")
    missing = []
    if _takes_parameters(obj) and "Parameters" not in doc and "Attributes" not in doc:
        missing.append("Parameters")
    if inspect.isfunction(obj) and "Returns" not in doc:
        missing.append("Returns")
    if "Examples" not in doc:
        missing.append("Examples")
    assert not missing, f"{name}: docstring lacks {', '.join(missing)} (numpydoc sections)"
