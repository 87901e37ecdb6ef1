"""Bosca & Ghrist's neural sheaf: a feedforward ReLU network as a cellular sheaf.

Vertices, in path order, one per intermediate quantity: the extended input
``x̄ = [x; 1]`` (node ``"x"``), pre-activations ``z^(ℓ)`` (``"z1"``, ...), extended
post-activations ``ā^(ℓ) = [a^(ℓ); 1]`` (``"a1"``, ...), the output pre-activation
``z^(k+1)`` and, when the output activation is not the identity, the output ``ŷ``
(``"y"``). Edges, oriented forward:

* affine ``ā^(ℓ-1) -> z^(ℓ)``: ``W̄ = [W | diag(b)]`` on the tail, ``I`` on the head;
* ReLU ``z^(ℓ) -> ā^(ℓ)``: the state-dependent gate ``R_z`` on the tail, the
  projection ``P = [I | 0]`` on the head;
* output ``z^(k+1) -> ŷ``: φ on the tail, ``I`` on the head.

The constant ones are pinned coordinates. By default each extended stalk carries a
block of ``n_{ℓ+1}`` ones and ``W̄ = [W | diag(b)]`` (the authors' code); with
``extension="single"`` it carries one trailing 1 and ``W̄ = [W | b]``.
"""

import networkx as nx
import numpy as np

from .._random import random_source
from ..exceptions import SheafError
from ..maps import PiecewiseLinearGate, ReLUGate, StateDependentMap
from .outputs import OutputActivation
from .plan import NetworkPlan

__all__ = [
    "OutputActivation",
    "architecture",
    "from_sklearn",
    "from_torch",
    "init_weights",
    "layer_nodes",
    "neural_sheaf",
    "to_weights",
]


def init_weights(dims, rng=None):
    """He-normal weights ``N(0, 2/n_{ℓ-1})`` and zero biases (the authors' initialisation).

    Parameters
    ----------
    dims : sequence of int
        ``[n_0, n_1, ..., n_{k+1}]``.
    rng : int, Generator or TorchSeed, optional
        ``gn.TorchSeed(seed)`` reproduces the authors' PyTorch initialisation exactly.

    Returns
    -------
    weights, biases : lists of arrays, ``W^(ℓ)`` of shape (n_ℓ, n_{ℓ-1}).

    Examples
    --------
    >>> W, b = gn.init_weights([2, 3, 1], rng=0)
    >>> [w.shape for w in W], [v.tolist() for v in b]
    ([(3, 2), (1, 3)], [[0.0, 0.0, 0.0], [0.0]])
    """
    dims = [int(d) for d in dims]
    if len(dims) < 2 or min(dims) < 1:
        raise SheafError(f"dims must list at least an input and an output width >= 1, got {dims}")
    draw = random_source(rng)
    W = [draw((dims[l], dims[l - 1])) * np.sqrt(2.0 / dims[l - 1]) for l in range(1, len(dims))]
    return W, [np.zeros(d) for d in dims[1:]]


