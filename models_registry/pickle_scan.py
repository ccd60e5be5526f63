"""A symbolic run of a TorchScript archive's pickles: what every opcode would do, without doing any of it.

Pure module (no Django, no torch). Matching opcode names against an allow-list is not enough: a pickle can store
"os" and "system" in its memo, push "collections" and "OrderedDict", then fetch the stored strings back just before
STACK_GLOBAL, so a scan that looks at the last strings it read sees collections.OrderedDict while Python's
unpickler resolves os.system. So this module runs the pickle over symbols instead: the stack, the mark stack and
the memo hold what each opcode would have pushed (a string constant, a global, an object of a TorchScript class, or
an opaque value), and each global, call, object construction and persistent id is checked against what really
reaches it. Anything it cannot follow (a global named by a value that is not a string constant) is refused.

What TorchScript's pickler writes was measured on real archives (scripted and traced MLPs, CNNs, LSTM/GRU,
dynamically and statically quantized int8 models, fp16/bf16/fp64 weights, sparse buffers, enums, complex numbers,
typed lists and dicts, `_extra_files`, frozen and lite-interpreter files): protocol 2, GLOBAL (never
STACK_GLOBAL), BINPUT/BINGET, REDUCE on TorchScript's rebuild helpers, NEWOBJ and BUILD on `__torch__` classes,
BINPERSID for tensor storages. The tests build those archives and check that every one passes.
"""

from __future__ import annotations

import pickletools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Globals a TorchScript pickle may name, and what it may do with each.
CALLABLE_GLOBALS = frozenset(
    {
        "collections OrderedDict",
        "builtins complex",  # how the C++ pickler writes a complex attribute
        "torch device",
        "torch._utils _rebuild_tensor_v2",
        "torch._utils _rebuild_qtensor",
        "torch._utils _rebuild_sparse_tensor",
        "torch._utils _rebuild_parameter",
        "torch.jit._pickle build_intlist",
        "torch.jit._pickle build_doublelist",
        "torch.jit._pickle build_boollist",
        "torch.jit._pickle build_tensorlist",
        "torch.jit._pickle build_tensor_from_id",
        "torch.jit._pickle restore_type_tag",
    }
)
# Values, never called: the quantization scheme of a quantized tensor (an argument of _rebuild_qtensor).
VALUE_GLOBALS = frozenset(
    f"torch {scheme}"
    for scheme in (
        "per_tensor_affine",
        "per_channel_affine",
        "per_tensor_symmetric",
        "per_channel_symmetric",
        "per_channel_affine_float_qparams",
    )
)
# Storage classes (named in a tensor's persistent id), with the dtype of the tensors they hold.
STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
    "Float8_e4m3fnStorage": "float8_e4m3fn",
    "Float8_e5m2Storage": "float8_e5m2",
    "UInt16Storage": "uint16",
    "UInt32Storage": "uint32",
    "UInt64Storage": "uint64",
}
STORAGE_GLOBALS = frozenset(f"torch {name}" for name in STORAGE_DTYPES)
QSCHEMES = frozenset(ref.split(" ", 1)[1] for ref in VALUE_GLOBALS)

# Opcodes TorchScript's pickler writes. The scan follows the rest of the data opcodes too (to name what a hostile
# pickle really resolves), but an archive that uses one of them was not written by torch.jit.save.
TORCHSCRIPT_OPCODES = frozenset(
    {
        "PROTO",
        "STOP",
        "MARK",
        "GLOBAL",
        "BINPUT",
        "LONG_BINPUT",
        "BINGET",
        "LONG_BINGET",
        "BINUNICODE",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINFLOAT",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "EMPTY_TUPLE",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "EMPTY_LIST",
        "APPEND",
        "APPENDS",
        "EMPTY_DICT",
        "SETITEM",
        "SETITEMS",
        "BINPERSID",
        "REDUCE",
        "NEWOBJ",
        "BUILD",
    }
)
# Opcodes that can call or name something the scan cannot check: refused wherever they appear.
FORBIDDEN_OPCODES = {
    "INST": "builds an object from a class named inline (INST)",
    "OBJ": "builds an object from a class on the stack (OBJ)",
    "EXT1": "names a callable through the extension registry (EXT1)",
    "EXT2": "names a callable through the extension registry (EXT2)",
    "EXT4": "names a callable through the extension registry (EXT4)",
    "NEWOBJ_EX": "builds an object with keyword arguments (NEWOBJ_EX)",
    "PERSID": "refers to an outside object by a text persistent id (PERSID)",
    "NEXT_BUFFER": "reads an out-of-band buffer (NEXT_BUFFER)",
    "READONLY_BUFFER": "reads an out-of-band buffer (READONLY_BUFFER)",
}

