"""Log compaction (cleanup.policy=compact): keep the last record of every key.

One pass, like Kafka's LogCleaner:

1. The cleanable range is every closed segment (never the active one) up to the first segment
   whose records are younger than ``min.compaction.lag.ms``. Its dirty part starts at the offset in
   ``cleaner-offset-checkpoint`` (where the previous pass stopped). The pass runs only when the dirty
   bytes are at least ``min.cleanable.dirty.ratio`` of the cleanable bytes.
2. The dirty part is read once to build an offset map: key → offset of its last record.
3. Every cleanable segment is rewritten, in groups of consecutive segments whose sizes add up to
   at most ``segment.bytes``, into ``<base>.log.cleaned`` (+ ``.index.cleaned``,
   ``.timeindex.cleaned``). A record survives unless its key has a later offset in the map, or it
   is a tombstone (null value) in a segment whose largest timestamp is more than
   ``delete.retention.ms`` old. Records with a null key are kept. A batch whose records all
   survive is copied byte for byte; otherwise it is re-encoded with its original base offset,
   offset range, producer fields and compression, and its survivors' offset deltas (gaps are valid
   in record batch v2), so offsets and order never change. A batch with no survivor is dropped.
4. The swap is atomic: the cleaned files are fsynced, a manifest ``compaction-swap`` naming the new
   segment and the segments it replaces is written (fsync + rename: the commit point), the old
   files are unlinked, the cleaned files renamed into place, the directory fsynced and the manifest
   removed. On open, ``recover_interrupted_compaction`` finishes a swap whose manifest exists and
   deletes stray ``.cleaned`` files otherwise, so a crash at any moment loses nothing.

Readers keep working during a pass: they hold the old segments (whose descriptors stay open)
until they take the new segment list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storage.checkpoint import fsync_dir, read_offset_checkpoint, write_atomic, write_offset_checkpoint
from storage.records import BatchHeader, RecordIn, decode_batch, encode_batch, parse_header
from storage.segment import LogSegment, index_path, log_path, time_index_path

if TYPE_CHECKING:
    from storage.log import PartitionLog

__all__ = [
    "CLEANER_CHECKPOINT_FILE",
    "SWAP_MANIFEST_FILE",
    "CompactionStats",
    "clamp_cleaner_checkpoint",
    "compact_log",
    "recover_interrupted_compaction",
]

log = logging.getLogger(__name__)

CLEANER_CHECKPOINT_FILE = "cleaner-offset-checkpoint"
SWAP_MANIFEST_FILE = "compaction-swap"
CLEANED_SUFFIX = ".cleaned"
_READ_WINDOW = 8 << 20
MAX_OFFSET_MAP_KEYS = 2_000_000  # keys per pass; more dirty keys are cleaned over several passes


@dataclass(frozen=True, slots=True)
class CompactionStats:
    """What one compaction pass did."""

    first_dirty_offset: int
    cleaned_up_to: int  # the cleaner checkpoint after the pass
    dirty_ratio: float
    segments_before: int
    segments_after: int
    bytes_before: int
    bytes_after: int
    records_removed: int
    tombstones_removed: int


# ------------------------------------------------------------------------------------- recovery


def recover_interrupted_compaction(directory: Path) -> None:
    """Finish a swap whose manifest exists, else drop half-written ``.cleaned`` files."""
    manifest = directory / SWAP_MANIFEST_FILE
    if manifest.exists():
        try:
            plan = json.loads(manifest.read_text("utf-8"))
            base = int(plan["base"])
            replaces = [int(b) for b in plan["replaces"]]
        except (ValueError, KeyError, TypeError) as exc:
            # The manifest is written atomically after the cleaned files are durable; an unreadable
            # one means it never committed, so the originals are still authoritative.
            log.warning("ignoring unreadable compaction manifest in %s: %s", directory, exc)
            manifest.unlink()
        else:
            log.warning("completing an interrupted compaction swap in %s (segment %d)", directory, base)
            _swap_files(directory, base, replaces)
            manifest.unlink()
            fsync_dir(directory)
    for stray in directory.glob(f"*{CLEANED_SUFFIX}"):
        stray.unlink()


def _swap_files(directory: Path, base: int, replaces: Sequence[int]) -> None:
    for old in replaces:
        if old == base:
            continue
        for path in (log_path(directory, old), index_path(directory, old), time_index_path(directory, old)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    # the log file last: while it is still .cleaned the old segment at ``base`` stays readable
    for final in (index_path(directory, base), time_index_path(directory, base), log_path(directory, base)):
        cleaned = final.with_name(final.name + CLEANED_SUFFIX)
        if cleaned.exists():
            os.replace(cleaned, final)
    fsync_dir(directory)


def clamp_cleaner_checkpoint(directory: Path, log_end: int) -> None:
    """Keep the cleaner checkpoint at or below the log end (after a truncation)."""
    path = directory / CLEANER_CHECKPOINT_FILE
    value = read_offset_checkpoint(path)
    if value is not None and value > log_end:
        write_offset_checkpoint(path, log_end)


# ------------------------------------------------------------------------------------ compaction


def _iter_batches(seg: LogSegment, end: int) -> Iterator[tuple[BatchHeader, bytes]]:
    """(header, bytes) of the whole batches of a segment, reading it in large windows."""
    pos = 0
    while pos < end:
        buf = seg.pread(min(_READ_WINDOW, end - pos), pos)
        off = 0
        n = len(buf)
        while off + 61 <= n:
            header = parse_header(buf, off)
            size = header.size
            if off + size > n:
                if off == 0:
                    buf = seg.pread(size, pos)
                    n = len(buf)
                    if n < size:
                        return
                    continue
                break
            yield header, buf[off : off + size]
            off += size
        if off == 0:
            return
        pos += off


def compact_log(plog: PartitionLog, now_ms: int, max_offset: int | None = None) -> CompactionStats | None:
    """Run one compaction pass over ``plog`` (see the module docstring); None if nothing to do.

    ``max_offset`` bounds the pass: only segments that end at or below it are cleaned, and only
    their records can supersede others, so nothing at or past ``max_offset`` makes an earlier
    record go (the broker passes the changelog position a ``compaction.guard.group`` committed).
    """
    config = plog.config
    directory = plog.directory
    with plog._lock:
        view = plog._view
        log_start = plog.log_start_offset
        truncations = plog._commit.generation
    segments = view.segments
    closed = segments[:-1]
    upper = len(closed)
    if config.min_compaction_lag_ms > 0:
        horizon = now_ms - config.min_compaction_lag_ms
        for i, seg in enumerate(closed):
            if seg.closed_max_timestamp() > horizon:
                upper = i
                break
    if max_offset is not None:
        for i in range(upper):
            if segments[i + 1].base_offset > max_offset:
                upper = i
                break
    cleanable = closed[:upper]
    if not cleanable:
        return None
    end_offset = segments[upper].base_offset
    checkpoint = read_offset_checkpoint(directory / CLEANER_CHECKPOINT_FILE)
    first_dirty = max(checkpoint if checkpoint is not None else log_start, log_start)
    if first_dirty >= end_offset:
        return None
    total_bytes = sum(s.size for s in cleanable)
    bounds = [s.base_offset for s in segments[1 : upper + 1]]  # exclusive upper offset of each
    dirty_segments = [s for s, hi in zip(cleanable, bounds, strict=False) if hi > first_dirty]
    dirty_bytes = sum(s.size for s in dirty_segments)
    ratio = dirty_bytes / total_bytes if total_bytes else 0.0
    if dirty_bytes == 0 or ratio < config.min_cleanable_dirty_ratio:
        return None

    offset_map: dict[bytes, int] = {}
    for i, seg in enumerate(dirty_segments):
        for header, batch in _iter_batches(seg, seg.size):
            if header.last_offset < first_dirty:
                continue
            for record in decode_batch(batch):
                if record.key is not None:
                    offset_map[record.key] = record.offset
        if len(offset_map) > MAX_OFFSET_MAP_KEYS and i + 1 < len(dirty_segments):
            # Bound the map's memory (Kafka's log.cleaner.dedupe.buffer.size): clean up to here
            # now and leave the remaining dirty segments to the next pass.
            stop = dirty_segments[i + 1].base_offset
            upper = next(j for j, s in enumerate(segments) if s.base_offset == stop)
            cleanable = closed[:upper]
            end_offset = stop
            break
    bytes_before = sum(s.size for s in cleanable)

    tombstone_horizon = now_ms - config.delete_retention_ms
    groups = _group(cleanable, config.segment_bytes)
    removed = tombstones = 0
    bytes_after = 0
    new_segments: list[LogSegment] = []
    replaced: list[tuple[list[LogSegment], LogSegment]] = []
    for group in groups:
        cleaned, r, t = _clean_group(plog, group, offset_map, tombstone_horizon)
        removed += r
        tombstones += t
        replaced.append((group, cleaned))
        new_segments.append(cleaned)
        bytes_after += cleaned.size

    with plog._lock:
        current = plog._view.segments
        present = {id(seg) for seg in current}
        if (
            plog.closed
            or plog._commit.generation != truncations
            or any(id(seg) not in present for g, _c in replaced for seg in g)
        ):
            # retention or a truncation changed the log meanwhile: drop this pass's output
            for _g, cleaned in replaced:
                cleaned.close()
                for p in _cleaned_paths(directory, cleaned.base_offset):
                    p.unlink(missing_ok=True)
            return None
        doomed = {id(s) for g, _c in replaced for s in g}
        for g, _c in replaced:
            for seg in g:
                # readers still holding an old segment must not lazily load the new index files
                seg.offset_index.lookup(seg.base_offset)
                seg.time_index.last_entry()
                seg.time_index.scan_start(0)
        result: list[LogSegment] = []
        inserted = False
        for seg in current:
            if id(seg) in doomed:
                if not inserted:
                    result.extend(new_segments)
                    inserted = True
                continue
            result.append(seg)
        for group, cleaned in replaced:
            _commit_swap(directory, group, cleaned)
        write_offset_checkpoint(directory / CLEANER_CHECKPOINT_FILE, end_offset)
        from storage.log import _View

        plog._view = _View.of(result)
    stats = CompactionStats(
        first_dirty_offset=first_dirty,
        cleaned_up_to=end_offset,
        dirty_ratio=ratio,
        segments_before=len(cleanable),
        segments_after=len(new_segments),
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        records_removed=removed,
        tombstones_removed=tombstones,
    )
    log.info("compacted %s: %s", directory, stats)
    return stats


def _group(segments: Sequence[LogSegment], max_bytes: int) -> list[list[LogSegment]]:
    groups: list[list[LogSegment]] = []
    current: list[LogSegment] = []
    size = 0
    for seg in segments:
        if current and size + seg.size > max_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(seg)
        size += seg.size
    if current:
        groups.append(current)
    return groups


def _cleaned_paths(directory: Path, base: int) -> list[Path]:
    return [
        p.with_name(p.name + CLEANED_SUFFIX)
        for p in (log_path(directory, base), index_path(directory, base), time_index_path(directory, base))
    ]


def _clean_group(
    plog: PartitionLog,
    group: Sequence[LogSegment],
    offset_map: dict[bytes, int],
    tombstone_horizon: int,
) -> tuple[LogSegment, int, int]:
    config = plog.config
    directory = plog.directory
    base = group[0].base_offset
    for p in _cleaned_paths(directory, base):
        p.unlink(missing_ok=True)
    out = LogSegment(
        directory,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_entries=max(1, config.segment_index_bytes // 8),
        create=True,
        suffix=CLEANED_SUFFIX,
    )
    removed = tombstones = 0
    for seg in group:
        drop_tombstones = seg.closed_max_timestamp() < tombstone_horizon
        for header, batch in _iter_batches(seg, seg.size):
            records = decode_batch(batch)
            survivors = []
            for r in records:
                key = r.key
                if key is not None and offset_map.get(key, -1) > r.offset:
                    continue
                if r.value is None and drop_tombstones:
                    tombstones += 1
                    continue
                survivors.append(r)
            removed += len(records) - len(survivors)
            if not survivors:
                continue
            if len(survivors) != len(records):
                batch = encode_batch(
                    [RecordIn(r.value, r.key, r.headers, r.timestamp, r.attributes) for r in survivors],
                    base_offset=header.base_offset,
                    now_ms=header.max_timestamp,
                    compression=header.compression,
                    timestamp_type=header.timestamp_type,
                    producer_id=header.producer_id,
                    producer_epoch=header.producer_epoch,
                    base_sequence=header.base_sequence,
                    partition_leader_epoch=header.partition_leader_epoch,
                    offset_deltas=[r.offset - header.base_offset for r in survivors],
                    last_offset_delta=header.last_offset_delta,
                )
            out.append(batch, header.base_offset, header.last_offset, parse_header(batch).max_timestamp)
    # the cleaned segment must be durable before the manifest commits the swap
    out.seal_indexes()
    out.sync_index_files()
    out.fsync()
    return out, removed, tombstones


def _commit_swap(directory: Path, group: Sequence[LogSegment], cleaned: LogSegment) -> None:
    base = cleaned.base_offset
    write_atomic(
        directory / SWAP_MANIFEST_FILE,
        json.dumps({"base": base, "replaces": [s.base_offset for s in group]}).encode(),
    )
    _swap_files(directory, base, [s.base_offset for s in group])
    cleaned.offset_index.path = index_path(directory, base)
    cleaned.time_index.path = time_index_path(directory, base)
    (directory / SWAP_MANIFEST_FILE).unlink()
    fsync_dir(directory)
