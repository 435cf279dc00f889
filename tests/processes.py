"""The machine's processes, read from Linux's /proc, for tests of what a stop leaves running."""
from pathlib import Path
from typing import NamedTuple


class Process(NamedTuple):
    pid: int
    state: str  # "Z": ended, a zombie until its parent reaps it
    parent: int
    group: int
    command: str


def processes() -> list[Process]:
    """Every process now running (one that ends while it is read is left out)."""
    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            # /proc/<pid>/stat: pid (name) state ppid pgrp ...; the name may hold spaces and ")"
            state, parent, group = (folder / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            command = (folder / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        found.append(Process(int(folder.name), state, int(parent), int(group), command))
    return found