# Bounds on the symbolic run, so a crafted pickle cannot make the scan itself use unbounded memory.
MAX_STACK = 1_000_000
MAX_MARK_DEPTH = 10_000
MAX_MEMO = 4_000_000
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PickleRefused(Exception):
    """The pickle does something a TorchScript archive never does; the message says what, for a person."""


# --- symbols -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string constant."""

    value: str


@dataclass(frozen=True)
class Global:
    """What GLOBAL or STACK_GLOBAL resolved: `module name`."""

    ref: str

    @property
    def dotted(self) -> str:
        return self.ref.replace(" ", ".")


@dataclass(frozen=True)
class TorchObject:
    """An object of a TorchScript class (`__torch__.…`), made by NEWOBJ: the only thing BUILD may fill."""

    cls: str


@dataclass(frozen=True)
class Tuple:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Opaque:
    """Any other value; `kind` says which containers may be filled (list, dict, set)."""

    kind: str


_VALUE = Opaque("value")
_SCALARS = frozenset(
    {
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
    }
)
_LIST = Opaque("list")
_DICT = Opaque("dict")
_SET = Opaque("set")
_STORAGE = Opaque("storage")


@dataclass
class ScanResult:
    globals_seen: list[str] = field(default_factory=list)
    storage_dtypes: list[str] = field(default_factory=list)
    qschemes: list[str] = field(default_factory=list)
    opcodes: set[str] = field(default_factory=set)


def _describe(value: Any) -> str:
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, TorchObject):
        return f"an object of {value.cls.replace(' ', '.')}"
    if isinstance(value, Text):
        return f"the string {value.value[:40]!r}"
    if isinstance(value, Tuple):
        return "a tuple"
    return f"a {value.kind}" if isinstance(value, Opaque) else "a value"


def _is_torchscript_class(ref: str) -> bool:
    module, _, name = ref.partition(" ")
    return (module == "__torch__" or module.startswith("__torch__.")) and bool(_IDENTIFIER.match(name))


