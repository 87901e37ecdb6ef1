"""Lossless, safe JSON files for sheaves.

Everything a sheaf graph carries survives a round trip: node names of any JSON-able
shape (tuples, ints, strings, nested), stalk dimensions, restriction maps with their
exact shape, dtype and bits (including 0-sized maps), sparse maps, state-dependent
maps from :data:`graphsheaf.maps.map_registry`, multigraph keys, and node, edge and
graph attributes. Values JSON cannot hold natively are written as tagged objects
(``{"__tuple__": [...]}``, ``{"__ndarray__": {...}}``, ...). Reading parses only
these tags: nothing from the file is executed or unpickled.
"""

import base64
import importlib
import json
import math
import os
from fractions import Fraction

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ._files import DEFAULT_MAX_BYTES, atomic_write_text, read_text_bounded
from .exceptions import SheafError
from .maps import StateDependentMap, map_registry
from .sheaves import validate_sheaf

__all__ = ["from_json_data", "read_json", "to_json_data", "write_json"]

FORMAT = "graphsheaf"
VERSION = 1
#: dtypes an array in a file may have (no object arrays except exact rationals)
SAFE_KINDS = "biufc"


# ------------------------------------------------------------------------- encoding

def encode_value(x, where):
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
        if isinstance(x, np.integer):
            return {"__npscalar__": [str(x.dtype), int(x)]}
        return x
    if isinstance(x, (float, np.floating)):
        if isinstance(x, np.floating) and type(x) is not float:
            return {"__npscalar__": [str(x.dtype), _float_out(float(x))]}
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(x, np.bool_):
        return {"__npscalar__": ["bool", bool(x)]}
    if isinstance(x, Fraction):
        return {"__fraction__": [str(x.numerator), str(x.denominator)]}
    if isinstance(x, tuple):
        return {"__tuple__": [encode_value(v, where) for v in x]}
    if isinstance(x, list):
        return [encode_value(v, where) for v in x]
    if isinstance(x, (set, frozenset)):
        tag = "__frozenset__" if isinstance(x, frozenset) else "__set__"
        return {tag: [encode_value(v, where) for v in x]}
    if isinstance(x, dict):
        return {"__dict__": [[encode_value(k, where), encode_value(v, where)] for k, v in x.items()]}
    if isinstance(x, range):
        return {"__range__": [x.start, x.stop, x.step]}
    if isinstance(x, np.ndarray):
        return {"__ndarray__": _encode_array(x, where)}
    if sp.issparse(x):
        m = x.tocsr()
        # stored as CSR; the format and matrix/array class come back as they were
        return {"__sparse__": {"format": "csr", "shape": list(m.shape),
                               "as": x.format, "matrix": bool(sp.isspmatrix(x)),
                               "data": _encode_array(m.data, where),
                               "indices": _encode_array(m.indices, where),
                               "indptr": _encode_array(m.indptr, where)}}
    if isinstance(x, StateDependentMap):
        if x.type_name not in map_registry:
            raise SheafError(f"{where}: state-dependent map {type(x).__name__} is not "
                             "registered in graphsheaf.maps.map_registry, so it cannot be saved")
        return {"__statemap__": {"type": x.type_name, "params": encode_value(x.to_dict(), where)}}
    raise SheafError(f"{where}: cannot store a value of type {type(x).__name__} in a "
                     "graphsheaf JSON file (nothing is dropped silently)")


def _float_out(v):
    return v if math.isfinite(v) else {"__float__": repr(v)}


