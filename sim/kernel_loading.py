"""Loading the compiled passes from numba's cache without reading their LLVM bitcode until it is used.

numba caches each compiled function as its machine code and, beside it, its LLVM bitcode. On loading
(`CPUCodeLibrary._unserialize`) it parses the bitcode and lists every symbol it defines. The bitcode is
used only when later compiled code links against the function, and the symbol list only to look up
its entry point. A run loaded from the cache does neither. The parsing and listing took about half of
a fresh process's loading of the passes (0.24 s against 0.12 s for every pass, benchmarks/README.md,
thirty-fourth step), a cost that (b) and (c) count in fresh processes.

Here the bitcode is kept as bytes and parsed the first time something asks for it
(`_get_module_for_linking`: code compiled later that links against a cached function gets exactly what
it got before). A cached function's entry point is looked up directly in the execution engine when
its name is in the machine code's symbol table; any other name first parses the bitcode, as numba
did. The machine code, and so every number a run computes, is the same.

It changes how every cached numba function in the process loads, the package's passes and any other
package's alike. It follows numba's private code, so it applies only where that code is what it was
written against: a numba version from 0.60 to 0.68 (the versions pyproject.toml allows, whose four
functions it replaces or calls have the same source in each release's `numba/core/codegen.py`), and
those four functions' bytecode equal to what it was read from (`CODE`; Python 3.11, the only Python
pyproject.toml allows). Anything else is left alone and loads as before.

Parsing happens under numba's compiler lock, and the bitcode is dropped only once the module and its
symbols are in place: llvmlite's parser releases the GIL, and a second thread asking for the same
function's address in the meantime (a function passed as a first-class function is looked up when a
call's arguments are read, outside the lock) got 0 from a half-done parse (a review's reproduction).
"""

from __future__ import annotations

import hashlib

CHECKED = ((0, 60), (0, 68))  # numba versions whose codegen.py this was read against (inclusive)
#: a digest of the bytecode of each function replaced or called (`_code_key`), numba 0.60-0.68 on Python 3.11
CODE = {"CPUCodeLibrary._unserialize": "ddc426bf1918", "CPUCodeLibrary._get_module_for_linking": "f7c9642cd24c",
        "JITCodeLibrary.get_pointer_to_function": "26437276354d", "JitEngine._load_defined_symbols": "32b3933f5907"}
_BITCODE = "_skillsim_bitcode"  # a library's bitcode, not yet parsed
_OBJECT = "_skillsim_object"  # its machine code, where its entry points are looked for until then
_installed = False


def checked_version(version: str) -> bool:
    """Whether this numba version is one whose loading code was checked (CHECKED)."""
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return CHECKED[0] <= major_minor <= CHECKED[1]


def _code_key(function) -> str:
    """A digest of a function's bytecode, names and constants (60 us for the four; their source would
    take 24 ms to read)."""
    code = getattr(function, "__func__", function).__code__
    consts = [c for c in code.co_consts if not hasattr(c, "co_code")]
    return hashlib.sha256(repr((code.co_code, code.co_names, code.co_varnames, consts)).encode()).hexdigest()[:12]


def checked_code(codegen) -> bool:
    """Whether numba's functions this replaces or calls are the ones it was written against (CODE)."""
    try:
        return all(_code_key(getattr(getattr(codegen, cls), name)) == CODE[f"{cls}.{name}"]
                   for cls, name in (k.split(".") for k in CODE))
    except AttributeError:
        return False


def install() -> bool:
    """Make cached libraries parse their bitcode on first use; True if in force. Once per process."""
    global _installed
    if _installed:
        return True
    import numba
    from numba.core import codegen
    from numba.core.compiler_lock import global_compiler_lock

    if not checked_version(numba.__version__) or not checked_code(codegen):
        return False
    library = codegen.JITCodeLibrary
    unserialize = codegen.CPUCodeLibrary.__dict__["_unserialize"].__func__
    for_linking = codegen.CPUCodeLibrary._get_module_for_linking
    pointer = library.get_pointer_to_function

    def _unserialize(cls, codegen_, state):
        name, kind, data = state
        if kind != "object" or not issubclass(cls, library):
            return unserialize(cls, codegen_, state)
        self = codegen_.create_library(name)
        assert isinstance(self, cls)
        object_code, shared_bitcode = data
        self.enable_object_caching()
        self._set_compiled_object(object_code)
        self.__dict__[_BITCODE] = shared_bitcode
        self.__dict__[_OBJECT] = object_code
        self._finalize_final_module()
        return self

    def _get_module_for_linking(self):
        _parse_bitcode(self, global_compiler_lock)
        return for_linking(self)

    def get_pointer_to_function(self, name):
        with global_compiler_lock:
            object_code = self.__dict__.get(_OBJECT)
            if object_code is not None and b"\0" + name.encode() + b"\0" in object_code:
                self._ensure_finalized()
                return self._codegen._engine.get_function_address(name)
            _parse_bitcode(self, global_compiler_lock)  # a name not in the machine code: numba's own check
            return pointer(self, name)

    codegen.CPUCodeLibrary._unserialize = classmethod(_unserialize)
    codegen.CPUCodeLibrary._get_module_for_linking = _get_module_for_linking
    library.get_pointer_to_function = get_pointer_to_function
    _installed = True
    return True


def _parse_bitcode(lib, lock) -> None:
    """Do what numba's loading did with the bitcode, if it has not been done: parse it into the module
    other code links against, and list its symbols with the execution engine's. Under numba's compiler
    lock (re-entrant), the bitcode dropped last, so that no thread sees the parse half done."""
    if _BITCODE not in lib.__dict__:
        return
    from llvmlite import binding as ll

    with lock:
        bitcode = lib.__dict__.get(_BITCODE)
        if bitcode is None:
            return
        lib._shared_module = ll.parse_bitcode(bitcode)
        lib._codegen._engine._load_defined_symbols(lib._shared_module)
        lib.__dict__.pop(_OBJECT, None)
        del lib.__dict__[_BITCODE]


def pending(lib) -> bool:
    """Whether this library's bitcode has not been parsed (for the tests)."""
    return _BITCODE in lib.__dict__