class _Machine:
    """The unpickler's state, over symbols. Each method mirrors the opcode of the same name in pickle.py."""

    def __init__(self, member: str) -> None:
        self.member = member
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = ScanResult()
        self.unusual: str | None = None  # the first opcode torch.jit.save never writes

    # -- refusals

    def refuse(self, what: str) -> PickleRefused:
        return PickleRefused(
            f"{self.member} {what}. A TorchScript archive never does this: the file looks tampered with and was "
            "refused without being loaded."
        )

    def damaged(self, what: str) -> PickleRefused:
        return PickleRefused(f"{self.member} is damaged ({what}); the archive was refused.")

    # -- stack helpers

    def push(self, value: Any) -> None:
        if len(self.stack) >= MAX_STACK:
            raise PickleRefused(f"{self.member} holds more than {MAX_STACK:,} values at once; refused.")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise self.damaged("an opcode found the stack empty")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.damaged("an opcode found the stack empty")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise self.damaged("an opcode needs a MARK that is not there")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # -- globals and calls

    def resolve(self, module: str, name: str, opcode: str) -> Global:
        ref = f"{module} {name}"
        if not (_DOTTED.match(module) and _DOTTED.match(name)):
            raise self.refuse(f"names the global {module!r} {name!r} through {opcode}")
        if not (
            ref in CALLABLE_GLOBALS or ref in VALUE_GLOBALS or ref in STORAGE_GLOBALS or _is_torchscript_class(ref)
        ):
            raise self.refuse(f"refers to {module}.{name} (through {opcode})")
        if ref not in self.result.globals_seen:
            self.result.globals_seen.append(ref)
        return Global(ref)

    def call(self, func: Any, args: Any) -> Any:
        """REDUCE: only TorchScript's rebuild helpers, and TorchScript classes (enums are rebuilt this way)."""
        if not isinstance(func, Global):
            raise self.refuse(f"calls {_describe(func)} (REDUCE on something that is not a global)")
        if _is_torchscript_class(func.ref):  # an enum value: TorchScript passes the value itself, not a tuple
            return TorchObject(func.ref)
        if func.ref not in CALLABLE_GLOBALS:
            raise self.refuse(f"calls {func.dotted} (REDUCE)")
        if not isinstance(args, Tuple):
            raise self.refuse(f"calls {func.dotted} with {_describe(args)} instead of an argument tuple")
        if func.ref == "torch._utils _rebuild_qtensor":
            self.note_qscheme(args)
        return _DICT if func.ref == "collections OrderedDict" else _VALUE

    def note_qscheme(self, args: Tuple) -> None:
        for item in args.items:
            if isinstance(item, Tuple) and item.items and isinstance(item.items[0], Global):
                scheme = item.items[0].ref.split(" ", 1)[1]
                if scheme in QSCHEMES and scheme not in self.result.qschemes:
                    self.result.qschemes.append(scheme)

    def persistent(self, pid: Any) -> Any:
        """BINPERSID: TorchScript names a tensor's storage as ('storage', torch.<X>Storage, key, location, size)."""
        if not (
            isinstance(pid, Tuple)
            and len(pid.items) >= 2
            and pid.items[0] == Text("storage")
            and isinstance(pid.items[1], Global)
            and pid.items[1].ref in STORAGE_GLOBALS
        ):
            raise self.refuse(f"asks for an outside object by {_describe(pid)} (BINPERSID)")
        dtype = STORAGE_DTYPES[pid.items[1].ref.split(" ", 1)[1]]
        if dtype not in self.result.storage_dtypes:
            self.result.storage_dtypes.append(dtype)
        return _STORAGE

    # -- the run

    def step(self, name: str, arg: Any) -> None:  # one branch per opcode, as in pickle.py
        if name in FORBIDDEN_OPCODES:
            raise self.refuse(FORBIDDEN_OPCODES[name])
        if name not in TORCHSCRIPT_OPCODES and self.unusual is None:
            self.unusual = name
        if name in {"PROTO", "FRAME", "STOP"}:
            return
        if name == "MARK":
            if len(self.metastack) >= MAX_MARK_DEPTH:
                raise PickleRefused(f"{self.member} nests more than {MAX_MARK_DEPTH:,} levels deep; refused.")
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.push(self.top())
        elif name in _SCALARS:
            self.push(_VALUE)
        elif name in {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}:
            self.push(Text(str(arg)))
        elif name in {"STRING", "BINSTRING", "SHORT_BINSTRING"}:
            # Python 3 decodes these as text by default, so they can name a global too.
            self.push(Text(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)))
        elif name in {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}:
            data = bytes(arg)
            if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
                raise self.refuse("carries a second pickle inside a bytes constant")
            self.push(Opaque("bytes"))
        elif name == "EMPTY_TUPLE":
            self.push(Tuple(()))
        elif name in {"TUPLE1", "TUPLE2", "TUPLE3"}:
            count = int(name[-1])
            items = [self.pop() for _ in range(count)][::-1]
            self.push(Tuple(tuple(items)))
        elif name == "TUPLE":
            self.push(Tuple(tuple(self.pop_mark())))
        elif name == "EMPTY_LIST":
            self.push(_LIST)
        elif name == "LIST":
            self.pop_mark()
            self.push(_LIST)
        elif name == "EMPTY_DICT":
            self.push(_DICT)
        elif name == "DICT":
            items = self.pop_mark()
            if len(items) % 2:
                raise self.damaged("DICT with an odd number of items")
            self.push(_DICT)
        elif name == "EMPTY_SET":
            self.push(_SET)
        elif name == "FROZENSET":
            self.pop_mark()
            self.push(_VALUE)
        elif name in {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"}:
            self.fill(name)
        elif name in {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}:
            index = len(self.memo) if name == "MEMOIZE" else int(arg)
            if index < 0:
                raise self.damaged("a negative memo index")
            if len(self.memo) >= MAX_MEMO and index not in self.memo:
                raise PickleRefused(f"{self.member} stores more than {MAX_MEMO:,} memo entries; refused.")
            self.memo[index] = self.top()
        elif name in {"GET", "BINGET", "LONG_BINGET"}:
            index = int(arg)
            if index not in self.memo:
                raise self.damaged(f"memo entry {index} is read before it is stored")
            self.push(self.memo[index])
        elif name == "GLOBAL":
            module, sep, attr = str(arg).partition(" ")
            if not sep or " " in attr:
                raise self.refuse(f"names the global {arg!r} through GLOBAL")
            self.push(self.resolve(module, attr, "GLOBAL"))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            if not (isinstance(module, Text) and isinstance(attr, Text)):
                raise self.refuse(
                    f"names a global with {_describe(module)} and {_describe(attr)} (STACK_GLOBAL), "
                    "which the scan cannot follow to a string constant"
                )
            self.push(self.resolve(module.value, attr.value, "STACK_GLOBAL"))
        elif name == "REDUCE":
            args = self.pop()
            func = self.pop()
            self.push(self.call(func, args))
        elif name == "NEWOBJ":
            args = self.pop()
            cls = self.pop()
            if not (isinstance(cls, Global) and _is_torchscript_class(cls.ref)):
                raise self.refuse(f"creates an object of {_describe(cls)} (NEWOBJ)")
            if not isinstance(args, Tuple):
                raise self.refuse(f"creates {cls.dotted} with {_describe(args)} instead of an argument tuple")
            self.push(TorchObject(cls.ref))
        elif name == "BUILD":
            self.pop()  # the state
            target = self.top()
            if not isinstance(target, TorchObject):
                raise self.refuse(f"sets the state of {_describe(target)} (BUILD)")
        elif name == "BINPERSID":
            self.push(self.persistent(self.pop()))
        else:  # an opcode pickletools knows and this scan does not: refuse rather than guess its effect
            raise self.refuse(f"uses the pickle opcode {name}")

    def fill(self, name: str) -> None:
        """APPEND(S), SETITEM(S), ADDITEMS: Python's unpickler calls the target's methods when it is not a plain
        list, dict or set, so the target must be one the scan saw made."""
        expected = {"APPEND": _LIST, "APPENDS": _LIST, "SETITEM": _DICT, "SETITEMS": _DICT, "ADDITEMS": _SET}[name]
        if name in {"APPENDS", "SETITEMS", "ADDITEMS"}:
            items = self.pop_mark()
            if name == "SETITEMS" and len(items) % 2:
                raise self.damaged("SETITEMS with an odd number of items")
        elif name == "SETITEM":
            self.pop()
            self.pop()
        else:
            self.pop()
        target = self.top()
        if target != expected:
            raise self.refuse(f"adds items to {_describe(target)} ({name})")


def scan_pickle_bytes(data: bytes, member: str) -> ScanResult:
    """Run one pickle symbolically, refusing anything a TorchScript archive never does. Executes nothing."""
    machine = _Machine(member)
    stopped_at: int | None = None
    try:
        for opcode, arg, position in pickletools.genops(data):
            machine.result.opcodes.add(opcode.name)
            machine.step(opcode.name, arg)
            if opcode.name == "STOP":
                stopped_at = position
                break
    except PickleRefused:
        raise
    except Exception as exc:  # pickletools raises ValueError and friends on a damaged stream
        raise PickleRefused(f"{member} is damaged ({exc}); the archive was refused.") from exc
    if stopped_at is None:
        raise PickleRefused(f"{member} is damaged (it has no STOP opcode); the archive was refused.")
    trailing = len(data) - stopped_at - 1
    if trailing:
        raise machine.refuse(f"goes on for {trailing} bytes after its end (a second pickle could hide there)")
    if len(machine.stack) != 1 or machine.metastack:
        raise machine.damaged("it does not end with exactly one value")
    if machine.unusual is not None:
        raise machine.refuse(f"uses the pickle opcode {machine.unusual}, which torch.jit.save never writes")
    return machine.result


def merge(results: Iterable[ScanResult]) -> ScanResult:
    merged = ScanResult()
    for result in results:
        for name in ("globals_seen", "storage_dtypes", "qschemes"):
            target = getattr(merged, name)
            target.extend(item for item in getattr(result, name) if item not in target)
        merged.opcodes |= result.opcodes
    return merged
