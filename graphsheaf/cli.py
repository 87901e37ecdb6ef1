"""The ``graphsheaf`` command line.

Exit codes: 0 success, 1 bad input (one line naming the file and the problem),
2 usage errors.
"""

import argparse
import contextlib
import json
import os
import sys

import numpy as np

from ._files import atomic_write_text, read_text_bounded
from .exceptions import SheafError

__all__ = ["main"]


class _InputError(Exception):
    """Bad input: reported as one line, exit code 1."""


def _load(path):
    from .io import read_json
    try:
        return read_json(path)
    except SheafError as err:
        raise _InputError(str(err)) from None


def _resolve_node(G, text, source):
    """Find the node a command-line/JSON string names: exact, str() or JSON literal."""
    if text in G:
        return text
    matches = [v for v in G if str(v) == text]
    if not matches:
        try:
            value = json.loads(text)
            value = tuple(value) if isinstance(value, list) else value
            if value in G:
                return value
        except (json.JSONDecodeError, TypeError):
            pass
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise _InputError(f"{source}: {text!r} matches several nodes: {matches[:4]!r}")
    raise _InputError(f"{source}: no node named {text!r}")


def _read_boundary(G, path):
    """Boundary file: {"node": value | {"coordinate": value}} or a list of
    {"node": <node as in write_json>, "value": ...} / {"node": ..., "coordinates": {...}}."""
    from .io import BadValue, decode_value
    try:
        data = json.loads(read_text_bounded(path))
    except SheafError as err:  # not a regular file, too large, not UTF-8 ...
        raise _InputError(str(err)) from None
    except json.JSONDecodeError as err:
        raise _InputError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno} "
                          f"({err.msg})") from None
    except (RecursionError, ValueError) as err:
        raise _InputError(f"{path}: not a boundary file ({type(err).__name__})") from None
    items = []
    if isinstance(data, dict) and isinstance(data.get("values"), list) and "energy" in data:
        data = data["values"]  # the output of `graphsheaf extend`, fed back as a boundary
    if isinstance(data, dict):
        items = [(_resolve_node(G, k, path), v) for k, v in data.items()]
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            if not isinstance(entry, dict) or "node" not in entry:
                raise _InputError(f"{path}: entry {i} needs a \"node\"")
            try:
                node = decode_value(entry["node"], f"entry {i}")
            except BadValue as err:
                raise _InputError(f"{path}: {err}") from None
            if node not in G:
                raise _InputError(f"{path}: entry {i}: no node {node!r}")
            items.append((node, entry.get("value", entry.get("coordinates"))))
    else:
        raise _InputError(f"{path}: expected an object or a list")
    boundary = {}
    for node, spec in items:
        if isinstance(spec, dict):
            try:
                spec = {int(k): v for k, v in spec.items()}
            except ValueError:
                raise _InputError(f"{path}: node {node!r}: coordinates must be integers") from None
            values = list(spec.values())
        else:
            values = [spec]
        for v in values:
            try:
                ok = np.asarray(v).dtype.kind in "iuf"
            except (ValueError, TypeError):
                ok = False
            if not ok:
                raise _InputError(f"{path}: node {node!r}: values must be numbers or arrays of "
                                  f"numbers, got {json.dumps(v)[:60]}")
        boundary[node] = spec
    return boundary


def _cohomology_numbers(G, relative_to=None, exact=False, state=None, field=None):
    from .cohomology import cohomology
    return cohomology(G, relative_to=relative_to, method="exact" if exact else "auto",
                      bases=False, state=state, field=field)


def _state(G, args):
    """The state at which state-dependent maps are evaluated: ``--forward X`` (the forward
    pass of a neural sheaf at input X) or ``--state FILE`` (node -> full stalk value, e.g.
    the output of ``graphsheaf extend``); None when neither is given."""
    forward = getattr(args, "forward", None)
    path = getattr(args, "state", None)
    if forward is not None and path is not None:
        raise _InputError("give --forward or --state, not both")
    if forward is not None:
        import graphsheaf.neural as gn
        try:
            x = json.loads(forward) if forward.strip().startswith("[") else \
                [float(t) for t in forward.replace(",", " ").split()]
            return gn.forward(G, np.asarray(x, dtype=float))
        except (ValueError, TypeError) as err:
            raise _InputError(f"--forward {forward!r}: {err}") from None
    if path is not None:
        state = _read_boundary(G, path)
        missing = [v for v in G if v not in state]
        if missing:
            raise _InputError(f"{path}: the state has no value for node {missing[0]!r}")
        try:
            return {v: np.asarray(x, dtype=float) for v, x in state.items()}
        except (ValueError, TypeError):
            raise _InputError(f"{path}: state values must be arrays of numbers") from None
    return None


