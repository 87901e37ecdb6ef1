"""Rows of the reproduction report, and writing it (``report.md``, ``report.csv``)."""

import csv
import decimal
import io
import os
from dataclasses import dataclass

from .._files import atomic_write_text

__all__ = ["Row", "summary", "write_report"]

#: what a row needing the authors' streams shows when another stream was used
NEEDS_TORCH = "needs PyTorch streams"


@dataclass
class Row:
    """One number of the paper beside ours.

    ``kind`` is "exact" when the number depends on the authors' random streams (data,
    initial weights, random stalks drawn by PyTorch) and "band" when it is a claim that any
    stream should reproduce. ``tol`` is relative (absolute when the paper's value is 0),
    never below half a unit of the paper's last printed digit.
    """

    experiment: str
    quantity: str
    paper: float
    ours: float
    tol: float
    kind: str = "exact"
    note: str = ""

    def __post_init__(self):
        # the paper's value may be given as printed ("0.0030"): its digits set the rounding
        self.printed = self.paper if isinstance(self.paper, str) else repr(float(self.paper))
        self.paper = float(self.paper)

    @property
    def tolerance(self):
        """``tol``, but never below half a unit of the paper's last printed digit."""
        if self.paper == 0:
            return self.tol
        exponent = decimal.Decimal(self.printed).as_tuple().exponent
        return max(self.tol, 0.5 * 10.0 ** exponent / abs(self.paper))

    @property
    def rel_diff(self):
        if self.paper == 0:
            return abs(self.ours)
        return abs(self.ours - self.paper) / abs(self.paper)

    @property
    def ok(self):
        return bool(self.rel_diff <= self.tolerance * (1 + 1e-9))

    def status(self, rng):
        """"yes", "no", or :data:`NEEDS_TORCH` for an exact row run on other streams."""
        if self.kind == "exact" and rng != "torch":
            return NEEDS_TORCH
        return "yes" if self.ok else "no"


def summary(rows, rng):
    """One line: how many comparable rows are within tolerance, and how many are not
    comparable on these streams."""
    compared = [r for r in rows if r.status(rng) != NEEDS_TORCH]
    good = sum(r.status(rng) == "yes" for r in compared)
    line = f"{good} of {len(compared)} numbers within tolerance"
    skipped = len(rows) - len(compared)
    if skipped:
        line += (f"; {skipped} more depend on the authors' random streams and are compared only "
                 "with --rng torch (PyTorch installed)")
    return line


def _shown(row):
    """The paper's value as it prints it (strings are kept; floats shortest round-trip)."""
    text = row.printed
    return text[:-2] if text.endswith(".0") and "e" not in text else text


def write_report(out, rows, timings, figures, quick, rng, plotted):
    """Write ``report.csv`` and ``report.md`` into ``out`` (atomically)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["experiment", "quantity", "paper", "ours", "rel_diff", "tolerance", "kind", "status",
                "note"])
    for r in rows:
        w.writerow([r.experiment, r.quantity, _shown(r), r.ours, r.rel_diff, r.tolerance, r.kind,
                    r.status(rng), r.note])
    atomic_write_text(os.path.join(out, "report.csv"), buf.getvalue())
    streams = ("the authors' PyTorch generator (torch.manual_seed, float64 randn/rand in their "
               "order): every row is compared" if rng == "torch" else
               "NumPy: rows marked exact depend on the authors' PyTorch streams and are not "
               "compared; band rows are")
    lines = ["# Reproduction report", "",
             f"Random streams: **{rng}** ({streams}).", "",
             f"Run: {'quick (fewer steps)' if quick else 'full'}. Paper values: "
             "`graphsheaf/paper/published.json`, each with its section of the paper and of "
             "`docs/paper-spec.md`.", "",
             f"**{summary(rows, rng)}.**", "",
             "| experiment | quantity | paper | ours | rel. diff | tolerance | kind | ok |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        status = r.status(rng)
        shown = "**no**" if status == "no" else status
        lines.append(f"| {r.experiment} | {r.quantity}{' (' + r.note + ')' if r.note else ''} | "
                     f"{_shown(r)} | {r.ours:.6g} | {r.rel_diff:.2e} | {r.tolerance:.2g} | {r.kind} | "
                     f"{shown} |")
    lines += ["", "Wall time per experiment: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
              + f"; total {sum(timings.values()):.0f} s."]
    if figures:
        lines += ["", "Figures: " + ", ".join(os.path.basename(f) for f in figures if f.endswith(".png"))]
    elif not plotted:
        lines += ["", "No figures: matplotlib is not installed (pip install graphsheaf[plot])."]
    atomic_write_text(os.path.join(out, "report.md"), "\n".join(lines) + "\n")
