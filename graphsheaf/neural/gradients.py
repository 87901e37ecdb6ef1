"""Gradients of a chain network's weights from a batch: the exact mode's local rule at the
pinned equilibrium and backpropagation's, through the compiled plan's sweeps."""

from functools import partial

import numpy as np

from ..exceptions import SheafError
from .dag.api import dag_backprop_gradients, dag_local_gradients
from .dag.plan import is_dag_sheaf
from .exact import exact_gradients
from .kernels import forward_calls, run, transposed_calls
from .losses import get_loss
from .plan import NetworkPlan

__all__ = ["backprop", "backprop_gradients", "check_xy", "local_gradients"]


def backprop(plan, X, Y, loss, output=False, out=None):
    """Gradients of ``Σ U(f(x), y)``: one forward sweep and one transposed sweep
    (``output=True``: and the network output f(x)); ``out = (gW, gb)`` arrays receive them.

    The sweeps and the slopes run as calls bound once per plan arrays and batch size to
    buffers the plan keeps (:class:`_Backprop`), the batch copied into its own."""
    M = X.shape[1]
    key = ("backprop", M)
    bp = plan.scratch.get(key)
    ident = plan.parameter_ids() + (X.shape[0],)
    if bp is None or bp.ident != ident:
        bp = plan.scratch[key] = _Backprop(plan, X.shape[0], M, ident)
    np.copyto(bp.X, X)
    run(bp.forward)
    np.copyto(bp.v, loss.grad(bp.z[-1], Y))
    run(bp.backward)
    gW, gb = out if out is not None else ([None] * len(bp.yW), [None] * len(bp.yW))
    gW = [np.dot(d, a.T, out=o) for d, a, o in zip(bp.yW, bp.a, gW)]
    gb = [np.sum(d, axis=1, out=o) for d, o in zip(bp.yW, gb)]
    return (gW, gb, bp.z[-1].copy()) if output else (gW, gb)


class _Backprop:
    """:func:`backprop`'s buffers and bound calls for one plan and batch size: the forward
    sweep, the gates' slopes (written in place) and the transposed sweep from the output
    gradient ``v``."""

    def __init__(self, plan, n_in, M, ident):
        self.ident = ident
        k = plan.k
        self.X = np.empty((n_in, M))
        self.z = [np.empty((W.shape[0], M)) for W in plan.W]
        self.a = [self.X] + [np.empty_like(x) for x in self.z[:k]]
        sig = [np.empty_like(x) for x in self.z[:k]]
        self.forward = forward_calls(plan, self.X, self.z, self.a) + [
            partial(gate.slope, z, out=s) for gate, z, s in zip(plan.gates, self.z, sig)]
        self.v = np.empty_like(self.z[k])
        self.yW = [np.empty_like(x) for x in self.z[:k]] + [self.v]
        self.backward = transposed_calls(plan.W, sig, self.yW, [np.empty_like(x) for x in sig])


def _by_name(S, gW, gb):
    """Chain gradients keyed by parameter name: the source module's (from_torch) or
    ``layer{ℓ}.weight`` / ``layer{ℓ}.bias``."""
    names = S.graph.get("param_names") or [(f"layer{l}.weight", f"layer{l}.bias")
                                           for l in range(1, len(gW) + 1)]
    out = {}
    for (wn, bn), w, b in zip(names, gW, gb):
        out[wn] = w
        if bn is not None:
            out[bn] = b
    return out