def _encode_array(a, where):
    if a.dtype.kind == "O":
        flat = a.ravel().tolist()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
            # Python integers of any size stay integers (they came back as Fractions)
            return {"dtype": "integer", "shape": list(a.shape), "data": [str(v) for v in flat]}
        if all(isinstance(v, (int, Fraction)) for v in flat):
            return {"dtype": "rational", "shape": list(a.shape),
                    "data": [[str(Fraction(v).numerator), str(Fraction(v).denominator)]
                             for v in flat]}
        raise SheafError(f"{where}: object arrays can be saved only when they hold ints or "
                         "fractions.Fraction")
    if a.dtype.kind not in SAFE_KINDS:
        raise SheafError(f"{where}: arrays of dtype {a.dtype} cannot be saved")
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": le.dtype.str, "shape": list(a.shape),
            "data": base64.b64encode(np.ascontiguousarray(le).tobytes()).decode("ascii")}


def to_json_data(G):
    """Return the JSON-ready dict that :func:`write_json` writes."""
    if not isinstance(G, nx.Graph) or not G.is_directed():
        raise SheafError("write_json takes a DiGraph or MultiDiGraph sheaf")
    multi = G.is_multigraph()
    nodes = [{"id": encode_value(v, f"node {v!r}"),
              "attrs": _encode_attrs(d, f"node {v!r}")} for v, d in G.nodes(data=True)]
    edges = []
    if multi:
        for u, v, k, d in G.edges(keys=True, data=True):
            where = f"edge {u!r} -> {v!r} (key {k!r})"
            edges.append({"source": encode_value(u, where), "target": encode_value(v, where),
                          "key": encode_value(k, where), "attrs": _encode_attrs(d, where)})
    else:
        for u, v, d in G.edges(data=True):
            where = f"edge {u!r} -> {v!r}"
            edges.append({"source": encode_value(u, where), "target": encode_value(v, where),
                          "attrs": _encode_attrs(d, where)})
    return {"format": FORMAT, "version": VERSION, "multigraph": multi,
            "graph": _encode_attrs(G.graph, "graph"), "nodes": nodes, "edges": edges}


def _encode_attrs(d, where):
    out = {}
    for k, v in d.items():
        if not isinstance(k, str):
            raise SheafError(f"{where}: attribute name {k!r} is not a string")
        out[k] = encode_value(v, f"{where}, attribute {k!r}")
    return out


def write_json(G, path, *, indent=None):
    """Write a sheaf to a JSON file, losslessly.

    Parameters
    ----------
    G : DiGraph or MultiDiGraph
    path : str or path-like
    indent : int, optional
        Pretty-print with this indent.

    Examples
    --------
    >>> import tempfile, os
    >>> G = gs.random_sheaf(nx.cycle_graph(3), dims=2, edge_dims=1, rng=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "s.json")
    >>> gs.write_json(G, path)
    >>> H = gs.read_json(path)
    >>> bool((H.edges[0, 1]["source_map"] == G.edges[0, 1]["source_map"]).all())
    True
    """
    for v in G:
        if v != v:  # NaN: a name no dictionary can find again, so the file could not be read
            raise SheafError(f"node {v!r} is not equal to itself (NaN): it cannot be written")
    data = to_json_data(G)
    text = json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text)  # a failed write leaves an existing file intact


# ------------------------------------------------------------------------- decoding

class BadValue(Exception):
    def __init__(self, where, msg):
        super().__init__(f"{where}: {msg}")


