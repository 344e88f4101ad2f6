"""The results file of a sweep, which makes it resumable, and its progress line.

Each finished case is added to the results file at once, so a sweep that is interrupted resumes after the
last finished case when run again (``--restart`` starts over); the file then is byte-for-byte the file an
uninterrupted sweep writes. That holds because results files keep only what is deterministic: host wall
times of an emulated sweep go beside it instead, to the results file's name with ``.wall.csv`` added
(``results.csv.wall.csv`` for ``results.csv``).
"""
from __future__ import annotations

import csv
import os
import sys
import time

from ..cases import Case
from ..report import FILE_COLUMNS, dump_results, file_format, read_results
from .spec import SweepError

# what identifies a finished case in the results file (compared as text, as CSV stores it)
KEY_COLUMNS = ("mode", "collective", "topology", "placement", "ranks", "requested_algo", "dtype", "op", "root",
               "iters", "warmup_iters", "check", "seed", "count")


def case_key(row: dict) -> tuple:
    """What identifies a finished case in the results file (compared as text, as CSV stores it)."""
    return tuple(str(row.get(c, "")) for c in KEY_COLUMNS)


class ResultsFile:
    """Rows appended as cases finish; on reopening, the finished prefix of the grid is kept and checked."""

    def __init__(self, path: str):
        self.path = path
        self.format = file_format(path)
        self.rows: list[dict] = []

    def load(self, expected_keys: list[tuple]) -> int:
        """Read what an earlier run finished; returns how many leading cases are done."""
        if not os.path.exists(self.path):
            self._rewrite()
            return 0
        with open(self.path, newline="") as f:
            text = f.read()
        if self.format == "csv" and text and not text.endswith("\n"):  # cut off mid-row: that case did not finish
            text = text[: text.rfind("\n") + 1]
        try:
            rows = read_results(self.path, text) if text.strip() else []
        except ValueError as exc:
            raise SweepError(f"{exc}; move it away or use --restart") from None
        if self.format == "csv" and text and next(csv.reader([text.partition("\n")[0]])) != FILE_COLUMNS:
            raise SweepError(f"results file {self.path!r}: its columns are not those of this hccl-sim "
                             f"version's results; move it away or use --restart")
        if len(rows) > len(expected_keys):
            raise SweepError(f"results file {self.path!r}: has {len(rows)} rows, the sweep only {len(expected_keys)} "
                             f"cases; use --restart or another output")
        for i, row in enumerate(rows):
            if case_key(row) != expected_keys[i]:
                raise SweepError(f"results file {self.path!r}: row {i + 1} ({row.get('collective')} "
                                 f"{row.get('requested_algo')} {row.get('size_bytes')} B on {row.get('topology')}) is "
                                 f"not case {i + 1} of this sweep; the sweep file changed - use --restart or another output")
        self.rows = [{c: row.get(c, "") for c in FILE_COLUMNS} for row in rows]
        self._rewrite()  # drops a partial last line
        return len(rows)

    def restart(self) -> None:
        self.rows = []
        self._rewrite()

    def append(self, row: dict) -> None:
        row = {c: row.get(c, "") for c in FILE_COLUMNS}
        self.rows.append(row)
        if self.format == "csv":
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=FILE_COLUMNS, lineterminator="\n").writerow(row)
                f.flush()
                os.fsync(f.fileno())
        else:
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            dump_results(f, self.format, self.rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # atomic: an interrupted rewrite leaves the old file


def append_wall(path: str, index: int, case: Case, wall: float) -> None:
    """Host wall times, apart from the deterministic results (they differ on every run)."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if new:
            writer.writerow(["case", "collective", "requested_algo", "size_bytes", "topology", "placement",
                             "wall_time_us"])
        writer.writerow([index + 1, case.collective, case.algo, case.size, case.topology, case.placement, wall])


class Progress:
    """A one-line progress bar on stderr (a line per case when stderr is not a terminal)."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.total, self.done, self.enabled = total, done, enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.started_at = done

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        ran = self.done - self.started_at
        eta = (time.monotonic() - self.start) / ran * (self.total - self.done) if ran else 0.0
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label}  eta {eta:.0f}s"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line + ("\n" if self.done == self.total else ""))
        elif self.done == self.total or 10 * self.done // self.total != 10 * (self.done - 1) // self.total:
            sys.stderr.write(line + "\n")  # a log file gets a line per tenth
        sys.stderr.flush()
