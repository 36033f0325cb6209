"""Compile the packet codec (helpers/codec.py, Cython pure Python mode) in place.

    python3 setup.py build_ext --inplace

produces helpers/codec.<abi>.so next to helpers/codec.py; Python then imports the
extension in preference to the source.  The generated C file goes to build/.  Without
Cython or without a working C compiler nothing is built (a warning is printed and the
command still succeeds): the server then simply runs the interpreted helpers/codec.py.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover
    cythonize = None


class OptionalBuildExt(build_ext):
    """build_ext that degrades to a warning when the compiler is missing or fails."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler / platform error: keep the .py
            print(f"WARNING: could not compile the codec ({exc}); "
                  "helpers/codec.py will run interpreted.", file=sys.stderr)


ext_modules = []
if cythonize is None:
    print("WARNING: Cython is not installed; helpers/codec.py will run interpreted.",
          file=sys.stderr)
else:
    ext_modules = cythonize(
        [Extension("helpers.codec", ["helpers/codec.py"])],
        build_dir="build",
        compiler_directives={
            "language_level": 3,
            # All raw memory access goes through explicitly length-checked pointers,
            # and Python lists are only indexed after their length was validated.
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )

setup(
    name="pep.py-codec",
    packages=[],
    py_modules=[],
    ext_modules=ext_modules,
    cmdclass={"build_ext": OptionalBuildExt},
)