def _check_params(weights, biases):
    try:
        complex_values = any(np.iscomplexobj(W) for W in weights) or \
            any(b is not None and np.iscomplexobj(b) for b in (biases or []))
    except (TypeError, ValueError):  # ragged nested lists
        raise SheafError("weights must be real 2-D arrays (n_out, n_in)") from None
    if complex_values:
        raise SheafError("weights and biases must be real (complex values would lose their "
                         "imaginary part)")
    try:
        weights = [np.asarray(W, dtype=float) for W in weights]
    except (TypeError, ValueError):
        raise SheafError("weights must be real 2-D arrays (n_out, n_in)") from None
    if not weights:
        raise SheafError("a network needs at least one weight matrix")
    if biases is None:
        biases = [None] * len(weights)
    biases = list(biases)
    if len(biases) != len(weights):
        raise SheafError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
    try:
        biases = [np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=float).reshape(-1)
                  for W, b in zip(weights, biases)]
    except (TypeError, ValueError):
        raise SheafError("biases must be real 1-D arrays") from None
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        if W.ndim != 2:
            raise SheafError(f"layer {l}: weight must be 2-D (n_out, n_in), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise SheafError(f"layer {l}: bias has shape {b.shape}, expected ({W.shape[0]},)")
        if l > 1 and W.shape[1] != weights[l - 2].shape[0]:
            raise SheafError(f"layer {l}: weight has shape {W.shape} (n_out, n_in) but layer "
                             f"{l - 1} outputs {weights[l - 2].shape[0]} values")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise SheafError(f"layer {l}: weights or biases contain NaN or inf")
    return weights, biases


ACTIVATIONS = ("relu", "leaky_relu", "hardtanh", "relu6", "identity")


def make_gate(activation, n, *, negative_slope=0.01, strict=False):
    """The :class:`graphsheaf.PiecewiseLinearGate` of a named activation on n neurons.

    ``"relu"``, ``"leaky_relu"`` (slope ``negative_slope`` below 0), ``"hardtanh"``
    (clip to [-1, 1]), ``"relu6"`` (clip to [0, 6]) or ``"identity"``; a gate object
    is returned as it is (its size checked).

    Examples
    --------
    >>> from graphsheaf.neural.builder import make_gate
    >>> make_gate("leaky_relu", 2, negative_slope=0.1).value(np.array([-1.0, 2.0])).tolist()
    [-0.1, 2.0]
    """
    if isinstance(activation, PiecewiseLinearGate):
        if activation.n != n:
            raise SheafError(f"{activation!r} has {activation.n} neurons; the layer has {n}")
        return activation
    if isinstance(activation, StateDependentMap):
        raise SheafError(f"{activation!r} is not an elementwise piecewise-linear gate "
                         "(gs.PiecewiseLinearGate)")
    if activation == "relu":
        return ReLUGate(n, strict=strict)
    if activation == "leaky_relu":
        return PiecewiseLinearGate(n, [0.0], [float(negative_slope), 1.0], strict=strict)
    if activation == "hardtanh":
        return PiecewiseLinearGate(n, [-1.0, 1.0], [0.0, 1.0, 0.0], strict=strict)
    if activation == "relu6":
        return PiecewiseLinearGate(n, [0.0, 6.0], [0.0, 1.0, 0.0], strict=strict)
    if activation == "identity":
        return PiecewiseLinearGate(n, [], [1.0], strict=strict)
    raise SheafError(f"activation must be one of {ACTIVATIONS} or a gs.PiecewiseLinearGate, "
                     f"got {activation!r}")


def neural_sheaf(weights, biases=None, *, output="identity", output_vertex="auto",
                 extension="block", strict_relu=False, activation="relu", negative_slope=0.01):
    """Build the neural sheaf of a feedforward network with piecewise-linear activations.

    Parameters
    ----------
    weights : list of arrays
        ``W^(ℓ)`` with shape (n_ℓ, n_{ℓ-1}) (PyTorch's convention).
    biases : list of arrays, optional
        ``b^(ℓ)`` of shape (n_ℓ,); zeros when omitted.
    output : {"identity", "sigmoid", "softmax"}
        Output activation φ.
    output_vertex : "auto" or bool
        Whether to add the output vertex ``"y"``. "auto" follows the authors: only when
        φ is not the identity (for the identity the output is read off ``z^(k+1)``).
    extension : {"block", "single"}
        How extended stalks carry the bias: a block of ones with ``W̄ = [W | diag(b)]``
        (the authors' code, default) or one trailing 1 with ``W̄ = [W | b]``.
    strict_relu : bool
        Tie rule at the breakpoints: ``z > 0`` active instead of the authors' ``z >= 0``.
    activation : str, PiecewiseLinearGate, or list of them
        The hidden gates: ``"relu"`` (default), ``"leaky_relu"``, ``"hardtanh"``,
        ``"relu6"``, ``"identity"``, a :class:`graphsheaf.PiecewiseLinearGate`, or a list
        with one entry per hidden layer. A gate whose regions have intercepts
        (hard-tanh, ReLU6) reads a pre-activation stalk ``z̄ = [z; 1]`` that carries a
        pinned 1, as the biases ride on the pinned ones of ``ā``.
    negative_slope : float
        Slope of ``"leaky_relu"`` below 0.

    Returns
    -------
    networkx.DiGraph
        Nodes carry ``dim``, ``kind`` in {"input", "preactivation", "activation",
        "output"} and ``layer``; edges carry the maps, ``kind`` in {"affine", "relu",
        "output"} and ``layer``. ``S.graph`` holds ``input`` and ``output`` (node
        names), ``constant`` (node -> indices of its constant coordinates),
        ``pinned`` (the input and the constants, for drawing), ``dims`` and
        ``output_activation``.

    Examples
    --------
    >>> S = gn.neural_sheaf([np.ones((3, 2)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    >>> list(S), [S.nodes[v]["dim"] for v in S]
    (['x', 'z1', 'a1', 'z2'], [5, 3, 4, 1])
    >>> [S.edges[e]["kind"] for e in S.edges]
    ['affine', 'relu', 'affine']
    >>> T = gn.neural_sheaf([np.ones((3, 2)), np.ones((1, 3))], activation="hardtanh")
    >>> T.nodes["z1"]["dim"], gn.predict(T, np.array([1.0, -0.5])).tolist()
    (4, [1.5])
    """
    if output not in ("identity", "sigmoid", "softmax"):
        raise SheafError(f"output must be 'identity', 'sigmoid' or 'softmax', got {output!r}")
    if extension not in ("block", "single"):
        raise SheafError(f"extension must be 'block' or 'single', got {extension!r}")
    weights, biases = _check_params(weights, biases)
    dims = [weights[0].shape[1]] + [W.shape[0] for W in weights]
    k = len(weights) - 1
    acts = list(activation) if isinstance(activation, (list, tuple)) else [activation] * k
    if len(acts) != k:
        raise SheafError(f"activation lists {len(acts)} entries for {k} hidden layers")
    gates = [make_gate(a, dims[l + 1], negative_slope=negative_slope, strict=strict_relu)
             for l, a in enumerate(acts)]
    with_y = (output != "identity") if output_vertex == "auto" else bool(output_vertex)
    S = nx.DiGraph()
    constant = {}

    def ones_width(l):  # width of the constant block carried by ā^(l), l = 0..k
        return dims[l + 1] if extension == "block" else 1

    prev = "x"
    S.add_node("x", dim=dims[0] + ones_width(0), kind="input", layer=0)
    constant["x"] = list(range(dims[0], dims[0] + ones_width(0)))
    for l in range(1, k + 2):
        W, b = weights[l - 1], biases[l - 1]
        n = dims[l]
        z = f"z{l}"
        ext = l <= k and gates[l - 1].has_intercept  # z̄ = [z; 1] for the gate's intercepts
        S.add_node(z, dim=n + ext, kind="preactivation", layer=l)
        if ext:
            constant[z] = [n]
        W_bar = np.hstack([W, np.diag(b) if extension == "block" else b[:, None]])
        S.add_edge(prev, z, source_map=W_bar, target_map=np.eye(n, n + ext), kind="affine",
                   layer=l)
        if l <= k:
            a = f"a{l}"
            S.add_node(a, dim=n + ones_width(l), kind="activation", layer=l)
            constant[a] = list(range(n, n + ones_width(l)))
            P = np.hstack([np.eye(n), np.zeros((n, ones_width(l)))])
            S.add_edge(z, a, source_map=gates[l - 1], target_map=P, kind="relu", layer=l)
            prev = a
    out_node = f"z{k + 1}"
    if with_y:
        n = dims[-1]
        phi = np.eye(n) if output == "identity" else OutputActivation(output, n)
        S.add_node("y", dim=n, kind="output", layer=k + 1)
        S.add_edge(out_node, "y", source_map=phi, target_map=np.eye(n), kind="output",
                   layer=k + 1)
        out_node = "y"
    S.graph.update(input="x", output=out_node, constant=constant, dims=dims,
                   output_activation=output, extension=extension,
                   pinned={"x": None, **{v: set(c) for v, c in constant.items() if v != "x"}})
    return S


def architecture(S):
    """Return ``[n_0, ..., n_{k+1}]`` of a neural sheaf, read from the maps on its edges."""
    return NetworkPlan(S).dims


def layer_nodes(S):
    """Return (affine edges in order, [z nodes], [input and hidden a nodes]) of a neural sheaf."""
    plan = NetworkPlan(S)
    return list(plan.affine_edges), list(plan.z_nodes), [plan.input] + list(plan.a_nodes)


def to_weights(S):
    """Return ``(weights, biases)`` read back from the affine edges of a neural sheaf.

    The bias of a layer is ``W̄_const @ 1``, the map's block on the pinned ones (the
    diagonal for the default layout).

    Examples
    --------
    >>> W, b = gn.init_weights([2, 3, 1], rng=1)
    >>> W2, b2 = gn.to_weights(gn.neural_sheaf(W, b))
    >>> all(np.array_equal(u, v) for u, v in zip(W, W2))
    True
    """
    plan = NetworkPlan(S)
    return [w.copy() for w in plan.W], [v.copy() for v in plan.b]


def from_sklearn(mlp, **kw):
    """Build the neural sheaf of a fitted scikit-learn ``MLPRegressor``/``MLPClassifier``.

    Hidden units must be ``"relu"`` or ``"identity"`` (piecewise linear); ``"tanh"``
    and ``"logistic"`` are refused. The output activation follows the estimator:
    identity for regressors, sigmoid for binary and softmax for multi-class
    classifiers. scikit-learn stores weights as (n_in, n_out): they are transposed here.
    """
    if not hasattr(mlp, "coefs_"):
        raise SheafError("the scikit-learn estimator is not fitted (no coefs_)")
    act = getattr(mlp, "activation", "relu")
    if act not in ("relu", "identity"):
        raise SheafError(f"activation={act!r} is not piecewise linear, so the network is not a "
                         "neural sheaf here; use 'relu' or 'identity'")
    kw.setdefault("activation", act)
    out = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}.get(
        getattr(mlp, "out_activation_", "identity"))
    if out is None:
        raise SheafError(f"unsupported output activation {mlp.out_activation_!r}")
    kw.setdefault("output", out)
    return neural_sheaf([np.asarray(W).T for W in mlp.coefs_],
                        [np.asarray(b) for b in mlp.intercepts_], **kw)


