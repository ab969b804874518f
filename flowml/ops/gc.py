"""``flowml gc``: delete the artifacts (and, on request, the rows) of runs deleted long enough ago.

:meth:`GarbageCollector.plan` reads the store once and decides, per deleted run and logged model,
which subtrees must stay; :meth:`GarbageCollector.run` lists (dry run) or deletes them.

What protects (never deleted):

* A live model version: its location (``storage_location`` or ``source``, with ``runs:/``,
  ``models:/`` and ``mlflow-artifacts:/`` resolved) keeps that *subtree* of a deleted run (a
  version of ``runs:/<id>/model`` keeps ``model/``, the run's other files go) or the whole logged
  model it points into. A run named by a version's ``run_id`` keeps its rows (lineage), and all of
  its files when the version's location cannot be resolved.
* A live deployment record (PENDING / SERVING) protects its version the same way, even after the
  version was deleted from the registry (the location comes from the outbox's creation event).
* Guards: nothing under an active run, an active logged model or an experiment's root is removed.

Before a run's files go it is re-read: a run restored (or newly registered) since the plan is skipped.
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from flowml.artifacts.sweep import SweepResult, canonical_location, is_within, sweep
from flowml.exceptions import FlowmlError, InvalidParameterValue
from flowml.ops._common import open_existing_store, s3_client
from flowml.store import gc as store_gc

__all__ = ["GarbageCollector", "GcPlan", "GcReport", "ItemPlan", "Outcome", "parse_older_than"]

logger = logging.getLogger(__name__)

_OLDER_THAN = re.compile(
    r"^((?P<days>[.\d]+?)d)?((?P<hours>[.\d]+?)h)?((?P<minutes>[.\d]+?)m)?((?P<seconds>[.\d]+?)s)?$"
)
_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")
_LOGGED_MODEL_URI = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]{32})(?:/(?P<path>.*))?$")
_ROW_CHUNK = 500


def parse_older_than(text: str | None) -> int | None:
    """MLflow's ``#d#h#m#s`` (floats allowed: ``1.5d``) → milliseconds; None stays None."""
    if text is None:
        return None
    match = _OLDER_THAN.match(text.strip())
    if not text.strip() or match is None:
        raise InvalidParameterValue(
            f"Could not parse any time information from '{text}'. Examples of valid strings: "
            "'8h', '2d8h5m20s', '2m4s'"
        )
    try:
        parts = {name: float(value) for name, value in match.groupdict().items() if value}
    except ValueError:
        raise InvalidParameterValue(f"Could not parse any time information from '{text}'.") from None
    return int(timedelta(**parts).total_seconds() * 1000)


@dataclass(slots=True)
class ItemPlan:
    """One deleted run or logged model: where its files are and what of them must stay."""

    kind: str  # "run" | "logged model"
    id: str
    experiment_id: str
    uri: str
    location: str | None  # canonical; None when it cannot be resolved (the item is skipped)
    keep: tuple[str, ...] = ()  # relative subtrees that stay; ("",) keeps everything
    protected_by: list[str] = field(default_factory=list)
    keep_rows: bool = False


@dataclass(slots=True)
class GcPlan:
    threshold_ms: int | None
    items: list[ItemPlan]
    experiment_ids: list[str]
    warnings: list[str]


@dataclass(slots=True)
class Outcome:
    item: ItemPlan
    result: SweepResult | None = None
    skipped: str | None = None
    error: str | None = None


@dataclass(slots=True)
class GcReport:
    dry_run: bool
    outcomes: list[Outcome]
    rows: dict[str, int]
    warnings: list[str]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]


class _RefIndex:
    """Canonical reference locations: which lie inside a location, which contain it."""

    def __init__(self) -> None:
        self._sorted: list[tuple[str, store_gc.Reference]] = []
        self._by_location: dict[str, list[store_gc.Reference]] = defaultdict(list)
        self.by_run: dict[str, list[tuple[store_gc.Reference, str | None]]] = defaultdict(list)

    def add(self, ref: store_gc.Reference, location: str | None) -> None:
        if location is not None:
            self._sorted.append((location, ref))
            if not ref.guard:
                self._by_location[location].append(ref)
        if ref.run_id and not ref.guard:
            self.by_run[ref.run_id].append((ref, location))

    def freeze(self) -> None:
        self._sorted.sort(key=lambda pair: pair[0])
        self._keys = [loc for loc, _ in self._sorted]

    def inside(self, root: str) -> list[tuple[str, store_gc.Reference]]:
        out = []
        for i in range(bisect.bisect_left(self._keys, root), len(self._keys)):
            loc, ref = self._sorted[i]
            if not loc.startswith(root):
                break
            if is_within(loc, root):
                out.append((loc[len(root) + 1 :] if loc != root else "", ref))
        return out

    def containing(self, root: str) -> list[store_gc.Reference]:
        out: list[store_gc.Reference] = []
        path = root
        while True:
            head, sep, _tail = path.rpartition("/")
            if not sep or head in ("", "s3:/", "s3:"):
                return out
            path = head
            out.extend(self._by_location.get(path, []))


