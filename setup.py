"""Build hook: vigil is pure Python; when Cython and a C compiler are available, its decision hot
path is compiled as well (the same ``.py`` sources, plus ``.pxd`` type declarations beside some
of them), which the benchmarks in ``docs/benchmarks.md`` measure. Every extension is optional: a
build that cannot compile one installs and runs the pure-Python module instead.

``VIGIL_PURE=1`` at install time skips compilation altogether. The list of compiled modules is
``vigil.compiled.HOT_MODULES``; ``vigil --version`` says which of them run compiled.
"""

from __future__ import annotations

import os
import runpy

from setuptools import Extension, setup

_COMPILED = runpy.run_path(os.path.join("src", "vigil", "compiled.py"))
HOT_MODULES = _COMPILED["HOT_MODULES"]
C_MODULES = _COMPILED["C_MODULES"]  # .pyx sources: C-only accelerators with pure-Python equivalents
# what a C module links: the audit chain calls OpenSSL's SHA256 (without libssl-dev the module is
# not built, optional=True, and the Python loop runs)
_C_LIBRARIES = {"vigil.audit._chain": ["crypto"]}


def _extensions() -> list[Extension]:
    if os.environ.get("VIGIL_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    modules = [
        Extension(name, [os.path.join("src", *name.split(".")) + ".py"], optional=True)
        for name in HOT_MODULES
    ] + [
        Extension(
            name,
            [os.path.join("src", *name.split(".")) + ".pyx"],
            optional=True,
            libraries=_C_LIBRARIES.get(name, []),
        )
        for name in C_MODULES
    ]
    return cythonize(
        modules,
        # annotation_typing off: the annotations are for mypy; compiled code keeps Python's
        # semantics, and C types come only from the .pxd files, where they are checked by hand.
        compiler_directives={"language_level": 3, "annotation_typing": False, "binding": True},
        include_path=["src"],
        quiet=True,
    )


setup(ext_modules=_extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
