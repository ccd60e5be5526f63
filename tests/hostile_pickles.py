"""Hand-built hostile pickles, and real TorchScript archives carrying them.

Each payload, loaded by Python's unpickler, would run `os.system("touch /tmp/forge-pwned")` (or reach another
dangerous name). `resolved_globals` shows what Python's own unpickler would look up, without running any of it, so a
test can prove that a payload really is hostile before it checks that the scan refuses it.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable

COMMAND = "touch /tmp/forge-pwned"
PROTO = b"\x80"
STOP = b"."


def _unicode(text: str) -> bytes:
    """BINUNICODE (protocol 1+)."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _short_unicode(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4+)."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (COMMAND,))


def plain_exploit(protocol: int) -> bytes:
    """What pickle.dumps writes for a __reduce__ exploit at this protocol (GLOBAL below 4, STACK_GLOBAL from 4)."""
    return pickle.dumps(_Exploit(), protocol=protocol)


def memo_trick_protocol4() -> bytes:
    """The issue's payload: "os" and "system" go into the memo, "collections" and "OrderedDict" are pushed, then the
    memoized strings are fetched back just before STACK_GLOBAL. A scan that remembers the last strings it read sees
    collections.OrderedDict; the unpickler resolves os.system."""
    return (
        PROTO
        + b"\x04"
        + _short_unicode("os")
        + b"\x94"  # MEMOIZE -> 0
        + b"0"  # POP
        + _short_unicode("system")
        + b"\x94"  # MEMOIZE -> 1
        + b"0"
        + _short_unicode("collections")
        + _short_unicode("OrderedDict")
        + b"h\x00"  # BINGET 0
        + b"h\x01"  # BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + _short_unicode(COMMAND)
        + b"\x85"  # TUPLE1
        + b"R"  # REDUCE
        + STOP
    )


def memo_trick_protocol2() -> bytes:
    """The same trick in a protocol 2 stream (the unpickler accepts STACK_GLOBAL whatever PROTO says), with BINPUT and
    LONG_BINGET instead of MEMOIZE and BINGET."""
    return (
        PROTO
        + b"\x02"
        + _unicode("os")
        + b"q\x07"  # BINPUT 7
        + b"0"
        + _unicode("system")
        + b"r\x08\x00\x00\x00"  # LONG_BINPUT 8
        + b"0"
        + _unicode("collections")
        + _unicode("OrderedDict")
        + b"j\x07\x00\x00\x00"  # LONG_BINGET 7
        + b"h\x08"  # BINGET 8
        + b"\x93"
        + _unicode(COMMAND)
        + b"\x85R"
        + STOP
    )


def memo_trick_text() -> bytes:
    """The trick with protocol-0 text opcodes: PUT/GET by decimal index, UNICODE strings."""
    return (
        b"Vos\np100\n0"
        + b"Vsystem\np101\n0"
        + b"Vcollections\nVOrderedDict\n"
        + b"g100\ng101\n"
        + b"\x93"
        + b"V"
        + COMMAND.encode()
        + b"\n\x85R"
        + STOP
    )


def dup_swap_trick() -> bytes:
    """Stack juggling without the memo: the allowed names are pushed last but popped as a pair by POP and DUP."""
    return (
        PROTO
        + b"\x04"
        + _short_unicode("os")
        + _short_unicode("system")
        + b"\x93"  # STACK_GLOBAL os.system
        + _short_unicode("collections")
        + _short_unicode("OrderedDict")
        + b"0"  # POP
        + b"0"  # POP
        + _short_unicode(COMMAND)
        + b"\x85R"
        + STOP
    )


def laundered_through_a_call() -> bytes:
    """The module name comes back from an allowed call (restore_type_tag returns its argument in Python): the scan
    cannot know the value a call returns, so a global named by it is refused."""
    return (
        PROTO
        + b"\x02"
        + b"ctorch.jit._pickle\nrestore_type_tag\n"
        + _unicode("os")
        + _unicode("str")
        + b"\x86R"  # TUPLE2 REDUCE -> "os" in Python
        + _unicode("system")
        + b"\x93"
        + _unicode(COMMAND)
        + b"\x85R"
        + STOP
    )


def ext_code_payload() -> bytes:
    """EXT1: the callable is named by a number in copyreg's extension registry (registered only while dumping)."""
    import os

    module = os.system.__module__  # posix
    copyreg.add_extension(module, "system", 0xF0)
    try:
        return pickle.dumps(_Exploit(), protocol=2)
    finally:
        copyreg.remove_extension(module, "system", 0xF0)


def ext2_payload() -> bytes:
    return PROTO + b"\x02" + b"\x83\x34\x12" + _unicode(COMMAND) + b"\x85R" + STOP


def inst_payload() -> bytes:
    """INST (protocol 0): builds an "instance" by calling os.system with the marked arguments."""
    return b"(V" + COMMAND.encode() + b"\nios\nsystem\n" + STOP


def obj_payload() -> bytes:
    """OBJ (protocol 1): calls the class at the mark with the arguments after it."""
    return b"(cos\nsystem\n" + _unicode(COMMAND) + b"o" + STOP


def build_on_a_global() -> bytes:
    """BUILD on an allowed global would set attributes on it (here: OrderedDict.__reduce__ becomes a string)."""
    return (
        PROTO
        + b"\x02"
        + b"ccollections\nOrderedDict\n"
        + b"}"
        + _unicode("__reduce__")
        + _unicode(COMMAND)
        + b"sb"  # SETITEM BUILD
        + STOP
    )