def decode_value(x, where):
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        return x
    if isinstance(x, list):
        return [decode_value(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if not isinstance(x, dict):
        raise BadValue(where, f"unexpected JSON value {type(x).__name__}")
    if len(x) != 1:
        raise BadValue(where, f"expected one tagged value, got keys {sorted(x)[:5]}")
    (tag, body), = x.items()
    w = f"{where}.{tag}"
    if tag == "__tuple__":
        return tuple(decode_value(v, f"{w}[{i}]") for i, v in enumerate(_list(body, w)))
    if tag in ("__set__", "__frozenset__"):
        items = [decode_value(v, f"{w}[{i}]") for i, v in enumerate(_list(body, w))]
        try:
            return set(items) if tag == "__set__" else frozenset(items)
        except TypeError:
            raise BadValue(w, "set of unhashable values") from None
    if tag == "__dict__":
        out = {}
        for i, pair in enumerate(_list(body, w)):
            if not isinstance(pair, list) or len(pair) != 2:
                raise BadValue(f"{w}[{i}]", "expected a [key, value] pair")
            key = decode_value(pair[0], f"{w}[{i}][0]")
            try:
                out[key] = decode_value(pair[1], f"{w}[{i}][1]")
            except TypeError:
                raise BadValue(f"{w}[{i}]", "unhashable key") from None
        return out
    if tag == "__float__":
        if body not in ("nan", "inf", "-inf"):
            raise BadValue(w, f"unknown float {body!r}")
        return float(body)
    if tag == "__fraction__":
        b = _list(body, w)
        if len(b) != 2:
            raise BadValue(w, "expected [numerator, denominator]")
        try:
            return Fraction(int(b[0]), int(b[1]))
        except (ValueError, ZeroDivisionError, TypeError):
            raise BadValue(w, f"bad fraction {b!r}") from None
    if tag == "__range__":
        b = _list(body, w)
        if len(b) != 3 or not all(type(v) is int for v in b) or b[2] == 0:
            raise BadValue(w, "expected [start, stop, step] with integers and a nonzero step")
        return range(*b)
    if tag == "__npscalar__":
        b = _list(body, w)
        if len(b) != 2 or not isinstance(b[0], str):
            raise BadValue(w, "expected [dtype, value]")
        dt = _dtype(b[0], w, allow_bool_name=True)
        value = decode_value(b[1], f"{w}[1]")
        if type(value) not in (bool, int, float, complex):
            raise BadValue(w, f"a {dt} scalar needs a number, got {type(value).__name__}")
        try:
            out = dt.type(value)
        except (OverflowError, ValueError, TypeError):
            raise BadValue(w, f"{value!r} does not fit a {dt} scalar") from None
        if dt.kind in "iub" and out != value:
            raise BadValue(w, f"{value!r} does not fit a {dt} scalar")
        return out
    if tag == "__ndarray__":
        return _decode_array(body, w)
    if tag == "__sparse__":
        if not isinstance(body, dict) or body.get("format") != "csr":
            raise BadValue(w, "expected a csr sparse matrix")
        shape = _shape(body.get("shape"), w)
        if len(shape) != 2:
            raise BadValue(w, f"a sparse matrix is 2-D, got shape {list(shape)}")
        try:
            M = sp.csr_array((_decode_array(body["data"], f"{w}.data"),
                              _decode_array(body["indices"], f"{w}.indices"),
                              _decode_array(body["indptr"], f"{w}.indptr")), shape=shape)
            M.check_format(full_check=True)  # indices in range, indptr non-decreasing
            fmt = body.get("as", "csr")
            if fmt not in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia"):
                raise BadValue(w, f"unknown sparse format {fmt!r}")
            M = M.asformat(fmt)
            return sp.csr_matrix(M).asformat(fmt) if body.get("matrix") is True else M
        except KeyError as err:
            raise BadValue(w, f"missing {err}") from None
        except (ValueError, TypeError, OverflowError) as err:
            raise BadValue(w, f"inconsistent sparse matrix ({err})") from None
    if tag == "__statemap__":
        if isinstance(body, dict) and isinstance(body.get("type"), str) \
                and body["type"] not in map_registry:
            # the neural maps (output activations, max pooling) register on import
            importlib.import_module("graphsheaf.neural")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) \
                or body["type"] not in map_registry:
            kind = body.get("type") if isinstance(body, dict) else body
            raise BadValue(w, f"unknown state-dependent map type {kind!r}")
        params = decode_value(body.get("params", {"__dict__": []}), f"{w}.params")
        try:
            return map_registry[body["type"]].from_dict(params)
        except (KeyError, TypeError, ValueError) as err:
            raise BadValue(w, f"bad parameters ({err})") from None
    raise BadValue(where, f"unknown tag {tag!r}")


def _list(body, where):
    if not isinstance(body, list):
        raise BadValue(where, "expected a list")
    return body


#: the most entries one array of a file may declare (checked before anything is allocated)
MAX_ARRAY_ENTRIES = 2**40


def _shape(shape, where):
    # (bool is an int to Python: [true, 2] is not a shape)
    if not isinstance(shape, list) or len(shape) > 32 or \
            not all(type(s) is int and 0 <= s < 2**63 for s in shape):
        raise BadValue(where, f"bad shape {shape!r}")
    if math.prod(shape) > MAX_ARRAY_ENTRIES:  # Python integers: no int64 wrap-around
        raise BadValue(where, f"shape {shape} declares more than {MAX_ARRAY_ENTRIES:,} entries")
    return tuple(shape)


def _allowed_dtypes():
    names = {}
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128):
        dt = np.dtype(t)
        for d in (dt, dt.newbyteorder("<"), dt.newbyteorder(">")):
            names[d.str] = d
        names[dt.name] = dt
    names["bool"] = np.dtype(bool)
    return names


