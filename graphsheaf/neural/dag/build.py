"""Build the sheaf of a network given as data: a list of operations, each naming its
inputs (the torch-free builder; :func:`from_torch` produces the same list).

Every tensor is a vertex whose stalk is its flattened value (PyTorch's C, H, W order)
followed by a pinned 1; every operation is an edge per input into its output vertex.
The edge into v defines a block of v's coordinates: its target map selects that block
(``[I | 0]`` for one input), its source map computes it from ``ū = [u; 1]``. A sum of
several inputs (a residual add) first gathers them into a *concatenation vertex* ``v:in``
(one edge per input, each defining its block), from which one edge sums the blocks. So
each free coordinate is defined by exactly one edge row, and δ_Ω is square and, in
topological order, unit triangular (``docs/architectures.md``).
"""

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ...exceptions import SheafError
from . import ops

__all__ = ["dag_sheaf"]

ACTIVATIONS = ("relu", "leaky_relu", "relu6", "hardtanh", "identity")
AFFINE = ("linear", "conv1d", "conv2d", "avgpool1d", "avgpool2d", "batchnorm")


def _inputs(entry):
    ins = entry.get("inputs", [entry["input"]] if "input" in entry else [])
    if not ins:
        raise SheafError(f"operation {entry.get('name')!r} names no input")
    return list(ins)


