"""Data as users hold it: pandas DataFrames and SciPy sparse user x item matrices, turned into the
columns the engine takes. Neither pandas nor SciPy is imported here: an object is recognised by
its module, so the binding needs neither unless the caller uses them."""

from __future__ import annotations

import sys
from typing import Any, List, NamedTuple, Optional, Sequence

import numpy as np

from .errors import InvalidArgument


def is_dataframe(obj: Any) -> bool:
    """A pandas DataFrame (recognised without importing pandas)."""
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns") and hasattr(obj, "iloc")


def is_sparse(obj: Any) -> bool:
    """A SciPy sparse matrix or array (only possible once scipy.sparse is imported)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(obj))


def column(df: Any, name: Optional[str], argument: str, *, required: bool = True) -> Any:
    """``df[name]``, or a clear error naming the column and the keyword that chose it."""
    if name is None:
        return None
    if name not in df.columns:
        if not required:
            return None
        shown: List[str] = [str(c) for c in list(df.columns)[:20]]
        raise InvalidArgument(f"the DataFrame has no column {name!r} ({argument}={name!r}); its columns are {shown}")
    return df[name]


def numbers(series: Any, column_name: str) -> np.ndarray:
    """A numeric column as an array; NaN (or a missing value) is an error naming its row."""
    if hasattr(series, "isna"):
        missing = np.flatnonzero(np.asarray(series.isna()))
        if missing.size:
            raise InvalidArgument(f"column {column_name!r} has NaN at row {series.index[int(missing[0])]!r}")
        if getattr(series.dtype, "kind", "O") in "biuf" and not isinstance(series.dtype, np.dtype):
            series = series.astype(series.dtype.numpy_dtype)  # a nullable pandas dtype with nothing missing
    values = series.to_numpy() if hasattr(series, "to_numpy") else np.asarray(series)
    if values.dtype.kind == "O":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"column {column_name!r} must hold numbers") from None
    if values.dtype.kind not in "biuf":
        raise TypeError(f"column {column_name!r} must hold numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        nan = np.flatnonzero(np.isnan(values))
        if nan.size:
            raise InvalidArgument(f"column {column_name!r} has NaN at row {series.index[int(nan[0])]!r}")
    return values


def timestamps(series: Any, column_name: str) -> np.ndarray:
    """A timestamp column: datetimes (tz-aware ones in UTC) become Unix seconds; numbers pass."""
    dtype = getattr(series, "dtype", None)
    if getattr(dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values = series.to_numpy()
    if values.dtype.kind == "M":
        nat = np.flatnonzero(np.isnat(values))
        if nat.size:
            raise InvalidArgument(f"column {column_name!r} has a missing timestamp (NaT) at row {series.index[int(nat[0])]!r}")
        return values.astype("datetime64[s]").astype(np.int64)
    values = numbers(series, column_name)
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)):
            raise TypeError(f"column {column_name!r} must hold whole Unix seconds or datetimes")
    return values.astype(np.int64)


def texts(series: Any, column_name: str) -> List[str]:
    """A text column as a list of str; a missing text is an error naming its row."""
    out = series.tolist()
    for i, t in enumerate(out):
        if not isinstance(t, str):
            what = "a missing text" if t is None or (isinstance(t, float) and t != t) else f"a {type(t).__name__}"
            raise TypeError(f"column {column_name!r} has {what} at row {series.index[i]!r}; texts must be str "
                            "(use \"\" to remove an entry's text)")
    return out


class Triples(NamedTuple):
    """Interactions from a sparse user x item matrix: rows are users, columns items."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray


def sparse_interactions(matrix: Any, name: str = "user_items", shape: Optional[Sequence[int]] = None) -> Triples:
    """The stored entries of a sparse user x item matrix (implicit's ``fit(user_items)``
    convention: row = user id, column = item id, value = confidence > 0), in a fixed pseudo-random
    order: a sparse matrix has no time order, and without timestamps the fit's validation hold-out
    takes each user's last-added interactions, which in storage order would be the user's highest
    item ids (a biased hold-out that taught the blend to trust the session agent).

    Raises:
        InvalidArgument: not two-dimensional, a shape other than `shape`, no stored entries, or a
            value that is not a confidence (zero, negative, NaN, infinite).
        TypeError: a dtype that is not a number.
    """
    if matrix.ndim != 2:
        raise InvalidArgument(f"{name} must be a 2-D users x items matrix, got {matrix.ndim} dimensions")
    if shape is not None and tuple(matrix.shape) != tuple(shape):
        raise InvalidArgument(f"{name} has shape {tuple(matrix.shape)}; expected {tuple(shape)}")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (confidences), got dtype {matrix.dtype}")
    coo = matrix.tocoo()
    rows = np.asarray(coo.row if hasattr(coo, "row") else coo.coords[0], dtype=np.int64)
    cols = np.asarray(coo.col if hasattr(coo, "col") else coo.coords[1], dtype=np.int64)
    data = np.asarray(coo.data)
    if data.size == 0:
        raise InvalidArgument(f"{name} has no stored entries")
    bad = np.flatnonzero(~(np.isfinite(data) & (data > 0)))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(f"{name} holds {data[i].item()!r} at (row {rows[i]}, column {cols[i]}); values are confidences "
                              "and must be finite and > 0 (drop stored zeros with .eliminate_zeros())")
    with np.errstate(over="ignore"):
        weights = data.astype(np.float32)
    if not np.all(np.isfinite(weights)):
        raise InvalidArgument(f"{name} holds a value beyond the float32 range")
    order = np.random.default_rng(0x5EED).permutation(rows.size)
    return Triples(rows[order], cols[order], weights[order])
