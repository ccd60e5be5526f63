"""The pickle scan: legitimate TorchScript archives of every kind pass it and inspect ready; hand-built hostile pickles,
alone and carried by a real archive (data.pkl, constants.pkl, a code/*.debug_pkl), are refused before
torch.jit.load, with a message that names what they do."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from picklescan.scanner import SafetyLevel, scan_pickle_bytes, scan_zip_bytes

from models_registry.archive import ArchiveRejected, check_torchscript_archive
from models_registry.pickle_scan import PickleRefused
from models_registry.pickle_scan import scan_pickle_bytes as forge_scan
from models_registry.sandbox import inspect_sandbox
from models_registry.sandbox.inspection import run_inspection
from tests.hostile_pickles import (
    HOSTILE_PICKLES,
    duplicate_member,
    first_resolved_global,
    memo_trick_protocol4,
    plain_exploit,
    second_root_first,
    swap_member,
)
from tests.torchscript_corpus import CORPUS_NAMES, corpus_archive
from tests.torchscript_models import mlp_bytes

PWNED = Path("/tmp/forge-pwned")
LIMIT = 1024**3


@pytest.fixture(scope="module")
def mlp_archive() -> bytes:
    return mlp_bytes()


def _write(tmp_path: Path, data: bytes, name: str = "model.pt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _members(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


# --- what real archives hold ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_a_legitimate_archive_passes_the_scan(tmp_path, name):
    archive = corpus_archive(name)
    facts = check_torchscript_archive(_write(tmp_path, archive.data), max_uncompressed=LIMIT)
    pickles = [m for m in _members(archive.data) if m.endswith((".pkl", ".debug_pkl"))]
    assert facts.pickles == len(pickles) > 2  # data.pkl, constants.pkl and the code's debug pickles
    assert facts.storage_dtypes
    assert set(facts.qschemes) == set(archive.quantization)
    if archive.weight_dtypes:
        assert archive.weight_dtypes <= set(facts.storage_dtypes)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_picklescan_agrees_a_legitimate_archive_holds_nothing_dangerous(name):
    """A second opinion from another scanner: nothing in the corpus is 'dangerous' to picklescan either."""
    result = scan_zip_bytes(io.BytesIO(corpus_archive(name).data), name)
    dangerous = [f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous]
    assert dangerous == [] and result.issues_count == 0 and not result.scan_err


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_a_legitimate_archive_inspects_ready_with_its_dtypes(tmp_path, name):
    """The sandbox's own inspect(), in this process (the child runs exactly this after the same scan)."""
    archive = corpus_archive(name)
    path = _write(tmp_path, archive.data)
    result = inspect_sandbox.inspect(
        {"artifact": str(path), "size": len(archive.data), "input_spec": archive.input_spec, "max_uncompressed": LIMIT}
    )
    assert result["dry_run"]["outputs"], result
    assert set(result["quantization"]) == set(archive.quantization)
    assert result["stored_dtypes"]
    if archive.weight_dtypes:
        assert set(result["weight_dtypes"]) == archive.weight_dtypes
    if archive.quantization:  # weights packed in quantized layers are counted, not only parameters
        assert result["packed_parameters"] > 0 and "qint8" in result["weight_dtypes"]


def test_a_dynamically_quantized_mlp_is_ready_in_the_real_sandbox(tmp_path):
    """The CONTRACT-NOTES case: it used to be refused as 'tampered with' (torch.per_tensor_affine was not allowed)."""
    archive = corpus_archive("dynamic-int8-mlp-scripted")
    outcome = run_inspection(
        artifact=str(_write(tmp_path, archive.data)),
        size=len(archive.data),
        input_spec=archive.input_spec,
        sample_inputs=None,
        timeout_s=120,
        memory_bytes=4 * 1024**3,
        max_uncompressed=LIMIT,
    )
    assert outcome.ok, outcome.reason
    inspection = outcome.inspection or {}
    assert inspection["weight_dtypes"] == ["float32", "qint8"]
    assert inspection["quantization"] == ["per_tensor_affine"]
    assert inspection["packed_parameters"] == 32 * 64 + 64 + 64 * 2 + 2


# --- hostile pickles -----------------------------------------------------------------------------------------------

DANGEROUS = {"os.system", "posix.system", "nt.system"}


@pytest.mark.parametrize("name", list(HOSTILE_PICKLES))
def test_a_hostile_pickle_is_refused_and_named(name):
    build, needle = HOSTILE_PICKLES[name]
    with pytest.raises(PickleRefused) as refused:
        forge_scan(build(), "archive/data.pkl")
    message = str(refused.value)
    assert needle in message
    assert message.startswith("archive/data.pkl ")


