"""Loading a partition directory's segments, with crash recovery.

After a clean shutdown (the ``.clean_shutdown`` marker is present) the indexes are trusted: only
the tail of the active segment after its last index entry is read, to find the log end. After an
unclean one every segment from the one containing the recovery point onwards is re-validated
batch by batch (length, magic, CRC-32C, offsets increasing); the log is truncated at the first
invalid byte (a warning is logged), later segments are deleted and the scanned segments' indexes
rebuilt. In both cases every other segment's index files get a cheap consistency check (whole
entries, last entry inside the log) and are rebuilt from the batch headers when it fails.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from storage.config import LogConfig
from storage.fileops import OS_FILE_OPS, FileOps
from storage.segment import LogSegment

__all__ = ["RecoveryStats", "load_segments"]

log = logging.getLogger(__name__)

_SEGMENT_LOG = re.compile(r"^(\d{20})\.log$")
_SEGMENT_INDEX = re.compile(r"^(\d{20})\.(index|timeindex)$")


@dataclass(frozen=True, slots=True)
class RecoveryStats:
    """What opening the log did: ``clean`` means the marker was found and nothing was scanned."""

    clean: bool
    scanned_segments: int = 0
    scanned_bytes: int = 0
    truncated_bytes: int = 0
    deleted_segments: int = 0
    rebuilt_indexes: int = 0


def load_segments(
    directory: Path,
    config: LogConfig,
    *,
    log_start: int,
    recovery_point: int,
    clean: bool,
    ops: FileOps = OS_FILE_OPS,
) -> tuple[list[LogSegment], RecoveryStats]:
    """Open every segment of ``directory`` in offset order, recovering it when ``clean`` is False."""
    bases: list[int] = []
    index_files: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        m = _SEGMENT_LOG.match(path.name)
        if m:
            bases.append(int(m.group(1)))
            continue
        m = _SEGMENT_INDEX.match(path.name)
        if m:
            index_files.append((int(m.group(1)), path))
    bases.sort()
    known = set(bases)
    for base, path in index_files:
        if base not in known:
            path.unlink()  # an index whose segment is gone (a crash during deletion)
    max_entries = max(1, config.segment_index_bytes // 8)
    segments = [
        LogSegment(
            directory,
            base,
            index_interval_bytes=config.index_interval_bytes,
            max_index_entries=max_entries,
            ops=ops,
        )
        for base in bases
    ]
    deleted = 0
    # segments wholly below the log start (a crash between the checkpoint and the deletion)
    while len(segments) > 1 and segments[1].base_offset <= log_start:
        segments.pop(0).unlink()
        deleted += 1
    if not segments:
        return [], RecoveryStats(clean=clean)

    rebuilt = 0
    first_scanned = len(segments) - 1
    if not clean:
        first_scanned = 0
        for i, seg in enumerate(segments):
            if seg.base_offset <= recovery_point:
                first_scanned = i
    for seg in segments[:first_scanned] if not clean else segments:
        if not seg.offset_index.is_consistent(seg.size) or not seg.time_index.is_consistent():
            log.warning("rebuilding the indexes of %s", seg.log_path)
            seg.rebuild_indexes()
            rebuilt += 1

    scanned_segments = 0
    scanned_bytes = 0
    truncated = 0
    if clean:
        segments[-1].load_tail()
    else:
        expected = segments[first_scanned].base_offset
        for i in range(first_scanned, len(segments)):
            seg = segments[i]
            scanned_segments += 1
            scanned_bytes += seg.size
            cut, headers = seg.recover(expected, max(config.max_message_bytes, 128 << 20))
            # rebuilt indexes and revalidated data are not known to be on disk: the next flush
            # fsyncs both before the recovery point moves past this segment
            seg.flushed_size = 0
            seg.needs_index_sync = True
            if i < len(segments) - 1 and not cut:
                seg.offset_index.unload()
                seg.time_index.unload()
            if headers:
                expected = seg.next_offset
            truncated += cut
            if cut:
                for later in segments[i + 1 :]:
                    log.warning("deleting %s, which follows a truncated segment", later.log_path)
                    truncated += later.size
                    later.unlink()
                    later.close()
                    deleted += 1
                del segments[i + 1 :]
                break
        # Empty segments left in the middle by a crash before the next segment's first write
        # are harmless, but an empty last segment followed by nothing is the active one.
    stats = RecoveryStats(
        clean=clean,
        scanned_segments=scanned_segments,
        scanned_bytes=scanned_bytes,
        truncated_bytes=truncated,
        deleted_segments=deleted,
        rebuilt_indexes=rebuilt,
    )
    return segments, stats