def _needs_state(err):
    """Turn the library's 'pass state=' advice into the command line's flags."""
    msg = str(err)
    if "pass state=" in msg:
        msg = msg.split("; pass state=")[0] + ("; give --forward X (the input of a neural "
                                              "sheaf) or --state STATE.json to evaluate it")
    return msg.replace("allow_nonunique=True", "--allow-nonunique")


def cmd_info(args):
    from .diagnostics import spectral_gap
    from .layout import cochain_dim
    G = _load(args.file)
    state = _state(G, args)
    try:
        c = _cohomology_numbers(G, state=state)
    except SheafError as err:
        raise _InputError(_needs_state(err)) from None
    try:
        gap = spectral_gap(G, state=state)
    except Exception as err:  # report, do not die, on awkward spectra
        gap = float("nan")
        print(f"graphsheaf: warning: spectral gap not computed ({err})", file=sys.stderr)
    info = {"file": args.file, "nodes": G.number_of_nodes(), "edges": G.number_of_edges(),
            "dim_C0": cochain_dim(G, 0), "dim_C1": cochain_dim(G, 1), "h0": c.h0, "h1": c.h1,
            "spectral_gap": gap}
    if args.json:
        print(_strict_json(info))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k.replace('_', ' '):<{width}}  {v:.6g}" if isinstance(v, float)
                  else f"{k.replace('_', ' '):<{width}}  {v}")
    return 0


def cmd_cohomology(args):
    G = _load(args.file)
    rel = None
    if args.relative_to:
        rel = [_resolve_node(G, t, "--relative-to") for t in args.relative_to]
    try:
        c = _cohomology_numbers(G, rel, args.exact, _state(G, args), args.field)
    except SheafError as err:
        raise _InputError(_needs_state(err)) from None
    exact = args.exact or args.field is not None
    out = {"h0": c.h0, "h1": c.h1, "dim_C0": c.dim_c0, "dim_C1": c.dim_c1,
           "pinned": c.n_pinned, "method": c.method}
    if args.field is not None:
        out["field"] = f"GF({args.field})"
    if not exact:
        out.update(sigma_zero=c.sigma_zero, sigma_nonzero=c.sigma_nonzero, gap=c.gap, tol=c.tol)
    if args.json:
        print(_strict_json(out))
    else:
        kind = "relative " if rel else ""
        over = f" over GF({args.field})" if args.field is not None else ""
        print(f"{kind}H^0{over}: {c.h0}\n{kind}H^1{over}: {c.h1}")
        if not exact:
            print(f"rank decided by a singular-value gap of {c.gap:.3g} "
                  f"(largest zero {c.sigma_zero:.3g}, smallest nonzero {c.sigma_nonzero:.3g})")
    return 0


def cmd_dot(args):
    from .drawing import render, to_pydot
    G = _load(args.file)
    pinned = _read_boundary(G, args.boundary) if args.boundary else None
    if args.render:
        # beside the input, named after its whole name: ./sheaf -> ./sheaf.svg, never a hidden
        # file or a name taken from a folder (run.v2/sheaf -> run.v2/sheaf.svg)
        out = args.output or (os.path.splitext(args.file)[0] + "." + args.render)
        render(G, out, format=args.render, pinned=pinned)
        print(out)
        return 0
    text = to_pydot(G, pinned=pinned).to_string()
    if args.output:
        atomic_write_text(args.output, text)
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


def cmd_extend(args):
    from .harmonic import harmonic_extension
    from .io import encode_value
    G = _load(args.file)
    boundary = _read_boundary(G, args.boundary)
    try:
        x = harmonic_extension(G, boundary, allow_nonunique=args.allow_nonunique,
                               state=_state(G, args))
    except SheafError as err:
        raise _InputError(f"{args.boundary}: {_needs_state(err)}") from None
    result = {"energy": x.energy if np.ndim(x.energy) == 0 else list(map(float, x.energy)),
              "undetermined": int(x.undetermined.shape[1]),
              "values": [{"node": encode_value(v, "node"), "value": np.asarray(val).tolist()}
                         for v, val in x.items()]}
    text = json.dumps(result, indent=1)
    if args.output:
        atomic_write_text(args.output, text)
        print(args.output)
    else:
        print(text)
    return 0