@pytest.mark.parametrize(
    "name", [n for n in HOSTILE_PICKLES if first_resolved_global(HOSTILE_PICKLES[n][0]()) in DANGEROUS]
)
def test_the_hostile_pickles_are_really_hostile(name):
    """Python's own unpickler (stopped at find_class) would import os.system from each of these, and picklescan,
    which follows the memo, agrees they are dangerous: the refusals above are of real attacks."""
    data = HOSTILE_PICKLES[name][0]()
    assert first_resolved_global(data) in DANGEROUS
    result = scan_pickle_bytes(io.BytesIO(data), name)
    assert result.issues_count >= 1


def test_the_memo_trick_fools_a_scan_that_reads_the_last_strings():
    """What the old scan did: pair the two strings read last before STACK_GLOBAL. It sees collections.OrderedDict
    here, while the unpickler resolves os.system, which the symbolic run names."""
    import pickletools

    data = memo_trick_protocol4()
    strings: list[str] = []
    naive = None
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "STACK_GLOBAL":
            naive = ".".join(strings[-2:])
            break
        if isinstance(arg, str):
            strings.append(arg)
    assert naive == "collections.OrderedDict"
    assert first_resolved_global(data) == "os.system"
    with pytest.raises(PickleRefused, match=r"refers to os\.system \(through STACK_GLOBAL\)"):
        forge_scan(data, "data.pkl")


@pytest.mark.parametrize("member", ["/data.pkl", "/constants.pkl", ".py.debug_pkl"])
@pytest.mark.parametrize("name", list(HOSTILE_PICKLES))
def test_a_real_archive_carrying_a_hostile_pickle_is_refused(tmp_path, mlp_archive, member, name):
    build, needle = HOSTILE_PICKLES[name]
    path = _write(tmp_path, swap_member(mlp_archive, member, build()))
    with pytest.raises(ArchiveRejected) as refused:
        check_torchscript_archive(path, max_uncompressed=LIMIT)
    assert needle in str(refused.value)
    assert member.lstrip("/") in str(refused.value).split(" ", 1)[0]


def test_a_second_copy_of_data_pkl_is_refused(tmp_path, mlp_archive):
    """Two members of one name: the zip reader of the scan and torch's could each pick another copy."""
    path = _write(tmp_path, duplicate_member(mlp_archive, "/data.pkl", plain_exploit(2)))
    with pytest.raises(ArchiveRejected, match=r"holds 'archive/data.pkl' more than once"):
        check_torchscript_archive(path, max_uncompressed=LIMIT)


def test_a_hostile_folder_written_first_is_refused(tmp_path, mlp_archive):
    """torch.jit.load reads the folder of the archive's first member, so a scan of another folder proves nothing."""
    path = _write(tmp_path, second_root_first(mlp_archive, plain_exploit(2)))
    with pytest.raises(ArchiveRejected, match="not all in one folder"):
        check_torchscript_archive(path, max_uncompressed=LIMIT)


@pytest.mark.parametrize("name", ["memo-trick-protocol4", "nested-pickle-in-bytes", "ext1-code"])
def test_the_sandbox_refuses_a_carried_payload_before_torch_jit_load(tmp_path, mlp_archive, name):
    """The real inspection child: its answer is the scan's refusal, not a torch.jit.load error, and nothing ran."""
    PWNED.unlink(missing_ok=True)
    build, needle = HOSTILE_PICKLES[name]
    data = swap_member(mlp_archive, "/data.pkl", build())
    outcome = run_inspection(
        artifact=str(_write(tmp_path, data)),
        size=len(data),
        input_spec={"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]},
        sample_inputs=None,
        timeout_s=120,
        memory_bytes=4 * 1024**3,
        max_uncompressed=LIMIT,
    )
    assert not outcome.ok
    assert outcome.reason.startswith("archive/data.pkl ") and needle in outcome.reason
    assert "torch.jit.load" not in outcome.reason
    assert not PWNED.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["dynamic-int8-mlp-scripted", "static-int8-per-channel", "bf16-mlp", "extra-files"])
def test_the_api_accepts_a_legitimate_archive_of_another_kind(engineer, name):
    from models_registry.services import model_create
    from tests.api.helpers import bearer_client, upload

    model_create(name="quantized", owner=engineer)
    archive = corpus_archive(name)
    response = upload(bearer_client(engineer), "quantized", "1.0.0", archive.data, spec=archive.input_spec)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "validating"
