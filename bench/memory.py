"""Peak resident memory of this process, measured by the kernel.

Linux keeps a high-water mark of each process's resident set (VmHWM in /proc/self/status),
and writing "5" to /proc/self/clear_refs resets it to the current RSS (Linux >= 4.0). So a
stage that runs in a fresh process can be measured exactly: reset after the imports, run,
read the mark. It counts every byte the process touches (numpy, Arrow, SQLite, xlsxwriter
buffers), not only Python allocations as tracemalloc would. Where clear_refs is not
available, `resettable()` is False and the peak falls back to ru_maxrss (the whole process).
"""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Resident set size now, bytes."""
    kib = _status_kib("VmRSS")
    return (kib or 0) * 1024


def peak_rss() -> int:
    """Peak resident set size since the process started or the last reset, bytes."""
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: ru_maxrss is KiB on Linux, bytes on macOS
        import sys

        raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return raw if sys.platform == "darwin" else raw * 1024
    return kib * 1024


def reset_peak() -> bool:
    """Reset the peak to the current RSS; False when the kernel does not allow it."""
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:
        return False


def resettable() -> bool:
    return reset_peak()
