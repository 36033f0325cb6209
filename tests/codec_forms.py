"""Load the different forms of ``helpers.codec`` side by side for the codec tests.

* ``compiled``     - the Cython extension ``helpers/codec.*.so`` built by
  ``python3 setup.py build_ext --inplace`` (imported normally as ``helpers.codec``;
  Python prefers the extension over the .py when both exist).
* ``interpreted``  - ``helpers/codec.py`` executed by CPython under another module
  name, with Cython's pure-Python shadow module as ``cython``.
* ``nocython``     - the same file with ``import cython`` made to fail, i.e. the
  module's built-in shim (what a deployment without Cython runs).
* ``imported``     - ``helpers.codec`` imported by its own name when no extension is built,
  i.e. the interpreted .py as the server would run it. This is the form ``scripts/mutation.sh``
  mutates (docs/testing.md): only code reached under its real module name is traced to mutants.

:func:`available` is what the tests are parametrized over: every form that exists in this
checkout and is not another one again. With the extension built (``scripts/setup.sh`` builds
it), that is ``compiled``, ``interpreted`` and ``nocython`` (``imported`` would be the
compiled extension once more); without it, ``interpreted``, ``nocython`` and ``imported``.
So one run tests the compiled and the pure-Python codec side by side, and nothing is skipped
for a form that is not there.
"""

from __future__ import annotations

import glob
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEC_PY = os.path.join(REPO_ROOT, "helpers", "codec.py")

FORMS = ("compiled", "interpreted", "nocython", "imported")

_cache: dict[str, types.ModuleType | None] = {}


def compiled_extension_path() -> str | None:
    """Path of the built extension next to codec.py, or None."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        hits = glob.glob(os.path.join(REPO_ROOT, "helpers", "codec" + suffix))
        if hits:
            return hits[0]
    return None


def _exec_file(name: str, block_cython: bool) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, CODEC_PY)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("cython", ...)
    try:
        if block_cython:
            sys.modules["cython"] = None  # makes "import cython" raise ImportError
        spec.loader.exec_module(module)
    finally:
        if block_cython:
            if saved is ...:
                sys.modules.pop("cython", None)
            else:
                sys.modules["cython"] = saved
    return module


def load(form: str) -> types.ModuleType | None:
    """The codec module in the given form; None if the compiled form is not built."""
    if form in _cache:
        return _cache[form]
    if form == "compiled":
        module = None
        if compiled_extension_path() is not None:
            if REPO_ROOT not in sys.path:
                sys.path.insert(0, REPO_ROOT)
            candidate = importlib.import_module("helpers.codec")
            if os.path.splitext(candidate.__file__)[1] != ".py":
                module = candidate
    elif form == "imported":
        module = None
        if compiled_extension_path() is None:
            if REPO_ROOT not in sys.path:
                sys.path.insert(0, REPO_ROOT)
            module = importlib.import_module("helpers.codec")
    elif form == "interpreted":
        module = _exec_file("codec_interpreted", block_cython=False)
    elif form == "nocython":
        module = _exec_file("codec_nocython", block_cython=True)
    else:
        raise ValueError(form)
    _cache[form] = module
    return module


def available(forms: tuple[str, ...] = FORMS) -> list[str]:
    """The forms of ``forms`` that exist here and differ from each other (module docstring), in
    the order of ``forms``; decided when the tests are collected."""
    built = compiled_extension_path() is not None
    return [form for form in forms if not (form == "compiled" and not built)
            and not (form == "imported" and built)]