def dag_sheaf(spec, input_shape, *, input_name="x", output=None):
    """Build the neural sheaf of a network given as a list of operations.

    Parameters
    ----------
    spec : list of dict
        Each entry has ``name`` (the output tensor), ``op`` and ``input`` (or ``inputs``
        for ``add`` and ``concat``), plus what the op needs:

        - ``linear``: ``weight`` (out, in), ``bias`` (out,) or None;
        - ``conv1d`` / ``conv2d``: ``weight`` (C_out, C_in, k...), ``bias``, ``stride``,
          ``padding`` (zero padding, one group);
        - ``avgpool1d`` / ``avgpool2d`` / ``maxpool1d`` / ``maxpool2d``: ``kernel``,
          ``stride`` (default: the kernel), ``padding``;
        - ``batchnorm``: ``weight``, ``bias``, ``mean``, ``var``, ``eps`` (evaluation mode:
          the affine map ``s ⊙ x + t`` per channel);
        - ``relu``, ``leaky_relu`` (``negative_slope``), ``relu6``, ``hardtanh``
          (``min_val``, ``max_val``), ``identity``;
        - ``flatten``: a new name for the same coordinates (no vertex);
        - ``add``: the sum of ``inputs`` of one shape; ``concat``: their concatenation
          along channels.

        Optional ``params``: a dict naming the parameters (``{"weight": "fc.weight", ...}``)
        for :func:`local_gradients` ``by_name=True``; by default ``"<name>.weight"``.
    input_shape : tuple
        Shape of one input without the batch axis, e.g. ``(1, 8, 8)`` or ``(64,)``.
    input_name : str
        Name of the input vertex.
    output : str, optional
        The output tensor (default: the last operation's).

    Returns
    -------
    networkx.DiGraph
        A sheaf with ``S.graph["architecture"] == "dag"``.

    Examples
    --------
    A residual block ``y = x + W₂ relu(W₁ x)``:

    >>> import numpy as np, graphsheaf.neural as gn
    >>> rng = np.random.default_rng(0)
    >>> S = gn.dag_sheaf([
    ...     {"name": "h", "op": "linear", "input": "x", "weight": rng.normal(size=(4, 3)), "bias": None},
    ...     {"name": "a", "op": "relu", "input": "h"},
    ...     {"name": "r", "op": "linear", "input": "a", "weight": rng.normal(size=(3, 4)), "bias": None},
    ...     {"name": "y", "op": "add", "inputs": ["x", "r"]}], input_shape=(3,))
    >>> sorted(S), S.graph["output"]
    (['a', 'h', 'r', 'x', 'y', 'y:in'], 'y')
    """
    S = nx.DiGraph()
    shapes = {input_name: tuple(int(s) for s in input_shape)}
    alias = {}
    n0 = int(np.prod(shapes[input_name]))
    S.add_node(input_name, dim=n0 + 1, shape=shapes[input_name], kind="input")
    last = input_name
    for entry in spec:
        name, op = entry.get("name"), entry.get("op")
        if name is None or op is None:
            raise SheafError(f"every operation needs a name and an op, got {entry!r}")
        if name in shapes or name in alias:
            raise SheafError(f"tensor {name!r} is defined twice")
        ins = [alias.get(i, i) for i in _inputs(entry)]
        missing = [i for i in ins if i not in shapes]
        if missing:
            raise SheafError(f"operation {name!r} reads {missing[0]!r}, which is not defined before it")
        if op == "flatten":
            alias[name] = ins[0]
            last = name
            continue
        try:
            _add_op(S, shapes, name, op, ins, entry)
        except KeyError as err:
            raise SheafError(f"operation {name!r} ({op}) needs {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise SheafError(f"operation {name!r} ({op}): {err}") from None
        last = name
    out = alias.get(output or last, output or last)
    if out not in S:
        raise SheafError(f"the output {output!r} is not a tensor of the network")
    S.graph.update(architecture="dag", input=input_name, output=out, input_shape=shapes[input_name],
                   output_shape=shapes[out], output_activation="identity",
                   pinned={input_name: None, **{v: {S.nodes[v]["dim"] - 1} for v in S if v != input_name}})
    return S


def _vertex(S, shapes, name, shape, kind):
    shapes[name] = tuple(int(s) for s in shape)
    S.add_node(name, dim=int(np.prod(shapes[name])) + 1, shape=shapes[name], kind=kind)


def _edge(S, u, v, A, offset, n, kind, **attrs):
    S.add_edge(u, v, source_map=A, target_map=ops.selection(n, S.nodes[v]["dim"], offset), kind=kind,
               **attrs)


def _names(entry):
    return ["weight", "bias"] if entry.get("bias") is not None else ["weight"]


def _params(entry, name, keys):
    given = entry.get("params") or {}
    return {k: given.get(k, f"{name}.{k}") for k in keys}


def _add_op(S, shapes, name, op, ins, entry):
    u = ins[0]
    shape = shapes[u]
    n_in = int(np.prod(shape))
    if op in ACTIVATIONS:
        _vertex(S, shapes, name, shape, op)
        kw = {k: entry[k] for k in ("negative_slope", "min_val", "max_val") if k in entry}
        _edge(S, u, name, ops.gate(op, n_in, **kw), 0, n_in, op)
    elif op == "linear":
        W = np.asarray(entry["weight"], dtype=float)
        if W.ndim != 2 or W.shape[1] != n_in:
            raise SheafError(f"linear {name!r}: weight {W.shape} cannot read {u!r} of shape {shape}")
        _vertex(S, shapes, name, (W.shape[0],), "linear")
        _edge(S, u, name, ops.affine_map(W, entry.get("bias")), 0, W.shape[0], "linear",
              params=_params(entry, name, _names(entry)),
              has_bias=entry.get("bias") is not None)
    elif op in ("conv1d", "conv2d"):
        A, index, out_shape = ops.conv_map(shape, entry["weight"], entry.get("bias"),
                                           entry.get("stride", 1), entry.get("padding", 0))
        _vertex(S, shapes, name, out_shape, op)
        W = np.asarray(entry["weight"])
        _edge(S, u, name, A, 0, A.shape[0], op, weight_index=index, weight_shape=W.shape,
              stride=entry.get("stride", 1), padding=entry.get("padding", 0),
              params=_params(entry, name, _names(entry)),
              has_bias=entry.get("bias") is not None)
    elif op in ("avgpool1d", "avgpool2d"):
        A, out_shape = ops.avgpool_map(shape, entry["kernel"], entry.get("stride"), entry.get("padding", 0))
        _vertex(S, shapes, name, out_shape, op)
        _edge(S, u, name, A, 0, A.shape[0], op, kernel=entry["kernel"],
              stride=entry.get("stride") or entry["kernel"], padding=entry.get("padding", 0))
    elif op in ("maxpool1d", "maxpool2d"):
        win, out_shape = ops.pool_windows(shape, entry["kernel"], entry.get("stride"),
                                          entry.get("padding", 0))
        _vertex(S, shapes, name, out_shape, op)
        _edge(S, u, name, ops.MaxPoolMap(win, n_in), 0, win.shape[0], op, kernel=entry["kernel"],
              stride=entry.get("stride") or entry["kernel"], padding=entry.get("padding", 0))
    elif op == "batchnorm":
        w, b = np.asarray(entry["weight"], float), np.asarray(entry["bias"], float)
        root = np.sqrt(np.asarray(entry["var"], float) + float(entry.get("eps", 1e-5)))
        scale = w / root
        shift = b - scale * np.asarray(entry["mean"], float)
        _vertex(S, shapes, name, shape, "batchnorm")
        _edge(S, u, name, ops.diag_affine_map(scale, shift, shape), 0, n_in, "batchnorm",
              params=_params(entry, name, ["weight", "bias"]),
              bn={"mean": np.asarray(entry["mean"], float), "root": root})
    elif op in ("add", "concat"):
        if op == "add" and len({int(np.prod(shapes[i])) for i in ins}) != 1:
            raise SheafError(f"add {name!r}: its inputs have shapes {[shapes[i] for i in ins]}")
        if op == "concat" and len({shapes[i][1:] for i in ins}) != 1:
            raise SheafError(f"concat {name!r}: its inputs differ beyond the channel axis")
        sizes = [int(np.prod(shapes[i])) for i in ins]
        gather = f"{name}:in" if op == "add" else name
        cat_shape = (sum(shapes[i][0] for i in ins),) + shape[1:]
        _vertex(S, shapes, gather, cat_shape if op == "concat" else (sum(sizes),), "concat")
        offset = 0
        for i, n in zip(ins, sizes):
            _edge(S, i, gather, sp.eye(n, n + 1, format="csr"), offset, n, "concat")
            offset += n
        if op == "add":
            n = sizes[0]
            A = sp.hstack([sp.eye(n, format="csr")] * len(ins) + [sp.csr_array((n, 1))], format="csr")
            _vertex(S, shapes, name, shape, "add")
            _edge(S, gather, name, A, 0, n, "add")
    else:
        raise SheafError(f"operation {name!r}: op {op!r} is not supported (linear, conv1d, conv2d, "
                         "avgpool, maxpool, batchnorm, flatten, add, concat and the piecewise-linear "
                         f"activations {', '.join(ACTIVATIONS)})")