def obj_on_an_allowed_class() -> bytes:
    """OBJ on a class the allow-list names: refused for the opcode itself."""
    return b"(ccollections\nOrderedDict\no" + STOP


def newobj_on_a_non_torch_class() -> bytes:
    """NEWOBJ of a class that is allowed as a callable but is not a TorchScript class."""
    return PROTO + b"\x02" + b"ccollections\nOrderedDict\n" + b")\x81" + STOP


def reduce_on_a_value_global() -> bytes:
    """A storage class is allowed as a name in a persistent id, never as something to call."""
    return PROTO + b"\x02" + b"ctorch\nFloatStorage\n" + _unicode(COMMAND) + b"\x85R" + STOP


def persid_text() -> bytes:
    """PERSID (text): asks the loader for an outside object by an arbitrary string."""
    return PROTO + b"\x02" + b"P" + COMMAND.encode() + b"\n" + STOP


def binpersid_not_a_storage() -> bytes:
    return PROTO + b"\x02" + _unicode("module") + _unicode("os") + b"\x86Q" + STOP


def second_pickle_after_stop() -> bytes:
    """A harmless pickle followed by a hostile one: a reader that loads twice from the same stream runs it."""
    return pickle.dumps({}, protocol=2) + plain_exploit(2)


def nested_pickle_in_bytes() -> bytes:
    """A pickle that carries another (hostile) pickle as a bytes constant, for whatever unpickles it later."""
    return PROTO + b"\x03" + b"B" + struct.pack("<I", len(plain_exploit(2))) + plain_exploit(2) + STOP


def deep_marks(count: int = 50_000) -> bytes:
    """A stream that would make a naive symbolic run allocate without bound."""
    return PROTO + b"\x02" + b"(" * count + b"N" + STOP


HOSTILE_PICKLES: dict[str, tuple[Callable[[], bytes], str]] = {
    # name: (builder, what the refusal names)
    "memo-trick-protocol4": (memo_trick_protocol4, "os.system"),
    "memo-trick-protocol2": (memo_trick_protocol2, "os.system"),
    "memo-trick-protocol0-text": (memo_trick_text, "os.system"),
    "stack-juggling": (dup_swap_trick, "os.system"),
    "laundered-through-a-call": (laundered_through_a_call, "cannot follow"),
    "protocol-0": (lambda: plain_exploit(0), "system"),
    "protocol-1": (lambda: plain_exploit(1), "system"),
    "protocol-2": (lambda: plain_exploit(2), "system"),
    "protocol-3": (lambda: plain_exploit(3), "system"),
    "protocol-4": (lambda: plain_exploit(4), "system"),
    "protocol-5": (lambda: plain_exploit(5), "system"),
    "ext1-code": (ext_code_payload, "extension registry"),
    "ext2-code": (ext2_payload, "extension registry"),
    "inst": (inst_payload, "INST"),
    "obj": (obj_payload, "os.system"),
    "obj-on-an-allowed-class": (obj_on_an_allowed_class, "(OBJ)"),
    "build-on-a-global": (build_on_a_global, "sets the state of collections.OrderedDict"),
    "newobj-of-a-plain-class": (newobj_on_a_non_torch_class, "NEWOBJ"),
    "reduce-on-a-storage-class": (reduce_on_a_value_global, "calls torch.FloatStorage"),
    "persid-text": (persid_text, "PERSID"),
    "binpersid-not-a-storage": (binpersid_not_a_storage, "BINPERSID"),
    "second-pickle-after-stop": (second_pickle_after_stop, "after its end"),
    "nested-pickle-in-bytes": (nested_pickle_in_bytes, "second pickle inside a bytes constant"),
    "deep-marks": (deep_marks, "levels deep"),
}


class _Recorder(pickle.Unpickler):
    """Python's own unpickler, stopped at the first global it would import: which global that is."""

    class Resolved(Exception):
        pass

    def find_class(self, module: str, name: str) -> object:
        raise self.Resolved(f"{module}.{name}")

    def persistent_load(self, pid: object) -> object:
        raise self.Resolved(f"persistent id {pid!r}")


def first_resolved_global(data: bytes) -> str | None:
    """What Python's unpickler would import first (found by running it with find_class stopping there)."""
    try:
        _Recorder(io.BytesIO(data)).load()
    except _Recorder.Resolved as exc:
        return str(exc)
    except Exception:
        return None
    return None


def swap_member(archive: bytes, suffix: str, payload: bytes) -> bytes:
    """A real TorchScript archive with the first member ending in `suffix` replaced by `payload`."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    swapped = False
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if not swapped and info.filename.endswith(suffix):
                data, swapped = payload, True
            dst.writestr(info, data)
    assert swapped, f"no member ends with {suffix}"
    return out.getvalue()


def duplicate_member(archive: bytes, suffix: str, payload: bytes) -> bytes:
    """The archive with a second member of the same name as the one ending in `suffix`, holding `payload`."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
            if info.filename.endswith(suffix):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
                    dst.writestr(info.filename, payload)
    return out.getvalue()


def second_root_first(archive: bytes, payload: bytes) -> bytes:
    """A hostile `evil/data.pkl` written first: torch.jit.load reads the folder of the first member."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        dst.writestr("evil/data.pkl", payload)
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
    return out.getvalue()
