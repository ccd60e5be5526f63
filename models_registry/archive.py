"""Structural checks of an uploaded TorchScript archive, done without executing or unpickling anything.

Pure module (no Django, no torch): used by the web process before anything is stored, and again by the
worker before `torch.jit.load`. It reads only the zip's central directory and scans the pickles' opcodes.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from models_registry.pickle_scan import PickleRefused, ScanResult, merge, scan_pickle_bytes

MAX_ENTRIES = 50_000
MAX_PICKLE_BYTES = 64 * 1024**2
MAX_RATIO = 200  # a compressed member that expands more than this is treated as a bomb
RATIO_FLOOR_BYTES = 1024**2  # small members may compress well; ignore their ratio


class ArchiveRejected(Exception):
    """The file is not an acceptable TorchScript archive; the message says why, for a person."""


@dataclass
class ArchiveFacts:
    root: str
    entries: int
    uncompressed_bytes: int
    format_version: str
    code_files: int
    globals_seen: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    storage_dtypes: list[str] = field(default_factory=list)  # of the tensors data.pkl stores (qint8 included)
    qschemes: list[str] = field(default_factory=list)  # quantization schemes of its quantized tensors
    pickles: int = 0


def _describe_non_zip(head: bytes) -> str:
    if head.startswith(b"\x80") or (head[:1] in {b"(", b"c"} and b"\n" in head[:64]):
        return (
            "This is a plain Python pickle, not a TorchScript archive. Forge never unpickles uploads: "
            "export the model with torch.jit.script(model) (or trace) and save it with torch.jit.save."
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "This file is not a TorchScript archive (it is not a zip file). Save the model with torch.jit.save."
    return "This is a text file, not a TorchScript archive. Save the model with torch.jit.save."


def check_member_name(name: str) -> None:
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or ":" in name.split("/")[0]:
        raise ArchiveRejected(f"The archive contains an unsafe path ({name!r}); refused.")


def is_pickle_member(name: str) -> bool:
    """Every member torch.jit.load may unpickle: data.pkl, constants.pkl, code/*.debug_pkl, and the lite
    interpreter's bytecode.pkl and debug maps."""
    return name.endswith((".pkl", ".debug_pkl"))


def scan_pickle(data: bytes, member: str) -> ScanResult:
    """Follow one pickle symbolically (models_registry.pickle_scan); executes nothing."""
    try:
        return scan_pickle_bytes(data, member)
    except PickleRefused as exc:
        raise ArchiveRejected(str(exc)) from exc


def check_torchscript_archive(path: str | Path, *, max_uncompressed: int) -> ArchiveFacts:
    """Everything that can be checked without loading: zip structure, bombs, layout, and pickle globals."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ArchiveRejected("The file is empty.")
    with path.open("rb") as fh:
        head = fh.read(512)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            raise ArchiveRejected("The archive is damaged or truncated (its zip directory is missing).")
        raise ArchiveRejected(_describe_non_zip(head))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveRejected(f"The archive is damaged or truncated ({exc}).") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ArchiveRejected(f"The archive has {len(infos)} entries (limit {MAX_ENTRIES}); refused.")
        total = 0
        for info in infos:
            check_member_name(info.filename)
            total += info.file_size
            if (
                info.compress_type != zipfile.ZIP_STORED
                and info.file_size > RATIO_FLOOR_BYTES
                and info.file_size > MAX_RATIO * max(info.compress_size, 1)
            ):
                raise ArchiveRejected(
                    f"{info.filename} expands from {info.compress_size} to {info.file_size} bytes: "
                    "refused as a possible zip bomb."
                )
            if info.header_offset + info.compress_size > size:
                raise ArchiveRejected("The archive is truncated: a member runs past the end of the file.")
        if total > max_uncompressed:
            raise ArchiveRejected(
                f"The archive expands to {total} bytes, over the limit of {max_uncompressed}: "
                "refused as a possible zip bomb."
            )
        names = [info.filename for info in infos]
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise ArchiveRejected(
                f"The archive holds {repeated[0]!r} more than once: a loader could read another copy than the one "
                "checked, so it was refused."
            )
        if not any(name.endswith("/data.pkl") and name.count("/") == 1 for name in names):
            raise ArchiveRejected(
                "This zip file is not a PyTorch archive (no data.pkl). Save the model with torch.jit.save."
            )
        # torch.jit.load reads the folder of the archive's first member, whatever the other members are called.
        root = names[0].split("/", 1)[0]
        if f"{root}/data.pkl" not in names or any(not name.startswith(f"{root}/") for name in names):
            raise ArchiveRejected(
                "The archive's members are not all in one folder with its data.pkl (torch.jit.save writes one): "
                "a loader could read other pickles than the ones checked, so it was refused."
            )
        code_files = [n for n in names if n.startswith(f"{root}/code/") and n.endswith(".py")]
        if not code_files or f"{root}/constants.pkl" not in names:
            raise ArchiveRejected(
                "This is a torch.save checkpoint (a state_dict or pickled module), not TorchScript. Forge never "
                "unpickles checkpoints: export with torch.jit.script(model) or torch.jit.trace and torch.jit.save."
            )
        scans = []
        for member in sorted(name for name in names if is_pickle_member(name)):
            info = archive.getinfo(member)
            if info.file_size > MAX_PICKLE_BYTES:
                raise ArchiveRejected(f"{member} is {info.file_size} bytes, more than a TorchScript archive needs.")
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise ArchiveRejected(f"{member} cannot be read: the archive is damaged ({exc}).") from exc
            scans.append(scan_pickle(data, member))
        scanned = merge(scans)
        version = ""
        if f"{root}/version" in names:
            version = archive.read(f"{root}/version")[:16].decode("ascii", "replace").strip()
        extra = sorted(n.split("/extra/", 1)[1] for n in names if n.startswith(f"{root}/extra/"))
    return ArchiveFacts(
        root=root,
        entries=len(infos),
        uncompressed_bytes=total,
        format_version=version,
        code_files=len(code_files),
        globals_seen=scanned.globals_seen,
        extra_files=extra,
        storage_dtypes=scanned.storage_dtypes,
        qschemes=scanned.qschemes,
        pickles=len(scans),
    )