def from_torch(module, example_input=None, *, output="identity", **kw):
    """Build the neural sheaf of a PyTorch module.

    An ``nn.Sequential`` of ``Linear`` layers and gates (``ReLU``, ``LeakyReLU``,
    ``PReLU`` with per-neuron slopes, ``Hardtanh``, ``ReLU6``, ``Identity``; a trailing
    ``Sigmoid`` or ``Softmax`` sets the output activation) becomes the paper's chain
    sheaf. Any other module is traced with ``torch.fx`` (``example_input`` gives the input
    shape, batch first) and becomes a DAG sheaf (:func:`dag_sheaf`): Linear, Conv1d/2d,
    MaxPool/AvgPool1d/2d, BatchNorm1d/2d in evaluation mode, Flatten, the gates, residual
    adds and channel concatenations; any other operation is refused with its name and
    the node of the traced graph. Parameter names are kept (``S.graph["param_names"]``
    for chains, each edge's ``params`` for DAGs), so that
    ``gn.local_gradients(..., by_name=True)`` is keyed like ``module.named_parameters()``.

    Examples
    --------
    >>> import torch, graphsheaf.neural as gn
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> gn.from_torch(net).graph["param_names"]
    [('0.weight', '0.bias'), ('2.weight', '2.bias')]
    """
    try:
        import torch.nn as tnn
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("from_torch needs PyTorch: pip install graphsheaf[torch]") from err
    if not _is_torch_mlp(module, tnn) and example_input is not None:
        from .dag.build import dag_sheaf
        from .dag.torch_io import trace_torch
        spec, shape, name, out = trace_torch(module, example_input)
        return dag_sheaf(spec, shape, input_name=name, output=out)
    if not isinstance(module, (tnn.Sequential, tnn.Linear)):
        raise SheafError(f"from_torch: a {type(module).__name__} is traced with torch.fx and needs "
                         "example_input (a batch of inputs, batch first)")
    layers = list(module.children()) if isinstance(module, tnn.Sequential) else [module]
    weights, biases, gates = [], [], []
    strict = kw.pop("strict_relu", False)
    expect_linear = True
    for i, layer in enumerate(layers):
        if isinstance(layer, tnn.Linear):
            if not expect_linear:
                raise SheafError(f"layer {i}: two Linear layers need a gate between them "
                                 "(nn.Identity for none)")
            weights.append(layer.weight.detach().cpu().double().numpy().copy())
            biases.append(None if layer.bias is None
                          else layer.bias.detach().cpu().double().numpy().copy())
            expect_linear = False
            continue
        gate = _torch_gate(layer, weights[-1].shape[0] if weights else 0, tnn, strict)
        if gate is not None:
            if expect_linear:
                raise SheafError(f"layer {i}: {type(layer).__name__} must follow a Linear layer")
            gates.append(gate)
            expect_linear = True
        elif isinstance(layer, (tnn.Sigmoid, tnn.Softmax)) and i == len(layers) - 1:
            output = "sigmoid" if isinstance(layer, tnn.Sigmoid) else "softmax"
        else:
            raise SheafError(f"layer {i}: {type(layer).__name__} is not supported (Linear, ReLU, "
                             "LeakyReLU, PReLU, Hardtanh, ReLU6, Identity and a final "
                             "Sigmoid/Softmax)")
    if expect_linear:
        raise SheafError("the network must end with a Linear layer (or Linear + Sigmoid/Softmax)")
    S = neural_sheaf(weights, biases, output=output, activation=gates, strict_relu=strict, **kw)
    names = [(f"{i}.weight", f"{i}.bias" if layer.bias is not None else None)
             for i, layer in enumerate(layers) if isinstance(layer, tnn.Linear)]
    S.graph["param_names"] = names if isinstance(module, tnn.Sequential) else \
        [("weight", "bias" if layers[0].bias is not None else None)]
    return S