class GarbageCollector:
    """gc over the store at ``backend_store_uri``. Building it does no I/O.

    ``artifacts_destination`` resolves ``mlflow-artifacts:/`` URIs (what ``flowml server`` gives runs
    when it proxies artifacts); ``s3_client`` may be passed in (else one is made for
    ``s3_endpoint_url`` on first use).
    """

    def __init__(
        self,
        backend_store_uri: str,
        *,
        artifacts_destination: str | None = None,
        s3_endpoint_url: str | None = None,
        s3_client: Any = None,
    ) -> None:
        self.uri = backend_store_uri
        self.artifacts_destination = artifacts_destination
        self.s3_endpoint_url = s3_endpoint_url
        self._s3 = s3_client
        self._db: Any = None
        self._paths: dict[str, str] = {}  # realpath cache, one per plan

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = open_existing_store(self.uri)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def _s3_client(self) -> Any:
        if self._s3 is None:
            self._s3 = s3_client(self.s3_endpoint_url)
        return self._s3

    # -- planning -------------------------------------------------------------------------------
    def _resolve(self, session: Session, uri: str | None, depth: int = 0) -> str | None:
        if not uri or depth > 3:
            return None
        if match := _RUNS_URI.match(uri):
            base = store_gc.run_artifact_uris(session, [match["run_id"]]).get(match["run_id"])
            return self._resolve(session, _join(base, match["path"]), depth + 1) if base else None
        if match := _LOGGED_MODEL_URI.match(uri):
            base = store_gc.model_locations(session, [match["model_id"]]).get(match["model_id"])
            return self._resolve(session, _join(base, match["path"]), depth + 1) if base else None
        if uri.startswith("models:/"):
            return self._resolve(session, store_gc.model_uri_location(session, uri), depth + 1)
        if uri.startswith("mlflow-artifacts:"):
            from flowml.artifacts.http import proxy_path

            if self.artifacts_destination is None:
                return None
            try:
                return canonical_location(_join(self.artifacts_destination, proxy_path(uri)), self._paths)
            except InvalidParameterValue:
                return None
        return canonical_location(uri, self._paths)

    def plan(
        self,
        older_than: str | None = None,
        *,
        run_ids: Sequence[str] = (),
        experiment_ids: Sequence[str] = (),
        now_ms: int | None = None,
    ) -> GcPlan:
        """What a run would delete and keep, and why (reads only)."""
        delta = parse_older_than(older_than)
        self._paths = {}
        threshold = None if delta is None else (now_ms or time.time_ns() // 1_000_000) - delta
        with self.db.read() as session:
            found = store_gc.find_candidates(
                session, threshold_ms=threshold, run_ids=run_ids, experiment_ids=experiment_ids
            )
            index, warnings = _RefIndex(), []
            for ref in store_gc.find_references(session, {m.model_id for m in found.models}):
                location = self._resolve(session, ref.location)
                index.add(ref, location)
                if location is None and not ref.guard and ref.run_id is None:
                    warnings.append(f"{ref.reason}: cannot tell which files it uses ({ref.location!r})")
            index.freeze()
            items = [
                self._item(session, "run", c.run_id, c.experiment_id, c.artifact_uri, index, c.run_id)
                for c in found.runs
            ]
            items += [
                self._item(session, "logged model", m.model_id, m.experiment_id, m.artifact_location, index)
                for m in found.models
            ]
        proxied = [i.uri for i in items if i.uri.startswith("mlflow-artifacts:")] + [
            w for w in warnings if "'mlflow-artifacts:" in w
        ]
        if proxied and self.artifacts_destination is None:  # cannot see what they use: delete nothing
            raise InvalidParameterValue(
                f"{len(proxied)} item(s) or model versions use mlflow-artifacts: URIs (e.g. {proxied[0]!r}); "
                "pass --artifacts-destination (the server's) so gc can resolve them"
            )
        for item in items:
            if item.location is None:
                warnings.append(f"{item.kind} {item.id}: cannot resolve {item.uri!r}; skipped")
        return GcPlan(threshold, items, found.experiment_ids, warnings)

    def _item(
        self, session: Session, kind: str, item_id: str, exp_id: str, uri: str, index: _RefIndex,
        run_id: str | None = None,
    ) -> ItemPlan:  # fmt: skip
        item = ItemPlan(kind, item_id, exp_id, uri, self._resolve(session, uri))
        if item.location is None:
            return item
        keep: set[str] = set()
        for rel, ref in index.inside(item.location):
            keep.add(rel)
            item.protected_by.append(f"{ref.reason} uses {rel or 'all of it'}")
            item.keep_rows = item.keep_rows or not ref.guard
        for ref in index.containing(item.location):
            keep.add("")
            item.protected_by.append(f"{ref.reason} uses a directory that contains it")
            item.keep_rows = True
        for ref, location in index.by_run.get(run_id or "", []):
            item.keep_rows = True
            if location is None:
                keep.add("")
                item.protected_by.append(f"{ref.reason} names this run, its files are unknown")
            elif not is_within(location, item.location):
                item.protected_by.append(f"{ref.reason} names this run (rows kept)")
        item.keep = ("",) if "" in keep else tuple(sorted(keep))
        return item

    # -- running --------------------------------------------------------------------------------
    def run(self, plan: GcPlan, *, dry_run: bool = True, delete_rows: bool = False) -> GcReport:
        """Carry out ``plan`` (or, with ``dry_run``, only list what it would delete)."""
        outcomes = [self._sweep(item, dry_run) for item in plan.items]
        done = [o.item for o in outcomes if o.result is not None and not o.item.keep_rows]
        runs = [i.id for i in done if i.kind == "run"]
        models = [i.id for i in done if i.kind == "logged model" and not i.keep]
        rows: dict[str, int] = {}
        if delete_rows and dry_run:  # what would go (experiments: at most, only those left empty)
            rows = {"runs": len(runs), "logged_models": len(models), "experiments": len(plan.experiment_ids)}
        elif delete_rows:
            rows = self._delete_rows(runs, models, plan.experiment_ids)
        return GcReport(dry_run, outcomes, rows, list(plan.warnings))

    def _sweep(self, item: ItemPlan, dry_run: bool) -> Outcome:
        if item.location is None:
            return Outcome(item, skipped="location cannot be resolved")
        if item.kind == "run" and not dry_run:
            with self.db.read() as session:
                deleted, named = store_gc.run_state(session, item.id)
            if not deleted:
                return Outcome(item, skipped="no longer deleted (restored since the plan)")
            if named and not item.keep_rows:
                return Outcome(item, skipped="a model version names it now (registered since the plan)")
        if item.kind == "logged model" and not dry_run:
            with self.db.read() as session:
                if not store_gc.model_collectable(session, item.id):
                    return Outcome(item, skipped="neither it nor its experiment is deleted any more")
        try:
            client = self._s3_client() if item.location.startswith("s3://") else None
            result = sweep(item.location, item.keep, dry_run=dry_run, s3_client=client)
        except (FlowmlError, OSError) as exc:
            logger.warning("gc of %s %s failed: %s", item.kind, item.id, exc)
            return Outcome(item, error=f"{type(exc).__name__}: {exc}")
        if not dry_run:
            logger.info(
                "gc %s %s: deleted %d file(s), kept %d", item.kind, item.id, result.files, result.kept_files
            )
        return Outcome(item, result=result)

    def _delete_rows(self, runs: list[str], models: list[str], experiments: list[str]) -> dict[str, int]:
        totals = {"runs": 0, "logged_models": 0, "experiments": 0}
        for start in range(0, max(len(runs), len(models)), _ROW_CHUNK):
            r, m = runs[start : start + _ROW_CHUNK], models[start : start + _ROW_CHUNK]
            counts = self.db.write(partial(store_gc.hard_delete, run_ids=r, model_ids=m, experiment_ids=[]))
            for key, value in counts.items():
                totals[key] += value
        if experiments:
            counts = self.db.write(
                lambda s: store_gc.hard_delete(s, run_ids=[], model_ids=[], experiment_ids=experiments)
            )
            totals["experiments"] = counts["experiments"]
        return totals


def _join(base: str | None, path: str | None) -> str:
    base = base or ""
    return base.rstrip("/") + "/" + path.strip("/") if path and path.strip("/") else base