#: the only dtype strings a file may name (an explicit list: NumPy parses others itself)
ALLOWED_DTYPES = _allowed_dtypes()


def _dtype(name, where, allow_bool_name=False):
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise BadValue(where, f"dtype {name!r} is not allowed (plain numeric dtypes only)")
    return ALLOWED_DTYPES[name]


def _decode_array(body, where):
    if not isinstance(body, dict):
        raise BadValue(where, "expected an array description")
    shape = _shape(body.get("shape"), where)
    n = math.prod(shape)
    if body.get("dtype") == "integer":
        data = _list(body.get("data"), where)
        if len(data) != n:
            raise BadValue(where, f"{len(data)} entries for shape {shape}")
        if not all(isinstance(v, str) and len(v) <= 4000 for v in data):
            raise BadValue(where, "integer entries are decimal strings of at most 4,000 digits")
        try:
            vals = [int(v) for v in data]
        except ValueError:
            raise BadValue(where, "bad integer entry") from None
        out = np.empty(n, dtype=object)
        out[:] = vals
        return out.reshape(shape)
    if body.get("dtype") == "rational":
        data = _list(body.get("data"), where)
        if len(data) != n:
            raise BadValue(where, f"{len(data)} entries for shape {shape}")
        try:
            vals = [Fraction(int(a), int(b)) for a, b in data]
        except (ValueError, TypeError, ZeroDivisionError):
            raise BadValue(where, "bad rational entry") from None
        out = np.empty(n, dtype=object)
        out[:] = vals
        return out.reshape(shape)
    dt = _dtype(body.get("dtype"), where)
    raw = body.get("data")
    if not isinstance(raw, str):
        raise BadValue(where, "array data must be a base64 string")
    try:
        buf = base64.b64decode(raw.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BadValue(where, "array data is not valid base64 (truncated file?)") from None
    if len(buf) != n * dt.itemsize:
        raise BadValue(where, f"array data has {len(buf)} bytes, shape {shape} of {dt} needs "
                          f"{n * dt.itemsize} (truncated file?)")
    return np.frombuffer(buf, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def from_json_data(data, *, validate=True, source="data"):
    """Build a sheaf from the dict :func:`to_json_data` returns (strictly checked)."""
    try:
        G = _build(data)
    except BadValue as err:
        raise SheafError(f"{source}: {err}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
        # a shape the checks above did not foresee: still one error naming the file
        raise SheafError(f"{source}: malformed file ({type(err).__name__}: {err})") from None
    if validate:
        try:
            validate_sheaf(G)
        except SheafError as err:
            raise SheafError(f"{source}: {err}") from None
        except (TypeError, ValueError, OverflowError) as err:
            raise SheafError(f"{source}: not a valid sheaf ({type(err).__name__}: {err})") from None
    return G


def _build(data):
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadValue("top level", f"not a graphsheaf file (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise BadValue("version", f"unsupported version {data.get('version')!r} (this reads {VERSION})")
    for key in ("nodes", "edges"):
        if not isinstance(data.get(key), list):
            raise BadValue(key, "missing or not a list")
    multi = data.get("multigraph")
    if not isinstance(multi, bool):
        raise BadValue("multigraph", "must be true or false")
    G = nx.MultiDiGraph() if multi else nx.DiGraph()
    G.graph.update(_attrs(data.get("graph", {}), "graph"))
    for i, entry in enumerate(data["nodes"]):
        w = f"nodes[{i}]"
        if not isinstance(entry, dict) or "id" not in entry:
            raise BadValue(w, "expected {\"id\": ..., \"attrs\": {...}}")
        v = decode_value(entry["id"], f"{w}.id")
        _hashable(v, f"{w}.id")
        if v in G:
            raise BadValue(w, f"node {v!r} appears twice")
        G.add_node(v, **_attrs(entry.get("attrs", {}), f"{w}.attrs"))
    for i, entry in enumerate(data["edges"]):
        w = f"edges[{i}]"
        if not isinstance(entry, dict) or "source" not in entry or "target" not in entry:
            raise BadValue(w, "expected {\"source\": ..., \"target\": ..., \"attrs\": {...}}")
        u = decode_value(entry["source"], f"{w}.source")
        v = decode_value(entry["target"], f"{w}.target")
        for end, x in (("source", u), ("target", v)):
            _hashable(x, f"{w}.{end}")
            if x not in G:
                raise BadValue(w, f"{end} {x!r} is not a node listed in the file")
        attrs = _attrs(entry.get("attrs", {}), f"{w}.attrs")
        if multi:
            if "key" not in entry:
                raise BadValue(w, "multigraph edge without a key")
            k = decode_value(entry["key"], f"{w}.key")
            _hashable(k, f"{w}.key")
            if G.has_edge(u, v, k):
                raise BadValue(w, f"edge {u!r} -> {v!r} (key {k!r}) appears twice")
            G.add_edge(u, v, key=k, **attrs)
        else:
            if G.has_edge(u, v):
                raise BadValue(w, f"edge {u!r} -> {v!r} appears twice")
            G.add_edge(u, v, **attrs)
    return G


def _hashable(x, where):
    try:
        hash(x)
    except TypeError:
        raise BadValue(where, f"{type(x).__name__} cannot name a node or key") from None


def _attrs(d, where):
    if not isinstance(d, dict):
        raise BadValue(where, "expected an object of attributes")
    return {k: decode_value(v, f"{where}.{k}") for k, v in d.items()}


def read_json(path, *, validate=True, max_bytes=DEFAULT_MAX_BYTES):
    """Read a sheaf written by :func:`write_json`.

    Nothing in the file is executed. A malformed, truncated or inconsistent file
    raises :class:`SheafError` saying what is wrong and where; no partial graph is
    returned. Only regular files are read (a FIFO or a device is refused before it is
    opened), of at most ``max_bytes`` bytes.

    Parameters
    ----------
    path : str or path-like
    validate : bool, default True
        Also check that the result is a well-formed sheaf.
    max_bytes : int, default 256 MiB
        Larger files are refused with a message saying so.
    """
    text = read_text_bounded(path, max_bytes)
    name = os.fsdecode(os.fspath(path)).replace("\n", "\\n")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SheafError(f"{name}: not valid JSON at line {err.lineno}, column {err.colno} "
                         f"({err.msg}; truncated file?)") from None
    except RecursionError:
        raise SheafError(f"{name}: JSON nested too deeply to be a sheaf file") from None
    except ValueError as err:  # e.g. an integer of thousands of digits
        raise SheafError(f"{name}: {err}") from None
    try:
        return from_json_data(data, validate=validate, source=name)
    except RecursionError:
        raise SheafError(f"{name}: JSON nested too deeply to be a sheaf file") from None