def _is_torch_mlp(module, tnn):
    """A Sequential (or a lone Linear) of the layers the chain construction takes."""
    layers = list(module.children()) if isinstance(module, tnn.Sequential) else [module]
    ok = (tnn.Linear, tnn.ReLU, tnn.ReLU6, tnn.LeakyReLU, tnn.PReLU, tnn.Hardtanh, tnn.Identity)
    return bool(layers) and isinstance(layers[0], tnn.Linear) and all(
        isinstance(m, ok) or (isinstance(m, (tnn.Sigmoid, tnn.Softmax)) and i == len(layers) - 1)
        for i, m in enumerate(layers))


def to_torch(S):
    """An ``nn.Module`` (float64) computing the sheaf's forward pass from the maps on its edges.

    Chain sheaves give an ``nn.Sequential`` of ``Linear`` layers and activation modules
    (ReLU, LeakyReLU, PReLU, Hardtanh, ReLU6, Identity; a final Sigmoid/Softmax for those
    outputs); DAG sheaves a module that runs every edge's operation in topological order.
    Inputs are batch first (``(B, n_0)`` or ``(B, C, H, W)``), as PyTorch's.

    Examples
    --------
    >>> import numpy as np, torch, graphsheaf.neural as gn
    >>> S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    >>> x = np.array([[0.5, -1.0]])
    >>> bool(np.allclose(gn.to_torch(S)(torch.tensor(x)).detach().numpy().T, gn.predict(S, x.T)))
    True
    """
    try:
        import torch
        import torch.nn as tnn
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("to_torch needs PyTorch: pip install graphsheaf[torch]") from err
    from .dag.plan import is_dag_sheaf
    if is_dag_sheaf(S):
        from .dag.torch_io import to_torch_module
        return to_torch_module(S)
    plan = NetworkPlan(S)
    W, b = to_weights(S)
    layers = []
    for l, (Wl, bl) in enumerate(zip(W, b)):
        lin = tnn.Linear(Wl.shape[1], Wl.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(Wl))
            lin.bias.copy_(torch.from_numpy(bl))
        layers.append(lin)
        if l < len(plan.gates):
            layers.append(_torch_activation(plan.gates[l], tnn, torch))
    if plan.output_activation == "sigmoid":
        layers.append(tnn.Sigmoid())
    elif plan.output_activation == "softmax":
        layers.append(tnn.Softmax(dim=1))
    return tnn.Sequential(*layers)


