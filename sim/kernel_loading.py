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

This follows numba's private code, so it applies only to the versions whose code it was checked
against: the four functions it replaces or wraps are the same in numba 0.60 to 0.68, the versions
pyproject.toml allows. Any other version is left alone and loads as before.
"""

from __future__ import annotations

CHECKED = ((0, 60), (0, 68))  # numba versions whose codegen.py this was read against (inclusive)
_BITCODE = "_skillsim_bitcode"  # a library's bitcode, not yet parsed
_OBJECT = "_skillsim_object"  # its machine code, until its entry point is found
_installed = False


def checked_version(version: str) -> bool:
    """Whether this numba version is one whose loading code was checked (CHECKED)."""
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return CHECKED[0] <= major_minor <= CHECKED[1]


def install() -> bool:
    """Make cached libraries parse their bitcode on first use; True if in force. Once per process."""
    global _installed
    if _installed:
        return True
    import numba
    from numba.core import codegen

    if not checked_version(numba.__version__):
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
        object_code, shared_bitcode = data
        self.enable_object_caching()
        self._set_compiled_object(object_code)
        self.__dict__[_BITCODE] = shared_bitcode
        self.__dict__[_OBJECT] = object_code
        self._finalize_final_module()
        return self

    def _get_module_for_linking(self):
        _parse_bitcode(self)
        return for_linking(self)

    def get_pointer_to_function(self, name):
        object_code = self.__dict__.pop(_OBJECT, None)
        if object_code is not None and b"\0" + name.encode() + b"\0" in object_code:
            self._ensure_finalized()
            return self._codegen._engine.get_function_address(name)
        _parse_bitcode(self)  # a name not seen in the machine code: numba's own check, with its symbols
        return pointer(self, name)

    codegen.CPUCodeLibrary._unserialize = classmethod(_unserialize)
    codegen.CPUCodeLibrary._get_module_for_linking = _get_module_for_linking
    library.get_pointer_to_function = get_pointer_to_function
    _installed = True
    return True


def _parse_bitcode(lib) -> None:
    """Do what numba's loading did with the bitcode, if it has not been done: parse it into the module
    other code links against, and list its symbols with the execution engine's."""
    bitcode = lib.__dict__.pop(_BITCODE, None)
    if bitcode is None:
        return
    lib.__dict__.pop(_OBJECT, None)
    from llvmlite import binding as ll

    lib._shared_module = ll.parse_bitcode(bitcode)
    lib._codegen._engine._load_defined_symbols(lib._shared_module)


def pending(lib) -> bool:
    """Whether this library's bitcode has not been parsed (for the tests)."""
    return _BITCODE in lib.__dict__