def local_gradients(S, X, Y, *, loss=None, gamma=0.001, max_passes=10, by_name=False):
    """Exact-mode weight gradients: the local rule ``r aᵀ`` at the pinned equilibrium, / γ.

    Input pinned to X, output tied to Y by an edge of stiffness γ, the cochain is moved
    to the minimiser of the Dirichlet energy (an on/off/kink active set, see
    :mod:`graphsheaf.neural.exact`); each affine edge then reads its own residual r and
    input stalk a.

    Parameters
    ----------
    S : neural sheaf
    X, Y : arrays (n_0, M) and (n_out, M)
        Samples as columns.
    loss : str or Potential, optional
        Output-edge potential (default from the output activation).
    gamma : float
        Output stiffness; as γ → 0 the result tends to :func:`backprop_gradients`.
    max_passes : int
        Pattern passes before a sample whose pattern still moves is left unsettled.
    by_name : bool, default False
        Return ``({name: gradient}, info)`` keyed like the source module's
        ``named_parameters()`` (sheaves from :func:`from_torch`) or by the builder's names
        (``layer1.weight``, ...; a DAG sheaf's ``<op name>.weight``).

    DAG sheaves (:func:`dag_sheaf`, :func:`from_torch` of a non-chain module) take the
    summed ½‖output − Y‖² loss; shared weights (convolutions) sum the local rule over
    every edge entry that shares them. Their equilibrium keeps the forward pass's
    activation pattern, exact for γ below the first kink (``docs/architectures.md``).

    Returns
    -------
    grads_W, grads_b : lists of arrays
        Summed over the samples (with ``by_name``: one dict). A DAG sheaf gives a dict
        edge -> flat parameter gradient (or name -> gradient).
    info : dict
        ``sweeps`` (applications of δ_Ω⁻¹ or δ_Ω⁻ᵀ to the batch; in ``sample_sweeps``
        each pass is weighted by the share of samples it solves), ``pattern_passes``
        (most passes any sample needed), ``mean_passes``, ``kinked`` (samples with a
        neuron at its kink), ``unsettled`` and ``equilibrium_energy``.

    Examples
    --------
    >>> S = gn.neural_sheaf(*gn.init_weights([2, 6, 1], rng=0))
    >>> X = np.random.default_rng(1).standard_normal((2, 40)); Y = (X ** 2).sum(0, keepdims=True)
    >>> gW, gb, info = gn.local_gradients(S, X, Y, gamma=1e-6)
    >>> bW, bb = gn.backprop_gradients(S, X, Y)
    >>> bool(np.allclose(gW[0], bW[0], rtol=1e-4)), info["unsettled"]
    (True, 0)
    """
    if is_dag_sheaf(S):
        if loss not in (None, "l2", "mse"):
            raise SheafError("DAG sheaves take the summed ½‖output − Y‖² loss (loss=None)")
        return dag_local_gradients(S, X, Y, gamma=gamma, by_name=by_name)
    plan = NetworkPlan(S)
    loss = get_loss(loss, plan.output_activation)
    X, Y = check_xy(plan, X, Y)
    gW, gb, info = exact_gradients(plan, X, Y, loss, gamma, max_passes)
    return (_by_name(S, gW, gb), info) if by_name else (gW, gb, info)


def backprop_gradients(S, X, Y, *, loss=None, by_name=False):
    """Gradients of ``Σ_samples U(f(x), y)`` with respect to W_ℓ, b_ℓ (backpropagation).

    One forward pass and one transposed sweep; the baseline for :func:`local_gradients`.

    Examples
    --------
    >>> S = gn.neural_sheaf(*gn.init_weights([2, 3, 1], rng=0))
    >>> gW, gb = gn.backprop_gradients(S, np.ones((2, 5)), np.zeros((1, 5)))
    >>> [g.shape for g in gW], [g.shape for g in gb]
    ([(3, 2), (1, 3)], [(3,), (1,)])
    """
    if is_dag_sheaf(S):
        return dag_backprop_gradients(S, X, Y, by_name=by_name)
    plan = NetworkPlan(S)
    loss = get_loss(loss, plan.output_activation)
    X, Y = check_xy(plan, X, Y)
    gW, gb = backprop(plan, X, Y, loss)
    return _by_name(S, gW, gb) if by_name else (gW, gb)



def check_xy(plan, X, Y):
    """X (n_0, M) and Y (n_out, M) as float arrays, or SheafError naming what is wrong."""
    try:
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
    except (TypeError, ValueError):
        raise SheafError("X and Y must be arrays of real numbers") from None
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[None, :] if plan.dims[-1] == 1 and Y.shape[0] == X.shape[1] else Y[:, None]
    if X.ndim != 2 or X.shape[0] != plan.dims[0]:
        raise SheafError(f"X has shape {X.shape}; expected ({plan.dims[0]}, N), samples as columns")
    if X.shape[1] == 0:
        raise SheafError("X holds no samples (shape (n_0, 0))")
    if Y.ndim != 2 or Y.shape != (plan.dims[-1], X.shape[1]):
        raise SheafError(f"Y has shape {Y.shape}; expected ({plan.dims[-1]}, {X.shape[1]})")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise SheafError("X or Y contains NaN or inf")
    return X, Y