def _torch_activation(g, tnn, torch):
    """The torch module of a piecewise-linear gate (refused when it has no torch equivalent)."""
    bp, sl = g.breakpoints.tolist(), g.slopes
    if sl.ndim == 2 and bp == [0.0]:
        m = tnn.PReLU(num_parameters=g.n).double()
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(sl[:, 0].copy()))
        return m
    if sl.ndim == 1:
        s = sl.tolist()
        if bp == [] and s == [1.0]:
            return tnn.Identity()
        if bp == [0.0] and s == [0.0, 1.0] and g.offset == 0:
            return tnn.ReLU()
        if bp == [0.0] and s[1] == 1.0 and g.offset == 0:
            return tnn.LeakyReLU(s[0])
        if len(bp) == 2 and s == [0.0, 1.0, 0.0]:
            return tnn.ReLU6() if bp == [0.0, 6.0] else tnn.Hardtanh(bp[0], bp[1])
    raise SheafError(f"to_torch: the gate {g!r} has no PyTorch module")


def _torch_gate(layer, n, tnn, strict):
    """The piecewise-linear gate of a PyTorch activation module on n neurons, or None."""
    if isinstance(layer, tnn.ReLU):
        return ReLUGate(n, strict=strict)
    if isinstance(layer, tnn.ReLU6):
        return PiecewiseLinearGate(n, [0.0, 6.0], [0.0, 1.0, 0.0], strict=strict)
    if isinstance(layer, tnn.LeakyReLU):
        return PiecewiseLinearGate(n, [0.0], [float(layer.negative_slope), 1.0], strict=strict)
    if isinstance(layer, tnn.PReLU):
        a = layer.weight.detach().cpu().double().numpy().reshape(-1)
        a = np.broadcast_to(a, (n,)) if a.size == 1 else a
        if a.size != n:
            raise SheafError(f"PReLU has {a.size} slopes; the layer has {n} neurons")
        return PiecewiseLinearGate(n, [0.0], np.stack([a, np.ones(n)], axis=1), strict=strict)
    if isinstance(layer, tnn.Hardtanh):
        lo, hi = float(layer.min_val), float(layer.max_val)
        return PiecewiseLinearGate(n, [lo, hi], [0.0, 1.0, 0.0], offset=min(max(0.0, lo), hi),
                                   strict=strict)
    if isinstance(layer, tnn.Identity):
        return PiecewiseLinearGate(n, [], [1.0], strict=strict)
    return None