def cmd_demo(args):
    from .demo import run_demo
    run_demo(out=args.out)
    return 0


def cmd_reproduce(args):
    from .paper import run
    try:
        run(out=args.out, quick=args.quick, only=args.only, rng=args.rng)  # prints its summary
    except (ValueError, ImportError) as err:  # e.g. --rng torch without PyTorch
        raise _InputError(str(err)) from None
    return 0


def _state_flags(s):
    s.add_argument("--forward", metavar="X",
                   help="evaluate state-dependent maps (ReLU gates) at the forward pass of this "
                        "input, e.g. --forward 0.5,-1 (neural sheaves)")
    s.add_argument("--state", metavar="STATE.json",
                   help="evaluate state-dependent maps at this state (node -> stalk value; the "
                        "output of `graphsheaf extend` works)")


def build_parser():
    p = argparse.ArgumentParser(prog="graphsheaf", description="Cellular sheaves on graphs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    s = sub.add_parser("info", help="sizes, cohomology and spectral gap of a sheaf file")
    s.add_argument("file", help="a sheaf JSON file (gs.write_json)")
    s.add_argument("--json", action="store_true", help="print JSON")
    _state_flags(s)
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("cohomology", help="H^0 and H^1, absolute or relative")
    s.add_argument("file")
    s.add_argument("--relative-to", nargs="+", metavar="NODE", help="pinned nodes")
    s.add_argument("--exact", action="store_true", help="exact rational arithmetic")
    s.add_argument("--field", type=int, metavar="P",
                   help="compute over the finite field GF(P), P prime (exact)")
    s.add_argument("--json", action="store_true", help="print JSON")
    _state_flags(s)
    s.set_defaults(func=cmd_cohomology)
    s = sub.add_parser("dot", help="Graphviz diagram (DOT text, or rendered with --render)")
    s.add_argument("file")
    s.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    s.add_argument("--render", choices=["svg", "png", "pdf"], help="render with Graphviz dot")
    s.add_argument("--boundary", metavar="BOUNDARY.json", help="colour these pinned nodes")
    s.set_defaults(func=cmd_dot)
    s = sub.add_parser("extend", help="harmonic extension of boundary data")
    s.add_argument("file")
    s.add_argument("--boundary", required=True, metavar="BOUNDARY.json",
                   help='{"node": [values...]} or {"node": {"coordinate": value}}')
    s.add_argument("-o", "--output", metavar="OUT.json")
    s.add_argument("--allow-nonunique", action="store_true",
                   help="return the minimum-norm extension when it is not unique")
    _state_flags(s)
    s.set_defaults(func=cmd_extend)
    s = sub.add_parser("reproduce", help="rerun the paper's experiments, report beside its numbers")
    s.add_argument("--quick", action="store_true", help="fewer steps (about 40 s on 2 cores)")
    s.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    s.add_argument("--out", default="reproduction", help="folder for figures and the report")
    s.add_argument("--rng", choices=["torch", "numpy"],
                   help="random streams (default: torch when installed)")
    s.set_defaults(func=cmd_reproduce)
    s = sub.add_parser("demo", help="the main demo on an embedded default (no arguments needed)")
    s.add_argument("--out", default="graphsheaf-demo", help="folder for the diagram and files")
    s.set_defaults(func=cmd_demo)
    return p


def _strict_json(obj):
    """JSON that every parser accepts: infinities and NaN become null."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else None
        if isinstance(v, np.integer):
            return int(v)
        return v
    return json.dumps(clean(obj), allow_nan=False)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from .drawing import GraphvizNotFoundError
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (``graphsheaf ... | head``): stop quietly; point stdout at
        # /dev/null so that the interpreter's final flush does not complain either
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _InputError as err:
        print(f"graphsheaf: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except (SheafError, GraphvizNotFoundError, OSError) as err:
        where = getattr(args, "file", None)
        msg = _one_line(err)
        if where and not msg.startswith(str(where)):
            msg = f"{_one_line(where)}: {msg}"
        print(f"graphsheaf: error: {msg}", file=sys.stderr)
        return 1
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError) as err:
        # whatever the input, one line: name the file and what went wrong
        where = getattr(args, "file", None)
        prefix = f"{_one_line(where)}: " if where else ""
        print(f"graphsheaf: error: {prefix}{type(err).__name__}: {_one_line(err)}",
              file=sys.stderr)
        return 1


def _one_line(x):
    return str(x).replace("\r", "\\r").replace("\n", "\\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
