"""The native libraries PyAV has loaded into this process, for the calls PyAV does not expose.

PyAV's wheels ship FFmpeg and libopus as shared libraries (a source build links the system's); whichever it
is, it is mapped into the process once `av` is imported, and /proc/self/maps names its file.
"""

from __future__ import annotations

import av  # noqa: F401  (loads FFmpeg and its codec libraries, so they are in the process's memory map)


def loaded_library(name: str) -> str | None:
    """The path of the mapped shared library whose file name starts with `name` (e.g. "libopus"), if any."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].rpartition("/")[2].startswith(name):
                    return fields[5].strip()
    except OSError:
        pass
    return None
