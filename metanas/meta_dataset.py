"""Meta-datasets: measured (task, architecture, metric) tables in one Parquet format.

A meta-dataset *collection* is a folder of up to three Parquet files (schemas below, full
documentation in ``meta_datasets/README.md``):

``tasks.parquet``    one row per task: ``task, space, description, n_classes, class_ids,
                     sample_features, default_metric, report_metric, source, licence``
``triples.parquet``  one row per measurement: ``task, space, arch, metric, value, fidelity,
                     split, source``; ``(task, arch, metric, split, fidelity)`` is unique
``proxies.parquet``  optional, zero-cost proxy scores: ``task, space, arch, proxy, score,
                     time_s, source``

Conventions: ``arch`` is the space's own string (``metanas.spaces.get(space).to_str``);
``metric`` names a quantity without its split (``acc``, ``ssim``, ``neg_loss``...), ``split``
says which data measured it (``valid`` | ``test``); higher is better for every metric except
the ``*_norm`` cost attributes and ``cost_s``. A task is searched on ``default_metric`` at
split ``valid`` and reports ``report_metric`` at split ``test``. ``fidelity`` is the training
length in epochs (``0`` = not stated by the source). A metric may also be named with its
split as prefix: ``"test_acc"`` is metric ``acc`` at split ``test``.

The collections shipped with metanas live in ``<repo>/meta_datasets/<collection>/`` (override
the folder with the ``METANAS_DATA`` environment variable); they are built once from the raw
benchmark files by ``meta_datasets/build_shipped.py`` and nothing here reads those raw files.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserInputError
from .spaces import InvalidArchitecture
from .spaces import get as get_space

FORMAT_VERSION = 1
FORMAT_KEY = b"metanas.meta_dataset.format"
ENV_VAR = "METANAS_DATA"
SPLITS = ("valid", "test")
UNKNOWN_FIDELITY = 0
#: triples metric holding an evaluation's cost in seconds (used by TabularBenchmark)
COST_METRIC = "cost_s"

TASKS_FILE, TRIPLES_FILE, PROXIES_FILE = "tasks.parquet", "triples.parquet", "proxies.parquet"

TASKS_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("space", pa.string()),
    ("description", pa.string()),
    ("n_classes", pa.int32()),
    ("class_ids", pa.list_(pa.int32())),
    ("sample_features", pa.list_(pa.list_(pa.list_(pa.float32())))),
    ("default_metric", pa.string()),
    ("report_metric", pa.string()),
    ("source", pa.string()),
    ("licence", pa.string()),
])
TRIPLES_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("space", pa.string()),
    ("arch", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
    ("fidelity", pa.int32()),
    ("split", pa.string()),
    ("source", pa.string()),
])
PROXIES_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("space", pa.string()),
    ("arch", pa.string()),
    ("proxy", pa.string()),
    ("score", pa.float64()),
    ("time_s", pa.float64()),
    ("source", pa.string()),
])
_SCHEMAS = {TASKS_FILE: TASKS_SCHEMA, TRIPLES_FILE: TRIPLES_SCHEMA, PROXIES_FILE: PROXIES_SCHEMA}
_NOT_NULL = {
    TASKS_FILE: ("task", "space", "description", "default_metric", "source", "licence"),
    TRIPLES_FILE: ("task", "space", "arch", "metric", "value", "fidelity", "split", "source"),
    PROXIES_FILE: ("task", "space", "arch", "proxy", "source"),
}


class MetaDatasetNotFound(FileNotFoundError):
    """The shipped meta-dataset folder (or a requested collection) does not exist."""


# ---------------------------------------------------------------------------- locations
def shipped_root() -> Path:
    """Folder of the shipped collections: ``$METANAS_DATA`` or ``<repo>/meta_datasets``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import metanas

    return Path(metanas.__file__).resolve().parents[1] / "meta_datasets"


def _is_collection(folder: Path) -> bool:
    return (folder / TASKS_FILE).is_file() and (folder / TRIPLES_FILE).is_file()


