"""Reading CSV and Parquet files in batches, and converting their columns, with errors that name row and column.

Django-free (pyarrow and numpy only). A file is never read whole: Parquet by row groups/batches, CSV through
pyarrow's streaming reader, every column read as text first so a bad value can be found and named.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 4 << 20
PARQUET_MAGIC = b"PAR1"
NULL_TEXTS = ["", "NA", "N/A", "null", "NULL", "None"]
NUMBER_PATTERN = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf|infinity)\s*$"


class TableError(ValueError):
    """A file or value that cannot be read; names the row (0-based, counting data rows) and column when known."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column


def sniff_format(path: Path, filename: str = "") -> str:
    """Parquet when the file starts with its magic bytes, else CSV (a .parquet name on another file is refused)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == PARQUET_MAGIC:
        return "parquet"
    if filename.lower().endswith((".parquet", ".pq")):
        raise TableError("the file is named .parquet but is not a Parquet file")
    return "csv"


def column_names(path: Path, fmt: str) -> list[str]:
    """The file's column names, reading only its header (CSV) or footer (Parquet)."""
    if fmt == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"the Parquet file cannot be read: {exc}") from None
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
        names = list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(f"the CSV file cannot be read: {_arrow_message(exc)}") from None
    except UnicodeDecodeError:
        raise TableError("the file is neither Parquet nor CSV text in UTF-8") from None
    reader.close()
    return names


def iter_batches(path: Path, fmt: str, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches. CSV columns come as text (null for empty/NA), Parquet columns as stored."""
    if fmt == "parquet":
        try:
            # No pre-buffering and no read-ahead threads: by default pyarrow reads ahead across row groups, and a
            # 10-million-row file then grew the process by its own size (2.2 GB); this way it stays ~120 MB.
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            yield from parquet.iter_batches(batch_size=batch_rows, use_threads=False)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"the Parquet file cannot be read: {exc}") from None
        return
    names = column_names(path, "csv")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise TableError(f"the column {duplicate!r} appears twice", column=duplicate)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True, null_values=NULL_TEXTS
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES), convert_options=convert
        )
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)
    except pa.ArrowInvalid as exc:
        raise TableError(f"the CSV file cannot be read: {_arrow_message(exc)}") from None
    except UnicodeDecodeError:
        raise TableError("the file is neither Parquet nor CSV text in UTF-8") from None


def _arrow_message(exc: Exception) -> str:
    return str(exc).split("\n")[0]


def first_true(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def to_float(array: pa.Array, column: str, row_offset: int = 0) -> np.ndarray:
    """A column as float64 (null -> NaN). Text must parse as a number; a bad value raises naming its row."""
    kind = array.type
    if pa.types.is_boolean(kind):
        array = pc.cast(array, pa.int8())
        kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            valid = pc.fill_null(pc.match_substring_regex(array, NUMBER_PATTERN, ignore_case=True), True)
            row = first_true(~valid.to_numpy(zero_copy_only=False))
            value = array[row].as_py()
            raise TableError(
                f"row {row_offset + row}, column {column!r}: {value!r} is not a number",
                row=row_offset + row,
                column=column,
            ) from None
    raise TableError(f"column {column!r} holds {kind}, not numbers", column=column)


def to_text(array: pa.Array) -> np.ndarray:
    """A column as an object array of text (None for null); integral floats print without '.0' (3.0 -> "3")."""
    kind = array.type
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        out = np.empty(len(values), dtype=object)
        for index, value in enumerate(values.tolist()):
            out[index] = None if value != value else (str(int(value)) if float(value).is_integer() else str(value))
        return out
    if pa.types.is_boolean(kind):
        return np.array([None if v is None else ("true" if v else "false") for v in array.to_pylist()], dtype=object)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        array = pc.cast(array, pa.string())
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)


def to_timestamps_us(array: pa.Array, column: str, row_offset: int = 0) -> np.ndarray:
    """A column of times as int64 microseconds since the epoch (UTC). Text is ISO 8601; a naive time means UTC."""
    kind = array.type
    if array.null_count:
        row = first_true(array.is_null().to_numpy(zero_copy_only=False))
        raise TableError(
            f"row {row_offset + row}, column {column!r}: a timestamp is required", row=row_offset + row, column=column
        )
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            array = pc.assume_timezone(array, "UTC")
        return pc.cast(pc.cast(array, pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:  # ISO 8601 with Z or an offset, parsed by Arrow in one pass; anything else falls to the checks below
            parsed = pc.cast(array, pa.timestamp("us", tz="UTC"))
            return pc.cast(parsed, pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        texts = array.to_pylist()
        out = np.empty(len(texts), dtype=np.int64)
        for index, text in enumerate(texts):
            parsed = parse_time_us(text)
            if parsed is None:
                raise TableError(
                    f"row {row_offset + index}, column {column!r}: {text!r} is not an ISO 8601 time",
                    row=row_offset + index,
                    column=column,
                )
            out[index] = parsed
        return out
    raise TableError(f"column {column!r} holds {kind}, not times", column=column)


def parse_time_us(text: object) -> int | None:
    """ISO 8601 text (or a datetime) as microseconds since the epoch, UTC; None when it is not a time."""
    from datetime import UTC, datetime

    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Table:
    """A small table held whole (a baseline): columns by name, in file order."""

    names: list[str]
    columns: dict[str, pa.ChunkedArray]
    rows: int


def read_whole(path: Path, fmt: str, max_rows: int) -> Table:
    """Read a whole file (a baseline), refusing one of more than `max_rows` rows before holding it all."""
    batches = []
    rows = 0
    for batch in iter_batches(path, fmt):
        rows += batch.num_rows
        if rows > max_rows:
            raise TableError(f"the file has more than {max_rows:,} rows, the limit for a baseline")
        batches.append(batch)
    if not batches:
        raise TableError("the file has no rows")
    table = pa.Table.from_batches(batches)
    return Table(list(table.column_names), {name: table.column(name) for name in table.column_names}, rows)
