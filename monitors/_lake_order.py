"""The window's row order and its cut, in arrow: checked where the hours are in order already (the usual case: hours
come in time order and compaction sorts each), sorted only where they are not, and cut by a binary search on the
capture times (a slice, no copy). Used by the typed path (:mod:`monitors._lake_typed`).
"""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitors._lake_partitions import ROW_ORDER

__all__ = ["SORT_GOOD", "ordered", "since_cut"]

SORT_GOOD = [(name, "ascending") for name in ROW_ORDER]


def _time_chunks(table: pa.Table) -> list[np.ndarray]:
    """The capture times as int64 views of the column's chunks (the column's unit; no copy; the column has no
    nulls)."""
    return [chunk.cast(pa.int64()).to_numpy() for chunk in table["_ts"].chunks if len(chunk)]


def _tie_positions(chunks: list[np.ndarray]) -> np.ndarray:
    """The positions ``i`` in the whole column where rows ``i`` and ``i + 1`` have the same capture time."""
    found, offset = [], 0
    for k, times in enumerate(chunks):
        found.append(np.flatnonzero(times[1:] == times[:-1]) + offset)
        if k + 1 < len(chunks) and times[-1] == chunks[k + 1][0]:
            found.append(np.array([offset + len(times) - 1]))
        offset += len(times)
    return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)


def ordered(good: pa.Table) -> pa.Table:
    """``good`` in (_ts, _request_id, _row) order. Hours come in time order and compaction sorts each, so usually
    as it is: checked in one vectorised pass over each chunk's times (and across chunks), the other keys compared
    only where two times tie."""
    if good.num_rows < 2:
        return good
    if not any(good[name].null_count for name, _ in SORT_GOOD):
        chunks = _time_chunks(good)
        in_order = all(bool(np.all(t[1:] >= t[:-1])) for t in chunks) and all(
            a[-1] <= b[0] for a, b in itertools.pairwise(chunks)
        )
        if in_order and _ties_in_order(good, _tie_positions(chunks)):
            return good
    return good.take(pc.sort_indices(good, sort_keys=SORT_GOOD))


_FEW_TIES = 4096  # compared pair by pair; more: arrow's take, which copies the whole id column once


def _ties_in_order(good: pa.Table, ties: np.ndarray) -> bool:
    """Whether each row at ``ties`` and the next (same capture time) are in (_request_id, _row) order."""
    if len(ties) == 0:
        return True
    if len(ties) <= _FEW_TIES:
        for at in ties.tolist():
            pair = good.slice(at, 2).select(["_request_id", "_row"]).to_pylist()
            if (pair[0]["_request_id"], pair[0]["_row"]) > (pair[1]["_request_id"], pair[1]["_row"]):
                return False
        return True
    before, after = pa.array(ties), pa.array(ties + 1)
    ids_before, ids_after = good["_request_id"].take(before), good["_request_id"].take(after)
    rows_before, rows_after = good["_row"].take(before), good["_row"].take(after)
    same_id = pc.equal(ids_before, ids_after)
    in_order = pc.or_(pc.less(ids_before, ids_after), pc.and_(same_id, pc.less_equal(rows_before, rows_after)))
    return bool(pc.all(in_order).as_py())


def since_cut(good: pa.Table, since: datetime) -> pa.Table:
    """The rows of ordered ``good`` captured at or after ``since``: a slice (no copy) found by binary search."""
    cutoff = pa.scalar(since, good.schema.field("_ts").type)
    if good["_ts"].null_count:
        return good.filter(pc.greater_equal(good["_ts"], cutoff))
    bound, offset = cutoff.cast(pa.int64()).as_py(), 0
    for times in _time_chunks(good):
        if times[-1] >= bound:
            return good.slice(offset + int(np.searchsorted(times, bound, side="left")))
        offset += len(times)
    return good.slice(good.num_rows)