def list_collections(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the collections (sub-folders in the format) under ``root`` (default shipped)."""
    root = Path(root) if root is not None else shipped_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _is_collection(p))


#: NB201 latencies on 27 devices (HELP), under the shipped root; not a collection
LATENCY_FILE = Path("hardware") / "nb201_latency.parquet"


def nb201_latency(devices: str | Sequence[str] | None = None,
                  root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Measured latency (ms) of every NB201 cell on each device: ``[15625 cells, n_devices]``,
    indexed by the NB201 arch string (official index order), one float64 column per device
    (``devices``: one name or a subset, in that order; default all 27). Source: HELP (Lee et
    al., NeurIPS 2021), see ``meta_datasets/hardware/README.md``. ``root``: the folder holding
    ``hardware/`` (default: the shipped one, or ``$METANAS_DATA``)."""
    root = Path(root) if root is not None else shipped_root()
    path = root / LATENCY_FILE
    if not path.is_file():
        raise MetaDatasetNotFound(f"no latency table at {path}: run `python "
                                  f"meta_datasets/build_shipped.py` in the metanas repository "
                                  f"(or point {ENV_VAR} at a folder holding {LATENCY_FILE})")
    df = pq.read_table(path).to_pandas().set_index("arch")
    if devices is not None:
        devices = [devices] if isinstance(devices, str) else list(devices)
        unknown = [d for d in devices if d not in df.columns]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(df.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserInputError(f"unknown device(s) {', '.join(map(repr, unknown))}{hint}: "
                                 f"the latency table has {', '.join(df.columns)}")
        df = df[devices]
    return df


def _missing_root_message(root: Path) -> str:
    return (f"no meta-dataset collections in {root}: run `python meta_datasets/build_shipped.py` "
            f"in the metanas repository (or set {ENV_VAR} to a folder holding "
            f"<collection>/tasks.parquet + triples.parquet)")


#: the collections shipped with metanas (in ``<repo>/meta_datasets``): trusted on load
SHIPPED_COLLECTIONS = ("digits_live", "metad2a", "nb201", "transnas_micro")
#: stamps (``_stamp``) of collection folders that passed ``validate`` in this process
_VALIDATED: set[tuple] = set()


def _package_data_root() -> Path:
    import metanas

    return Path(metanas.__file__).resolve().parents[1] / "meta_datasets"


def _is_shipped(folder: Path) -> bool:
    """``folder`` is a collection shipped in the package's own ``meta_datasets/`` (not one
    under ``$METANAS_DATA`` or anywhere else)."""
    try:
        folder = folder.resolve()
    except OSError:
        return False
    return folder.name in SHIPPED_COLLECTIONS and folder.parent == _package_data_root()


def _stamp(files: list[Path]) -> tuple | None:
    """(path, inode, size, mtime) of each file: identifies a collection's contents cheaply
    (an atomic rewrite is a new inode); ``None`` when a file cannot be stat'ed."""
    try:
        return tuple((str(f.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
                     for f in files for st in (f.stat(),))
    except OSError:
        return None


# ---------------------------------------------------------------------------- parquet I/O
def _read_table(path: Path, schema: pa.Schema) -> pd.DataFrame:
    # read through Python's open(), so that audit hooks / sandboxes see every file touched
    data = path.read_bytes()
    table = pq.read_table(pa.BufferReader(data))
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not in the metanas meta-dataset format: missing column(s) "
                         f"{', '.join(missing)}")
    extra = [n for n in table.column_names if n not in schema.names]
    known = table.select(schema.names).cast(schema)
    for n in extra:  # forward compatibility: keep unknown columns at the end
        known = known.append_column(table.schema.field(n), table.column(n))
    return _to_pandas(known)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    if "n_classes" in df.columns:
        df["n_classes"] = df["n_classes"].astype("Int32")
    return df


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return _to_pandas(schema.empty_table())


def _normalise(df: pd.DataFrame | None, schema: pa.Schema) -> pd.DataFrame:
    """``df`` with exactly the schema's columns (in order) and dtypes."""
    if df is None:
        return _empty(schema)
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {', '.join(missing)} of the meta-dataset format")
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    return _to_pandas(table)


def table_to_parquet_bytes(df: pd.DataFrame, schema: pa.Schema, *, compression_level: int = 15) -> bytes:
    """Serialise ``df`` (columns of ``schema``) as deterministic, zstd-compressed Parquet."""
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    table = table.replace_schema_metadata({FORMAT_KEY: str(FORMAT_VERSION).encode()})
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd", compression_level=compression_level,
                   use_dictionary=strings, use_byte_stream_split=floats,
                   row_group_size=1 << 22)
    return buf.getvalue().to_pybytes()


# ---------------------------------------------------------------------------- the class
class MetaDataset:
    """Tasks, triples and proxies of one or more collections, as pandas DataFrames.

    Build one with :meth:`load` (shipped collections or any folder in the format),
    :func:`load_user_table` (a user CSV), :meth:`concat` / ``+``, or directly from
    DataFrames with the format's columns.
    """

    def __init__(self, tasks: pd.DataFrame, triples: pd.DataFrame,
                 proxies: pd.DataFrame | None = None, *, name: str = "",
                 _normalised: bool = False) -> None:
        if _normalised:
            self.tasks, self.triples = tasks, triples
            self.proxies = proxies if proxies is not None else _empty(PROXIES_SCHEMA)
        else:
            self.tasks = _normalise(tasks, TASKS_SCHEMA)
            self.triples = _normalise(triples, TRIPLES_SCHEMA)
            self.proxies = _normalise(proxies, PROXIES_SCHEMA)
        self.name = name
        dup = self.tasks["task"][self.tasks["task"].duplicated()]
        if len(dup):
            raise ValueError(f"task id {dup.iloc[0]!r} appears twice in the task table")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def load(cls, name_or_path: str | os.PathLike | Sequence[str] | None = None) -> "MetaDataset":
        """Load meta-dataset collections.

        Args:
            name_or_path: ``None`` = every shipped collection; a collection name
                (``"nb201"``, ``"metad2a"``, ``"transnas_micro"``); a list of names; or a
                folder path, either one collection (holding ``tasks.parquet``) or a folder of
                collections.

        A collection other than the shipped ones is checked with :meth:`validate` (once per
        process and contents): an invalid one raises a one-line
        :class:`~metanas.errors.UserInputError` naming the folder, file, task and fix.
        """
        root = shipped_root()
        if isinstance(name_or_path, (list, tuple)):
            return cls.concat([cls.load(n) for n in name_or_path])
        if name_or_path is None:
            names = list_collections(root)
            if not names:
                raise MetaDatasetNotFound(_missing_root_message(root))
            return cls.concat([cls._load_folder(root / n) for n in names], name="shipped")
        text = str(name_or_path)
        candidate = root / text
        if os.sep not in text and "/" not in text and _is_collection(candidate):
            return cls._load_folder(candidate)
        path = Path(name_or_path).expanduser()
        if _is_collection(path):
            return cls._load_folder(path)
        if path.is_dir():
            names = list_collections(path)
            if names:
                return cls.concat([cls._load_folder(path / n) for n in names], name=path.name)
        shipped = list_collections(root)
        if not shipped and not path.exists():
            raise MetaDatasetNotFound(_missing_root_message(root))
        raise MetaDatasetNotFound(
            f"{text!r} is neither a shipped collection ({', '.join(shipped) or 'none found'}) "
            f"nor a folder holding tasks.parquet + triples.parquet")

    @classmethod
    def _load_folder(cls, folder: Path) -> "MetaDataset":
        """One collection folder; checked with :meth:`validate` unless it is one of the
        collections shipped in the package's own ``meta_datasets/`` folder (those are checked
        when built, by ``meta_datasets/build_shipped.py --check`` and by the test suite; the
        full check would add ~0.5 s to every load of the shipped data). A folder whose files
        passed the check once in this process (same paths, inodes, sizes and mtimes) is not
        checked again. An invalid folder raises a one-line ``UserInputError`` naming the
        file."""
        # proxies.parquet plus any extra proxies_*.parquet (e.g. nb201/proxies_digits.parquet)
        pfiles = [f for f in [folder / PROXIES_FILE] + sorted(folder.glob("proxies_*.parquet"))
                  if f.is_file()]
        files = [folder / TASKS_FILE, folder / TRIPLES_FILE] + pfiles
        check = not _is_shipped(folder)
        stamp = _stamp(files) if check else None
        tasks = _read_table(folder / TASKS_FILE, TASKS_SCHEMA)
        triples = _read_table(folder / TRIPLES_FILE, TRIPLES_SCHEMA)
        pframes = [_read_table(f, PROXIES_SCHEMA) for f in pfiles]
        proxies = pd.concat(pframes, ignore_index=True) if len(pframes) > 1 else \
            (pframes[0] if pframes else None)
        md = cls(tasks, triples, proxies, name=folder.name, _normalised=True)
        if check and (stamp is None or stamp not in _VALIDATED):
            try:
                md.validate()
            except UserInputError as exc:
                raise UserInputError(f"{folder}{os.sep}{exc}") from None
            if stamp is not None and stamp == _stamp(files):  # unchanged while read
                _VALIDATED.add(stamp)
        return md

    @classmethod
    def concat(cls, datasets: Iterable["MetaDataset"], name: str | None = None) -> "MetaDataset":
        """One meta-dataset holding every task of ``datasets`` (task ids must not clash)."""
        ds = list(datasets)
        if not ds:
            raise ValueError("concat needs at least one MetaDataset")
        if len(ds) == 1:
            return ds[0]

        def cat(frames: list[pd.DataFrame]) -> pd.DataFrame:
            frames = [f for f in frames if len(f)] or frames[:1]
            return pd.concat(frames, ignore_index=True)

        return cls(cat([d.tasks for d in ds]), cat([d.triples for d in ds]),
                   cat([d.proxies for d in ds]),
                   name=name if name is not None else "+".join(d.name for d in ds if d.name),
                   _normalised=True)

    def __add__(self, other: "MetaDataset") -> "MetaDataset":
        return MetaDataset.concat([self, other])

    def __repr__(self) -> str:
        return (f"MetaDataset({self.name!r}: {len(self.tasks)} tasks, {len(self.triples)} triples, "
                f"{len(self.proxies)} proxy scores)")

    # ------------------------------------------------------------------ selection
    def task_ids(self, space: str | None = None) -> list[str]:
        """Task ids, in table order; only those of ``space`` if given."""
        t = self.tasks
        if space is not None:
            t = t[t["space"] == get_space(space).name]
        return t["task"].tolist()

    def for_space(self, space: str) -> "MetaDataset":
        """The tasks (and their triples / proxies) of one search space."""
        name = get_space(space).name
        return self._filter(lambda df: df["space"] == name, suffix=name)

    def subset(self, tasks: Iterable[str]) -> "MetaDataset":
        """The given tasks only (ids resolved as in :meth:`table`)."""
        keep = {self.resolve_task(t) for t in tasks}
        return self._filter(lambda df: df["task"].isin(keep), suffix=f"{len(keep)} tasks")

    def _filter(self, pred, suffix: str) -> "MetaDataset":
        def sel(df: pd.DataFrame) -> pd.DataFrame:
            return df[pred(df)].reset_index(drop=True)

        return MetaDataset(sel(self.tasks), sel(self.triples), sel(self.proxies),
                           name=f"{self.name}[{suffix}]", _normalised=True)

    @cached_property
    def _task_pos(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tasks["task"])}

    @cached_property
    def _triple_rows(self) -> dict[str, np.ndarray]:
        return self.triples.groupby("task", sort=False).indices

    def n_triples(self, task: str) -> int:
        """How many (arch, metric, value) rows ``task`` has over all metrics, splits and
        fidelities (an upper bound on any one table's size; cheap, no table is built)."""
        return len(self._triple_rows.get(self.resolve_task(task), ()))

    @cached_property
    def _proxy_rows(self) -> dict[str, np.ndarray]:
        return self.proxies.groupby("task", sort=False).indices

    def resolve_task(self, task: str) -> str:
        """The task id meant by ``task``: exact id, case-insensitive id, or unique short name
        (``"cifar100"`` -> ``"nb201/cifar100"``); else a :class:`UserInputError`."""
        if task in self._task_pos:
            return task
        low = str(task).strip().lower()
        ids = list(self._task_pos)
        hits = [t for t in ids if t.lower() == low]
        if not hits:
            hits = [t for t in ids if t.split("/", 1)[-1].lower() == low]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserInputError(f"task {task!r} is ambiguous ({', '.join(hits)}); give the full id")
        close = difflib.get_close_matches(str(task), ids, n=3, cutoff=0.6)
        if not close:  # a short name with a typo: match the short names
            short = {t.split("/", 1)[-1]: t for t in ids}
            close = [short[c] for c in difflib.get_close_matches(low, list(short), n=3,
                                                                 cutoff=0.6)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        if self.name == "shipped":
            where = "the shipped meta-datasets: python adapt.py --list-tasks all"
        elif self.name in list_collections(shipped_root()):
            where = f"the shipped collection {self.name}: python adapt.py --list-tasks all"
        else:
            where = (f"{self.name or 'this meta-dataset'}: MetaDataset.load(...).task_ids() "
                     f"lists them")
        raise UserInputError(f"unknown task {task!r}{hint} ({len(ids)} tasks in {where})")

    def task(self, task: str) -> dict:
        """The task-table row of ``task`` as a dict."""
        tid = self.resolve_task(task)
        return self.tasks.iloc[self._task_pos[tid]].to_dict()

    def triples_of(self, task: str) -> pd.DataFrame:
        """Every triple of ``task``."""
        tid = self.resolve_task(task)
        rows = self._triple_rows.get(tid, np.empty(0, dtype=np.int64))
        return self.triples.iloc[rows]

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        return {"arch": self.triples["arch"].to_numpy(dtype=object),
                "value": self.triples["value"].to_numpy(dtype=np.float64)}

    def _groups(self, tid: str) -> dict[tuple[str, str, int], np.ndarray]:
        """``(metric, split, fidelity) -> row positions`` of task ``tid`` (cached)."""
        cache = self.__dict__.setdefault("_group_cache", {})
        if tid not in cache:
            rows = self._triple_rows.get(tid, np.empty(0, dtype=np.int64))
            t = self.triples.iloc[rows]
            cache[tid] = {(str(m), str(sp), int(f)): rows[ix] for (m, sp, f), ix in
                          t.groupby(["metric", "split", "fidelity"], sort=True).indices.items()}
        return cache[tid]

    def metrics(self, task: str) -> pd.DataFrame:
        """``metric, split, fidelity, n`` for every table ``task`` has."""
        g = self._groups(self.resolve_task(task))
        return pd.DataFrame([(m, sp, f, len(ix)) for (m, sp, f), ix in g.items()],
                            columns=["metric", "split", "fidelity", "n"])

    def resolve_metric(self, task: str, metric: str | None = None,
                       split: str = "valid") -> tuple[str, str]:
        """``(metric, split)`` meant by ``metric`` for ``task``.

        ``None`` is the task's ``default_metric`` (``report_metric`` for split ``test`` when
        set); ``"test_acc"``-style names carry their split, overriding ``split``.
        """
        tid = self.resolve_task(task)
        if split not in SPLITS:
            raise UserInputError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        available = {(m, sp) for m, sp, _ in self._groups(tid)}
        if metric is None:
            row = self.tasks.iloc[self._task_pos[tid]]
            rep = row["report_metric"]
            metric = rep if split == "test" and isinstance(rep, str) and rep else row["default_metric"]
        if (metric, split) in available:
            return metric, split
        for sp in SPLITS:
            if metric.startswith(sp + "_") and (metric[len(sp) + 1:], sp) in available:
                return metric[len(sp) + 1:], sp
        names = ", ".join(sorted(f"{sp}_{m}" for m, sp in available)) or "none"
        raise UserInputError(f"task {tid!r} has no metric {metric!r} on split {split!r}; "
                             f"choose one of: {names}")

    def fidelities(self, task: str, metric: str | None = None, split: str = "valid") -> list[int]:
        """Fidelities (epochs) at which ``metric`` is tabulated for ``task``, ascending."""
        tid = self.resolve_task(task)
        m, sp = self.resolve_metric(tid, metric, split)
        return sorted(f for mm, ss, f in self._groups(tid) if (mm, ss) == (m, sp))

    def table(self, task: str, metric: str | None = None, split: str = "valid",
              fidelity: int | None = None) -> pd.Series:
        """``value`` of one metric for every architecture the task tabulates.

        Args:
            task: task id (see :meth:`resolve_task`).
            metric: quantity (``"acc"``) or split-prefixed name (``"test_acc"``); ``None`` =
                the task's default (see :meth:`resolve_metric`).
            split: ``"valid"`` or ``"test"``.
            fidelity: epochs; ``None`` = the highest available.

        Returns:
            float Series indexed by architecture string (name ``"<split>_<metric>"``; ``attrs``
            hold task, metric, split, fidelity), in stored order.
        """
        tid = self.resolve_task(task)
        m, sp = self.resolve_metric(tid, metric, split)
        fids = self.fidelities(tid, m, sp)
        if fidelity is None:
            fidelity = fids[-1]
        elif int(fidelity) not in fids:
            raise UserInputError(f"task {tid!r} has {sp}_{m} at fidelity {', '.join(map(str, fids))} "
                                 f"(epochs), not {fidelity}; pick one of those")
        rows = self._groups(tid)[(m, sp, int(fidelity))]
        cols = self._columns
        s = pd.Series(cols["value"][rows], index=pd.Index(cols["arch"][rows], name="arch"),
                      name=f"{sp}_{m}")
        s.attrs.update(task=tid, metric=m, split=sp, fidelity=int(fidelity))
        return s

    def proxy_names(self, task: str) -> list[str]:
        tid = self.resolve_task(task)
        rows = self._proxy_rows.get(tid, np.empty(0, dtype=np.int64))
        return sorted(self.proxies["proxy"].iloc[rows].unique().tolist())

    def proxy_table(self, task: str, proxy: str) -> pd.Series:
        """Zero-cost proxy ``score`` per architecture (NaN where the proxy failed)."""
        tid = self.resolve_task(task)
        rows = self._proxy_rows.get(tid, np.empty(0, dtype=np.int64))
        p = self.proxies.iloc[rows]
        p = p[p["proxy"] == proxy]
        if not len(p):
            names = ", ".join(self.proxy_names(tid)) or "none"
            raise UserInputError(f"task {tid!r} has no proxy {proxy!r}; available: {names}")
        s = pd.Series(p["score"].to_numpy(dtype=np.float64, copy=True),
                      index=pd.Index(p["arch"].to_numpy(), name="arch"), name=proxy)
        s.attrs.update(task=tid, proxy=proxy)
        return s

    # ------------------------------------------------------------------ checks / saving
    def validate(self, check_archs: bool = True) -> None:
        """Raise a one-line :class:`~metanas.errors.UserInputError` (a ``ValueError``) unless
        the tables satisfy the format's invariants: no missing cells in the required columns,
        finite ``value``s, known splits, every triple / proxy score of a task of the task table
        with that task's space, one row per ``(task, arch, metric, split, fidelity)`` (and per
        ``(task, arch, proxy)``), each task's ``default_metric`` tabulated at split ``valid``
        (and its ``report_metric``, when set, at split ``test``) as
        :meth:`resolve_metric` looks them up, and (``check_archs``) canonical arch strings.
        The message names the file, the task and the column, and says how to fix it."""
        _check_not_null(self.tasks, self.triples, self.proxies)
        tr, px = self.triples, self.proxies
        _check_finite(tr)
        bad = tr[~tr["split"].isin(SPLITS)]
        if len(bad):
            r = bad.iloc[0]
            raise UserInputError(f"{TRIPLES_FILE}: task {r['task']!r} has split {r['split']!r} in "
                                 f"column 'split' ({len(bad)} row(s) with an unknown split); "
                                 f"use {' or '.join(SPLITS)}")
        for sp_name in self.tasks["space"].unique():
            try:
                canonical = get_space(sp_name).name
            except KeyError:
                canonical = None
            if canonical != sp_name:
                t = self.tasks.loc[self.tasks["space"] == sp_name, "task"].iloc[0]
                fix = (f"write {canonical!r}" if canonical else
                       f"use one of {', '.join(_space_names())}")
                raise UserInputError(f"{TASKS_FILE}: task {t!r} has space {sp_name!r} in column "
                                     f"'space', which is not a search space name; {fix}")
        known = set(self.tasks["task"])
        space_of = dict(zip(self.tasks["task"], self.tasks["space"]))
        for fname, df in ((TRIPLES_FILE, tr), (PROXIES_FILE, px)):
            if not len(df):
                continue
            orphan = sorted(set(df["task"].unique()) - known)
            if orphan:
                more = f" (and {len(orphan) - 1} more task(s))" if len(orphan) > 1 else ""
                raise UserInputError(f"{fname}: task {orphan[0]!r}{more} has rows but no row in "
                                     f"{TASKS_FILE}; add the task to the task table or drop "
                                     f"its rows")
            wrong = df[df["task"].map(space_of) != df["space"]]
            if len(wrong):
                r = wrong.iloc[0]
                raise UserInputError(f"{fname}: task {r['task']!r} has space {r['space']!r} in "
                                     f"column 'space' but {space_of[r['task']]!r} in "
                                     f"{TASKS_FILE}; make the two agree")
        _check_unique(tr, ["task", "arch", "metric", "split", "fidelity"], "value", TRIPLES_FILE,
                      "keep one row per (task, arch, metric, split, fidelity), e.g. the mean of "
                      "repeated runs")
        _check_unique(px, ["task", "arch", "proxy"], "score", PROXIES_FILE,
                      "keep one score per (task, arch, proxy)")
        self._check_metrics()
        if check_archs:
            checked: set[tuple[str, str]] = set()  # (space, arch) seen canonical
            for fname, df in ((TRIPLES_FILE, tr), (PROXIES_FILE, px)):
                for space_name, archs in df.groupby("space")["arch"]:
                    space = get_space(space_name)
                    for a in archs.unique():
                        if (space_name, a) in checked:
                            continue
                        try:
                            canon, err = space.to_str(space.from_str(a)), ""
                        except InvalidArchitecture as exc:
                            canon, err = None, " ".join(str(exc).split())
                        if canon == a:
                            checked.add((space_name, a))
                            continue
                        task = df.loc[(df["space"] == space_name) & (df["arch"] == a),
                                      "task"].iloc[0]
                        fix = (f"write {canon!r} (the space's to_str of it)" if canon is not None
                               else f"fix or drop that row ({err})")
                        raise UserInputError(
                            f"{fname}: task {task!r} has arch {a!r} in column 'arch', which is "
                            f"not a canonical {space_name} string; {fix}")

    def _check_metrics(self) -> None:
        """Each task's ``default_metric`` resolves at split ``valid`` and its ``report_metric``
        (when set) at split ``test``, as :meth:`resolve_metric` looks them up."""
        tr = self.triples
        have: dict[str, set[tuple[str, str]]] = {}
        for t, m, sp in tr[["task", "metric", "split"]].drop_duplicates().itertuples(index=False):
            have.setdefault(t, set()).add((m, sp))

        def found(avail: set, metric: str, split: str) -> bool:
            if (metric, split) in avail:
                return True
            return any(metric.startswith(sp + "_") and (metric[len(sp) + 1:], sp) in avail
                       for sp in SPLITS)

        for t, dm, rm in self.tasks[["task", "default_metric", "report_metric"]].itertuples(
                index=False):
            avail = have.get(t, set())
            checks = [("default_metric", dm, "valid")]
            if isinstance(rm, str) and rm:
                checks.append(("report_metric", rm, "test"))
            for col, metric, split in checks:
                if found(avail, metric, split):
                    continue
                if not avail:
                    raise UserInputError(f"{TASKS_FILE}: task {t!r} has no rows in "
                                         f"{TRIPLES_FILE}; add its measurements or drop the task")
                names = ", ".join(sorted(f"{s}_{m}" for m, s in avail))
                raise UserInputError(f"{TASKS_FILE}: task {t!r} has {col} {metric!r}, but "
                                     f"{TRIPLES_FILE} has no {metric!r} rows of it at split "
                                     f"{split!r} (it has {names}); set {col} to one of those "
                                     f"metrics or add the rows")

    def save(self, folder: str | os.PathLike, *, compression_level: int = 15) -> dict[str, int]:
        """Write this meta-dataset as one collection folder; returns ``{file: bytes}``.

        The tables are checked first (:meth:`validate`): an invalid meta-dataset raises a
        one-line :class:`~metanas.errors.UserInputError` and writes nothing. Each file is
        written atomically, with a plain ``open()``'s mode (``metanas.io``)."""
        from .io import atomic_write_bytes

        folder = Path(folder)
        try:
            self.validate()
        except UserInputError as exc:
            raise UserInputError(f"not saved to {folder}: {exc}") from None
        sizes = {}
        for fname, df in ((TASKS_FILE, self.tasks), (TRIPLES_FILE, self.triples),
                          (PROXIES_FILE, self.proxies)):
            if fname == PROXIES_FILE and not len(df):
                if (folder / fname).exists():
                    (folder / fname).unlink()
                continue
            data = table_to_parquet_bytes(df, _SCHEMAS[fname], compression_level=compression_level)
            atomic_write_bytes(folder / fname, data)
            sizes[fname] = len(data)
        return sizes


def _space_names() -> list[str]:
    from .spaces import names

    return list(names())


def _check_not_null(tasks: pd.DataFrame, triples: pd.DataFrame, proxies: pd.DataFrame) -> None:
    for fname, df in ((TASKS_FILE, tasks), (TRIPLES_FILE, triples), (PROXIES_FILE, proxies)):
        for col in _NOT_NULL[fname]:
            if fname == TRIPLES_FILE and col == "value":
                continue  # NaN is a non-finite value: _check_finite says so
            miss = df[col].isna().to_numpy()
            if miss.any():
                i = int(np.flatnonzero(miss)[0])
                t = df["task"].iloc[i]
                who = f"task {t!r}" if isinstance(t, str) else f"row {i + 1}"
                raise UserInputError(f"{fname}: {who} has no value in column {col!r} "
                                     f"({int(miss.sum())} empty cell(s) in that column); fill "
                                     f"them in or drop those rows")


def _check_finite(triples: pd.DataFrame) -> None:
    v = triples["value"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        r = triples.iloc[i]
        raise UserInputError(f"{TRIPLES_FILE}: task {r['task']!r} has value {v[i]} in column "
                             f"'value' (metric {r['metric']!r}, split {r['split']!r}, arch "
                             f"{r['arch']!r}; {int(bad.sum())} non-finite value(s) in all); "
                             f"replace them with finite numbers or drop those rows")


def _py(v):
    """A numpy scalar as the Python value (for messages: ``0``, not ``np.int32(0)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _check_unique(df: pd.DataFrame, key: list[str], value: str, fname: str, fix: str) -> None:
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return
    rows = df[dup]
    first = rows.iloc[0]
    same = rows[(rows[key] == first[key]).all(axis=1)][value]
    what = ", ".join(f"{k} {_py(first[k])!r}" for k in key[1:])
    vals = [_py(v) for v in same.tolist()]
    kind = ("with the same value" if len(set(map(repr, vals))) == 1 else
            f"with different {value}s {', '.join(map(repr, vals[:4]))}")
    raise UserInputError(f"{fname}: task {first['task']!r} has {len(vals)} rows for ({what}) "
                         f"{kind}; {fix}")


# ---------------------------------------------------------------------------- user tables
def _row_label(i: int) -> str:
    """``i`` 0-based data index -> 'data row i+1 (spreadsheet row i+2)'."""
    return f"data row {i + 1} (spreadsheet row {i + 2})"


def _blank(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x).strip() == ""


def _parse_number(text, where: str, column: str, *, nonnegative: bool = False) -> float:
    if _blank(text):
        raise UserInputError(f"{where}, column {column!r}: empty cell; fill in a finite number "
                             f"or delete the row")
    try:
        v = float(str(text).strip())
    except ValueError:
        raise UserInputError(f"{where}, column {column!r}: {str(text)!r} is not a number; write a "
                             f"plain decimal number such as 91.5") from None
    if not math.isfinite(v):
        raise UserInputError(f"{where}, column {column!r}: {str(text).strip()!r} is not finite; "
                             f"fill in a finite number or delete the row")
    if nonnegative and v < 0:
        raise UserInputError(f"{where}, column {column!r}: cost {v} is negative; costs are "
                             f"seconds >= 0")
    return v


def load_user_table(path: str | os.PathLike, space: str, metric: str,
                    report_metric: str | None = None, arch_column: str = "arch", *,
                    cost_column: str | None = None, task: str | None = None,
                    fidelity: int = UNKNOWN_FIDELITY) -> MetaDataset:
    """A user CSV as a one-task :class:`MetaDataset` (task id ``user/<file stem>``).

    The CSV has a header row, an architecture column (``arch_column``, the space's string
    form, e.g. ``|nor_conv_3x3~0|+|...|`` or ``(3, 1, 3, 0, 2, 3)``) and numeric columns.
    ``metric`` (higher is better) is stored at split ``valid`` and searched on;
    ``report_metric`` (optional) at split ``test`` and reported; ``cost_column`` (optional,
    seconds) as metric ``cost_s``. Every problem (missing file or column, unknown architecture
    string, empty / non-numeric / NaN / inf cell, repeated architecture) raises a
    :class:`~metanas.errors.UserInputError` whose one-line message names the row and column.
    """
    p = Path(path)
    sp = get_space(space)
    if not p.is_file():
        raise UserInputError(f"{p}: no such file; give the path of a CSV with a header row")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         skipinitialspace=True)
        if len(df.columns) == 1:  # a spreadsheet's semicolon- or tab-separated export
            sep = next((c for c in (";", "\t") if c in str(df.columns[0])), None)
            if sep is not None:
                df = pd.read_csv(p, dtype=str, keep_default_na=False, skip_blank_lines=False,
                                 skipinitialspace=True, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"{p.name}: not a readable CSV ({first}); save it as comma-separated "
                             f"UTF-8 text with a header row") from None
    df.columns = [str(c).strip() for c in df.columns]
    cols = [c for c in (arch_column, metric, report_metric, cost_column) if c is not None]
    if len(set(cols)) != len(cols):
        raise UserInputError(f"{p.name}: the architecture, metric, report and cost columns must "
                             f"be different columns (got {', '.join(map(repr, cols))})")
    for role, c in (("architecture", arch_column), ("metric", metric),
                    ("report metric", report_metric), ("cost", cost_column)):
        if c is not None and c not in df.columns:
            if role == "architecture":  # adapt.py --arch-column NAME (arch_column= here)
                guess = next((x for x in df.columns if "arch" in x.lower()), "NAME")
                import shlex

                fix = (f"rename the column to {c!r} or pass --arch-column "
                       f"{guess if guess == 'NAME' else shlex.quote(guess)}")
            else:
                flag = {"metric": "--metric", "report metric": "--report-metric"}.get(role)
                fix = ("rename the column or pass its name"
                       + (f" with {flag}" if flag else ""))
            raise UserInputError(f"{p.name}: no {role} column {c!r} in the header (columns: "
                                 f"{', '.join(map(repr, df.columns))}); {fix}")
    if not len(df):
        raise UserInputError(f"{p.name}: no data rows under the header; add one row per "
                             f"architecture")
    archs: list[str] = []
    seen: dict[tuple, int] = {}
    values = {c: [] for c in cols[1:]}
    for i, row in enumerate(df.itertuples(index=False)):
        rec = dict(zip(df.columns, row))
        where = f"{p.name}, {_row_label(i)}"
        text = rec[arch_column]
        if _blank(text):
            raise UserInputError(f"{where}, column {arch_column!r}: empty architecture; fill it "
                                 f"in or delete the row")
        try:
            a = sp.from_str(str(text))
        except InvalidArchitecture as exc:
            msg = " ".join(str(exc).split())
            raise UserInputError(f"{where}, column {arch_column!r}: {msg}") from None
        if a in seen:
            raise UserInputError(f"{p.name}: {_row_label(seen[a])} and {_row_label(i)} "
                                 f"(column {arch_column!r}) are the same architecture "
                                 f"{sp.to_str(a)!r}; keep one row per architecture (average "
                                 f"repeated runs)")
        seen[a] = i
        archs.append(sp.to_str(a))
        for c in values:
            values[c].append(_parse_number(rec[c], where, c, nonnegative=c == cost_column))
    tid = task or f"user/{p.stem}"
    src = f"user table {p.name}"
    parts = [(metric, "valid"), (report_metric, "test"), (cost_column, "valid")]
    frames = []
    for c, split in parts:
        if c is None:
            continue
        name = COST_METRIC if c == cost_column else c
        frames.append(pd.DataFrame({"task": tid, "space": sp.name, "arch": archs, "metric": name,
                                    "value": values[c], "fidelity": int(fidelity),
                                    "split": split, "source": src}))
    tasks = pd.DataFrame([{
        "task": tid, "space": sp.name,
        "description": f"user table {p.name}: {len(archs)} {sp.name} architectures, "
                       f"search on {metric!r}" + (f", report {report_metric!r}" if report_metric else ""),
        "n_classes": None, "class_ids": None, "sample_features": None,
        "default_metric": metric, "report_metric": report_metric,
        "source": str(p), "licence": "user-provided",
    }])
    md = MetaDataset(tasks, pd.concat(frames, ignore_index=True), None, name=tid)
    _register_user_table(tid, md)
    return md


def _user_table_sha1(md: MetaDataset) -> str:
    """Fingerprint of a user table's searched-metric content (archs and values)."""
    import hashlib

    t = md.table(md.task_ids()[0])
    return hashlib.sha1(pd.util.hash_pandas_object(t, index=True).to_numpy().tobytes()
                        ).hexdigest()


def _register_user_table(tid: str, md: MetaDataset) -> None:
    """``USER_TABLES[tid] = md`` (the latest wins) and, under ``_USER_CONTENTS[tid]``, every
    distinct content loaded with that id (two ``results.csv`` of other folders share the id
    ``user/results``); at most ``USER_CONTENTS_PER_ID`` per id, the oldest dropped."""
    USER_TABLES[tid] = md
    seen = _USER_CONTENTS.setdefault(tid, {})
    sha = _user_table_sha1(md)
    seen.pop(sha, None)  # re-loaded: now the latest
    seen[sha] = md
    while len(seen) > USER_CONTENTS_PER_ID:
        seen.pop(next(iter(seen)))


# ---------------------------------------------------------------------------- same task
#: the user tables ``load_user_table`` loaded, by task id (one per id: the latest wins): a
#: task-aware strategy is given only the benchmark's task id (``user/<stem>``), and
#: :func:`same_tasks` finds the table's content through it
USER_TABLES: dict[str, MetaDataset] = {}
#: per task id, the distinct contents (by ``_user_table_sha1``) loaded with it, oldest
#: first, at most ``USER_CONTENTS_PER_ID``: an id names several tables when CSVs of the same
#: stem in other folders were loaded, and :func:`same_tasks` then checks each of them (a
#: leak check must not pick the wrong one); pass the table itself to check only it
_USER_CONTENTS: dict[str, dict[str, MetaDataset]] = {}
USER_CONTENTS_PER_ID = 4
#: how ``metanas.train.build.task_record`` records a live task's ``TaskSpec`` id
_LIVE_DESCRIPTION = re.compile(r"^live training on (.+?): \d+ classes")
#: content match of a user table: at least this many shared archs, this share equal
SAME_MIN_ARCHS, SAME_MIN_EQUAL = 20, 0.9
#: the most decimals a content match compares at (``_decimals``)
SAME_MAX_DECIMALS = 6
LIVE_PREFIX = "dataset:"  # as metanas.benchmarks.live.PREFIX


def task_spec_id(text: str) -> str | None:
    """The normalised ``TaskSpec`` id of a live task (``"dataset:digits:classes=3,2:epochs=4"``
    or ``"digits:classes=2,3"`` -> ``"digits:classes=2,3"``; ``TrainConfig`` options
    dropped), ``None`` when ``text`` is no task spec."""
    from .train import TaskSpec, TrainConfig
    from dataclasses import fields

    t = str(text)
    if t.startswith(LIVE_PREFIX):
        t = t[len(LIVE_PREFIX):]
    try:
        spec, _ = TaskSpec.parse_with_extras(t, allowed_extra=[f.name for f in fields(TrainConfig)])
    except Exception:
        return None
    return spec.id


def live_specs(md: MetaDataset) -> dict[str, str]:
    """``{task id: TaskSpec id}`` of ``md``'s live-trained tasks (from the description
    ``metanas.train.build`` records; cached)."""
    cache = md.__dict__.get("_live_specs")
    if cache is None:
        cache = {}
        for tid, desc in zip(md.tasks["task"], md.tasks["description"]):
            m = _LIVE_DESCRIPTION.match(str(desc or ""))
            if m:
                cache[str(tid)] = m.group(1)
        md.__dict__["_live_specs"] = cache
    return cache


def _decimals(values: np.ndarray, most: int = SAME_MAX_DECIMALS) -> int:
    """The number of decimals ``values`` show: the fewest ``d <= most`` with every value a
    multiple of ``10**-d`` (up to float error); ``most`` for values of full precision."""
    v = values[np.isfinite(values)]
    for d in range(most + 1):
        if np.all(np.abs(v * 10.0 ** d - np.round(v * 10.0 ** d)) <= 1e-6):
            return d
    return most


def _content_matches(md: MetaDataset, table: pd.Series, space: str | None) -> list[str]:
    """Tasks of ``md`` whose searched-metric table (``default_metric`` at split ``valid``,
    any fidelity) has ``table``'s values on >= ``SAME_MIN_EQUAL`` of >= ``SAME_MIN_ARCHS``
    shared archs; equal to the precision ``table`` shows (``|a - b| <= 0.5 * 10**-d``, ``d``
    its decimals, at most ``SAME_MAX_DECIMALS``: a copy exported rounded is a copy)."""
    table = table[~table.index.duplicated()]
    if len(table) < SAME_MIN_ARCHS:
        return []
    tasks = md.tasks if space is None else md.tasks[md.tasks["space"] == space]
    metric = dict(zip(tasks["task"], tasks["default_metric"]))
    tr = md.triples
    tr = tr[tr["task"].isin(metric.keys()) & (tr["split"] == "valid")
            & tr["arch"].isin(table.index)]
    tr = tr[tr["metric"].to_numpy() == tr["task"].map(metric).to_numpy()]
    if not len(tr):
        return []
    # equal to the precision the user table shows (a CSV exported rounded to d decimals)
    tol = 0.5 * 10.0 ** -_decimals(table.to_numpy(dtype=float))
    eq = np.abs(tr["value"].to_numpy(dtype=float)
                - table.reindex(tr["arch"]).to_numpy(dtype=float)) <= tol * (1 + 1e-9)
    g = pd.DataFrame({"task": tr["task"].to_numpy(), "fidelity": tr["fidelity"].to_numpy(),
                      "eq": eq}).groupby(["task", "fidelity"], sort=True)["eq"].agg(["size", "sum"])
    hit = g[(g["size"] >= SAME_MIN_ARCHS) & (g["sum"] >= SAME_MIN_EQUAL * g["size"])]
    return sorted({str(t) for t, _ in hit.index})


def same_tasks(md: MetaDataset, target, space: str | None = None) -> list[str]:
    """The task ids of ``md`` that are the same task as ``target`` (sorted), for the
    not-a-transfer-setting checks of meta-learned methods.

    ``target``: a task id or unique short name of ``md`` (:meth:`MetaDataset.resolve_task`);
    a live task (``"dataset:<TaskSpec id>[:<TrainConfig option>]..."`` or a ``TaskSpec`` id):
    the live-trained tasks of ``md`` recorded with the same normalised ``TaskSpec`` (same
    data, classes and split; the training recipe may differ); a user table (a one-task
    ``MetaDataset``, a ``Series`` ``arch -> value``, or the id of a table
    :func:`load_user_table` loaded: the tasks with the same values as any table loaded
    with that id, see ``_USER_CONTENTS``): the tasks with the same values
    (``_content_matches``).
    ``space``: only tasks of that space.

    A task id's answer is cached on ``md`` (gone with it), per id, space and the contents
    loaded under that id (a content pass over the triples for a user table: once, not per
    seed or per check); a table or ``Series`` target is not cached.
    """
    if isinstance(target, MetaDataset):
        tid = target.task_ids()[0]
        return _content_matches(md, target.table(tid), space)
    if isinstance(target, pd.Series):
        return _content_matches(md, target, space)
    if target is None:
        return []
    text = str(target)
    if text in USER_TABLES and text not in _USER_CONTENTS:  # not registered: not cached
        return _same_tasks(md, text, space)
    cache = md.__dict__.setdefault("_same_tasks", {})
    key = (text, space, tuple(sorted(_USER_CONTENTS.get(text, ()))))
    if key not in cache:
        cache[key] = _same_tasks(md, text, space)
    return list(cache[key])


def _same_tasks(md: MetaDataset, text: str, space: str | None) -> list[str]:
    """:func:`same_tasks` of the task id ``text``, uncached."""
    if text in USER_TABLES and text not in md._task_pos:
        users = list((_USER_CONTENTS.get(text) or {text: USER_TABLES[text]}).values())
        return sorted({t for u in users
                       for t in _content_matches(md, u.table(u.task_ids()[0]), space)})
    out: set[str] = set()
    try:
        out.add(md.resolve_task(text))
    except UserInputError:
        pass
    if not out or text.startswith(LIVE_PREFIX):
        specs = live_specs(md)
        if specs:
            sid = task_spec_id(text)
            out.update(t for t, s in specs.items() if sid is not None and s == sid)
    if space is not None:
        keep = set(md.tasks["task"][md.tasks["space"] == space])
        out &= keep
    return sorted(out)


def task_keys(md: MetaDataset | None, task) -> set[str]:
    """What identifies ``task`` across naming schemes: its text, the ``md`` tasks it is the
    same as (:func:`same_tasks`) and its normalised ``TaskSpec`` id (a live task's own or the
    one a live-trained ``md`` task records)."""
    keys: set[str] = set()
    if isinstance(task, str):
        keys.add("id:" + task)
    ids = same_tasks(md, task) if md is not None else []
    keys.update("id:" + t for t in ids)
    specs = live_specs(md) if md is not None else {}
    keys.update("spec:" + specs[t] for t in ids if t in specs)
    if isinstance(task, str) and (task.startswith(LIVE_PREFIX) or not ids):
        sid = task_spec_id(task)
        if sid is not None:
            keys.add("spec:" + sid)
    return keys


def same_task_in(md: MetaDataset | None, target, names: Iterable[str]) -> list[str]:
    """The ``names`` (task ids of a meta-training run: meta-dataset ids or ``TaskSpec`` ids)
    that are the same task as ``target`` (see :func:`task_keys`), in their order."""
    if target is None:
        return []
    want = task_keys(md, target)
    return [n for n in names if task_keys(md, n) & want]


__all__ = ["MetaDataset", "MetaDatasetNotFound", "load_user_table", "list_collections",
           "shipped_root", "TASKS_SCHEMA", "TRIPLES_SCHEMA", "PROXIES_SCHEMA", "SPLITS",
           "FORMAT_VERSION", "COST_METRIC", "UNKNOWN_FIDELITY", "table_to_parquet_bytes",
           "same_tasks", "same_task_in", "task_keys", "task_spec_id", "USER_TABLES"]
