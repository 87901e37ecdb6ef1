"""PyTorch in and out: :func:`trace_torch` turns any ``torch.fx``-traceable module made of
the supported operations into the operation list of :func:`~.build.dag_sheaf`;
:func:`to_torch_module` runs a DAG sheaf's maps as an ``nn.Module``."""

import operator

import numpy as np

from ...exceptions import SheafError
from .plan import DagPlan

__all__ = ["to_torch_module", "trace_torch"]


def _torch():
    try:
        import torch
        import torch.fx  # noqa: F401
        import torch.nn as tnn
        import torch.nn.functional as F
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("this needs PyTorch: pip install graphsheaf[torch]") from err
    return torch, tnn, F


def _np(t):
    return None if t is None else t.detach().cpu().double().numpy().copy()


def _pair(v):
    return v if isinstance(v, int) else tuple(int(x) for x in v)


def _module_entry(name, target, mod, args, tnn):
    """The operation of one ``call_module`` node (or None to refuse)."""
    entry = {"name": name, "input": args[0]}
    params = {"weight": f"{target}.weight", "bias": f"{target}.bias"}
    if isinstance(mod, tnn.Linear):
        return dict(entry, op="linear", weight=_np(mod.weight), bias=_np(mod.bias), params=params)
    if isinstance(mod, (tnn.Conv1d, tnn.Conv2d)):
        if mod.groups != 1 or any(d != 1 for d in np.atleast_1d(mod.dilation)) \
                or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
            return None
        return dict(entry, op="conv1d" if isinstance(mod, tnn.Conv1d) else "conv2d",
                    weight=_np(mod.weight), bias=_np(mod.bias), stride=_pair(mod.stride),
                    padding=_pair(mod.padding), params=params)
    if isinstance(mod, (tnn.MaxPool1d, tnn.MaxPool2d)):
        if mod.ceil_mode or any(d != 1 for d in np.atleast_1d(mod.dilation)):
            return None
        return dict(entry, op="maxpool1d" if isinstance(mod, tnn.MaxPool1d) else "maxpool2d",
                    kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), padding=_pair(mod.padding))
    if isinstance(mod, (tnn.AvgPool1d, tnn.AvgPool2d)):
        if mod.ceil_mode or not mod.count_include_pad or getattr(mod, "divisor_override", None):
            return None
        return dict(entry, op="avgpool1d" if isinstance(mod, tnn.AvgPool1d) else "avgpool2d",
                    kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), padding=_pair(mod.padding))
    if isinstance(mod, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
        if mod.training:
            raise SheafError(f"node {name!r} ({target}): batch normalisation is folded in evaluation "
                             "mode; call module.eval() first")
        if not mod.affine or mod.running_mean is None:
            return None
        return dict(entry, op="batchnorm", weight=_np(mod.weight), bias=_np(mod.bias),
                    mean=_np(mod.running_mean), var=_np(mod.running_var), eps=float(mod.eps), params=params)
    if isinstance(mod, tnn.ReLU):
        return dict(entry, op="relu")
    if isinstance(mod, tnn.ReLU6):
        return dict(entry, op="relu6")
    if isinstance(mod, tnn.LeakyReLU):
        return dict(entry, op="leaky_relu", negative_slope=float(mod.negative_slope))
    if isinstance(mod, tnn.Hardtanh):
        return dict(entry, op="hardtanh", min_val=float(mod.min_val), max_val=float(mod.max_val))
    if isinstance(mod, (tnn.Identity, tnn.Dropout)) or (isinstance(mod, tnn.Flatten) and mod.start_dim == 1
                                                        and mod.end_dim == -1):
        return dict(entry, op="flatten")  # a new name for the same coordinates
    return None


def _function_entry(name, fn, args, kwargs, torch, F):
    tensors = [a for a in args if isinstance(a, str)]
    if fn in (operator.add, torch.add) and len(tensors) == 2 == len(args) and not kwargs:
        return {"name": name, "op": "add", "inputs": tensors}
    if fn is torch.cat:
        seq = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim == 1 and all(isinstance(a, str) for a in seq):
            return {"name": name, "op": "concat", "inputs": list(seq)}
        return None
    if fn is torch.flatten and len(tensors) == 1:
        start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
        return {"name": name, "op": "flatten", "input": tensors[0]} if start == 1 else None
    if fn in (torch.relu, F.relu) and len(tensors) == 1:
        return {"name": name, "op": "relu", "input": tensors[0]}
    return None


def _method_entry(name, method, args):
    if method == "relu":
        return {"name": name, "op": "relu", "input": args[0]}
    if method == "flatten" and (args[1:] == (1,) or args[1:] == ()):
        return {"name": name, "op": "flatten", "input": args[0]} if args[1:] == (1,) else None
    if method in ("view", "reshape") and len(args) == 3 and args[2] == -1:
        return {"name": name, "op": "flatten", "input": args[0]}  # x.view(x.size(0), -1)
    return None


def trace_torch(module, example_input):
    """``(spec, input_shape, input_name)`` of a traceable module (see :func:`dag_sheaf`)."""
    torch, tnn, F = _torch()
    gm = torch.fx.symbolic_trace(module)
    mods = dict(gm.named_modules())
    spec, inputs, out = [], [], None
    sizes = {}
    for node in gm.graph.nodes:
        args = tuple(a.name if isinstance(a, torch.fx.Node) else
                     (tuple(x.name if isinstance(x, torch.fx.Node) else x for x in a)
                      if isinstance(a, (list, tuple)) else a) for a in node.args)
        kwargs = {k: (v.name if isinstance(v, torch.fx.Node) else v) for k, v in node.kwargs.items()}
        entry = None
        if node.op == "placeholder":
            inputs.append(node.name)
            continue
        if node.op == "output":
            out = args[0]
            continue
        if node.op == "call_module":
            entry = _module_entry(node.name, node.target, mods[node.target], args, tnn)
            what = type(mods[node.target]).__name__
        elif node.op == "call_function":
            entry = _function_entry(node.name, node.target, args, kwargs, torch, F)
            what = getattr(node.target, "__name__", str(node.target))
        elif node.op == "call_method":
            if node.target == "size":  # x.size(0) feeding a view: the batch size
                sizes[node.name] = True
                continue
            margs = tuple("-batch-" if a in sizes else a for a in args)
            entry = _method_entry(node.name, node.target, margs)
            what = f"Tensor.{node.target}"
        else:
            what = node.op
        if entry is None:
            raise SheafError(f"operation {what} at node {node.name!r} of the traced graph is not "
                             "supported (Linear, Conv1d/2d, MaxPool/AvgPool1d/2d, BatchNorm1d/2d in "
                             "eval mode, Flatten, ReLU, LeakyReLU, ReLU6, Hardtanh, Identity, "
                             "Dropout, add, cat on channels)")
        spec.append(entry)
    if len(inputs) != 1:
        raise SheafError(f"the module takes {len(inputs)} inputs; a network sheaf has one")
    if not isinstance(out, str):
        raise SheafError("the module must return one tensor")
    shape = tuple(example_input.shape[1:])
    return spec, shape, inputs[0], out


# ------------------------------------------------------------------------------- to_torch

def _gate_fn(torch, gate):
    bp = torch.tensor(gate.breakpoints, dtype=torch.float64)
    slopes = torch.tensor(gate.slopes, dtype=torch.float64)
    inter = torch.tensor(gate.intercepts, dtype=torch.float64)

    def fn(z):
        r = torch.bucketize(z, bp, right=not gate.strict)
        if slopes.ndim == 1:
            return slopes[r] * z + inter[r]
        idx = torch.arange(z.shape[1])
        return slopes[idx, r] * z + inter[idx, r]
    return fn


def to_torch_module(S):
    """An ``nn.Module`` computing the DAG sheaf's forward pass (float64, inputs as (B, ...))."""
    torch, tnn, F = _torch()
    plan = DagPlan(S)

    class SheafNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.layers = tnn.ModuleDict()
            self.steps = []
            for e in plan.edges:
                key = f"e{len(self.steps)}"
                shape_u = tuple(S.nodes[e.tail]["shape"])
                d = e.data
                if e.kind == "linear":
                    A = np.asarray(e.A)
                    lin = tnn.Linear(A.shape[1] - 1, A.shape[0], bias=bool(d.get("has_bias"))).double()
                    with torch.no_grad():
                        lin.weight.copy_(torch.from_numpy(A[:, :-1]))
                        if lin.bias is not None:
                            lin.bias.copy_(torch.from_numpy(A[:, -1]))
                    self.layers[key] = lin
                elif e.kind in ("conv1d", "conv2d"):
                    cls = tnn.Conv1d if e.kind == "conv1d" else tnn.Conv2d
                    Wshape = tuple(d["weight_shape"])
                    conv = cls(Wshape[1], Wshape[0], Wshape[2:], stride=d["stride"], padding=d["padding"],
                               bias=bool(d.get("has_bias"))).double()
                    theta = e.theta()
                    with torch.no_grad():
                        conv.weight.copy_(torch.from_numpy(theta[:int(np.prod(Wshape))].reshape(Wshape)))
                        if conv.bias is not None:
                            conv.bias.copy_(torch.from_numpy(theta[int(np.prod(Wshape)):]))
                    self.layers[key] = conv
                elif e.kind == "batchnorm":
                    scale, shift = e._bn_scale_shift()
                    self.register_buffer(f"{key}_scale", torch.from_numpy(scale))
                    self.register_buffer(f"{key}_shift", torch.from_numpy(shift))
                self.steps.append((key, e, shape_u))

        def forward(self, x):
            vals = {plan.input: x.reshape(x.shape[0], -1).double()}
            blocks = {}
            for key, e, shape_u in self.steps:
                u = vals[e.tail]
                B = u.shape[0]
                k = e.kind
                if k == "linear":
                    y = self.layers[key](u)
                elif k in ("conv1d", "conv2d"):
                    y = self.layers[key](u.reshape((B,) + shape_u)).reshape(B, -1)
                elif k in ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"):
                    fn = {"maxpool1d": F.max_pool1d, "maxpool2d": F.max_pool2d,
                          "avgpool1d": F.avg_pool1d, "avgpool2d": F.avg_pool2d}[k]
                    y = fn(u.reshape((B,) + shape_u), e.data["kernel"], e.data["stride"],
                           e.data["padding"]).reshape(B, -1)
                elif k == "batchnorm":
                    C = shape_u[0]
                    per = u.shape[1] // C
                    y = u * getattr(self, f"{key}_scale").repeat_interleave(per) + \
                        getattr(self, f"{key}_shift").repeat_interleave(per)
                elif k == "concat":
                    y = u
                elif k == "add":
                    n = e.rows.size
                    y = u.reshape(B, -1, n).sum(dim=1)
                else:  # a piecewise-linear gate
                    y = _gate_fn(torch, e.A)(u)
                blocks.setdefault(e.head, []).append((int(e.rows[0]), y))
                if sum(b.shape[1] for _, b in blocks[e.head]) == plan.dims[e.head]:
                    ordered = sorted(blocks[e.head], key=lambda t: t[0])
                    vals[e.head] = torch.cat([b for _, b in ordered], dim=1)
            return vals[plan.output].reshape((-1,) + tuple(S.graph["output_shape"]))

    return SheafNet()
