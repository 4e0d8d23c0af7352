"""Type stubs of ragsnap's extension module (the names are re-exported by ``ragsnap``)."""

import os
import pathlib
from typing import Any, Dict, List, Literal, Optional, Sequence, Union

_Path = Union[str, os.PathLike[str]]
_Mode = Literal["dense", "lexical", "hybrid"]

__version__: str

class Error(Exception):
    """Base class of every error ragsnap raises for a failure of the library."""

class EmbeddingVersionMismatch(Error):
    """The snapshot was built with another embedding model identity than the one loaded."""

class EmbeddingDrift(Error):
    """Same model identity, different vectors: the runtime or a library drifted."""

class CorruptSnapshot(Error):
    """A snapshot or the catalog fails its checks; nothing from it is served."""

class StoreLocked(Error):
    """Another writer holds the store's lock."""

class InvalidRequest(Error, ValueError):
    """A request that cannot be served as asked (a setting out of range, an empty query...)."""

class Hit:
    """One hit: the chunk, where it comes from, and what each signal said about it."""

    @property
    def score(self) -> float:
        """Cosine similarity to the query (the lexical coverage in lexical mode)."""
    @property
    def text(self) -> str:
        """Chunk text (header path line, blank line, body)."""
    @property
    def source_path(self) -> str:
        """Source document path, relative to the source folder."""
    @property
    def url(self) -> Optional[str]:
        """Source URL, when the build knew one."""
    @property
    def header_path(self) -> List[str]:
        """Headers above the chunk, outermost first."""
    @property
    def content_id(self) -> str:
        """Content id of the chunk text."""
    @property
    def cosine(self) -> Optional[float]:
        """Cosine similarity (None in lexical mode)."""
    @property
    def lexical(self) -> Optional[float]:
        """BM25 score (None in dense mode)."""
    @property
    def lexical_coverage(self) -> Optional[float]:
        """Share of the query's IDF mass the chunk holds, 0 to 1."""
    @property
    def fused(self) -> Optional[float]:
        """Reciprocal-rank-fusion score (hybrid mode)."""
    @property
    def confidence(self) -> float:
        """How confident the floors are in the hit (0.5 to 1 for a returned hit)."""
    @property
    def supported_by(self) -> List[str]:
        """Signals that cleared their floor: "dense", "lexical" or both."""
    @property
    def dense_rank(self) -> Optional[int]: ...
    @property
    def lexical_rank(self) -> Optional[int]: ...
    @property
    def cosine_margin(self) -> Optional[float]:
        """Cosine minus the cosine floor that applied."""
    @property
    def coverage_margin(self) -> Optional[float]:
        """Lexical coverage minus the lexical floor."""
    @property
    def matched_terms(self) -> List[str]: ...
    @property
    def exact_matches(self) -> List[str]: ...
    @property
    def missing_identifiers(self) -> List[str]: ...
    @property
    def snapshot_id(self) -> str:
        """The snapshot the hit comes from."""
    def to_dict(self) -> Dict[str, Any]:
        """Every field as a dict."""

class QueryResult:
    """A query's result: which snapshot answered, whether it refused, and the hits."""

    @property
    def snapshot_id(self) -> str: ...
    @property
    def fingerprint_id(self) -> str: ...
    @property
    def mode(self) -> _Mode: ...
    @property
    def refused(self) -> bool:
        """True when nothing cleared the floors (then ``hits`` is empty and ``reason`` says why)."""
    @property
    def best_score(self) -> Optional[float]:
        """Best cosine seen (the best candidate's on a refusal)."""
    @property
    def confidence(self) -> float:
        """Confidence of the best hit, or on a refusal the best candidate's (below 0.5)."""
    @property
    def reason(self) -> Optional[Dict[str, Any]]:
        """Why the query was refused; None when it was answered."""
    @property
    def floor(self) -> float: ...
    @property
    def lexical_floor(self) -> Optional[float]: ...
    @property
    def floor_source(self) -> Literal["caller", "snapshot", "model"]: ...
    @property
    def identifiers(self) -> List[str]: ...
    @property
    def hits(self) -> List[Hit]:
        """The hits, best first (empty on a refusal)."""
    def to_dict(self) -> Dict[str, Any]:
        """The whole result as a dict, as ``ragsnap query --json`` prints it."""
    def __len__(self) -> int: ...

class Searcher:
    """Searches one snapshot of a store with a model checked against it. Thread-safe."""

    def __init__(
        self,
        store: _Path,
        snapshot: str = "HEAD",
        *,
        model_dir: Optional[_Path] = None,
        ort_lib: Optional[_Path] = None,
        config: Optional[_Path] = None,
        lexical_only: bool = False,
    ) -> None: ...
    @staticmethod
    def open(
        store: _Path,
        snapshot: str = "HEAD",
        *,
        model_dir: Optional[_Path] = None,
        ort_lib: Optional[_Path] = None,
        config: Optional[_Path] = None,
        lexical_only: bool = False,
    ) -> "Searcher":
        """Open a snapshot read-only and load the model, found as the ``ragsnap`` binary finds it."""
    def query(
        self,
        text: str,
        k: Optional[int] = None,
        mode: Optional[_Mode] = None,
        floor: Optional[float] = None,
        *,
        floor_percentile: Optional[float] = None,
        lexical_floor: Optional[float] = None,
        rrf_k: Optional[float] = None,
        ef: Optional[int] = None,
        max_per_source: Optional[int] = None,
        max_k: Optional[int] = None,
    ) -> QueryResult:
        """Answer ``text``; a refusal is a result with ``refused == True``."""
    def refresh(self) -> bool:
        """Switch to the store's current head if it moved; returns whether it switched."""
    def follow(self, interval: float = 1.0) -> None:
        """Refresh in a background thread every ``interval`` seconds."""
    def stop_following(self) -> None: ...
    @property
    def following(self) -> bool: ...
    @property
    def last_refresh_error(self) -> Optional[str]: ...
    @property
    def snapshot_id(self) -> str: ...
    @property
    def fingerprint_id(self) -> str: ...
    @property
    def store_path(self) -> pathlib.Path: ...
    def __enter__(self) -> "Searcher": ...
    def __exit__(self, *args: Any) -> bool: ...

class Store:
    """A store opened read-only; each call reads the catalog afresh."""

    def __init__(self, path: _Path) -> None: ...
    @property
    def path(self) -> pathlib.Path: ...
    def head(self) -> Dict[str, Any]: ...
    def snapshots(self) -> List[Dict[str, Any]]: ...
    def history(self) -> List[Dict[str, Any]]: ...
    def resolve(self, spec: str) -> str: ...

def rebuild(store: _Path, source: Union[_Path, Sequence[_Path]], **settings: Any) -> Dict[str, Any]:
    """Build, gate and (when every gate passes) promote a snapshot; returns the report."""

def rollback(
    store: _Path,
    to: Optional[str] = None,
    *,
    steps: int = 1,
    reason: str = "rolled back from Python",
    allow_model_change: bool = False,
) -> Dict[str, str]:
    """Move head back (verified first); returns ``{"from", "to", "reason"}``."""
