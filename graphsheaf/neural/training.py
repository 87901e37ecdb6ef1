"""Training a neural sheaf: the paper's joint dynamics, an exact fast phase, and backprop.

Three modes share one harness (same initial weights, loss, batches and epochs):

``"paper"``
    The authors' joint Euler step (Bosca & Ghrist §5.2): input and target pinned,
    cochains move by ``α Δt · force`` and weights by ``-Δt β Σ_samples r aᵀ`` from the
    same old state. Each weight update reads only the two stalks of its own edge, and
    nothing travels backwards: this is the only mode free of any backward pass.

``"exact"``
    Each fast phase jumps straight to the pinned equilibrium instead of integrating
    towards it (:mod:`.exact`). For a fixed activation pattern, with an output edge
    of stiffness γ, the equilibrium takes one forward sweep (the forward pass), the
    Gram matrix ``K = GGᵀ`` of the output's response to residuals on every edge
    (``n_out`` transposed sweeps' worth; one product with the masks for the last
    hidden layer), a per-sample problem of size ``n_out`` for the output pull, one
    transposed sweep for the residuals and one forward sweep for the cochain.
    Samples whose pattern then disagrees are solved again, all together, with
    neurons in one of three states (on, off, or at the kink with z held at 0, a
    linear constraint that adds one row per kink to the Gram matrix), until every
    sample's pattern is self-consistent. The slow phase is the local rule
    ``∇_W E = r aᵀ`` at the equilibrium, scaled by 1/γ.

``"backprop-equivalent"``
    The γ → 0 limit of the exact mode: the weight update equals the gradient of the
    loss (backpropagation), computed through the same transposed sweep.

The output stiffness γ matters: the equilibrium energy is ``γ ½ dᵀ(I + γGGᵀ)⁻¹d``
(d = f(x) − y, L2), which for γ = 1 (the paper's unit edge) down-weights samples
with a large response ``GGᵀ`` and rewards large weights; as γ → 0 the update/γ tends
to the backprop gradient. The exact mode defaults to γ = 0.001.
"""

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .._repr import short_repr
from .._random import random_source
from .._threads import single_blas_thread
from ..exceptions import DivergenceError, SheafError
from .dynamics import initial_stalks
from .stalks import Stalks
from .exact import exact_gradients
from .gradients import backprop, backprop_gradients, check_xy, local_gradients
from .kernels import (axpy_into, edge_square_norms, force_calls, forward_output, residual_calls,
                      residuals)
from .losses import L2, get_loss
from .optimizers import SGD, Adam, Momentum, make_optimizer
from .dag.plan import is_dag_sheaf
from .dag.training import dag_train
from .plan import NetworkPlan

__all__ = ["SheafTrainer", "TrainHistory", "train_backprop", "make_optimizer", "SGD",
           "Momentum", "Adam", "local_gradients", "backprop_gradients"]


# ------------------------------------------------------------------------- history

@dataclass
class TrainHistory:
    """Per-epoch record of a training run (epoch 0 is before any update).

    ``train_loss``/``test_loss`` use the ordinary forward pass of the current weights
    and the logged loss of the potential (MSE, or cross-entropy for classifiers).
    ``discord`` holds the batch-mean squared residual per edge of the training
    cochain (paper mode) or of the equilibrium (exact mode). ``sweeps`` and
    ``pattern_passes`` count, per update, applications of δ/δᵀ and pattern passes.
    """

    def __repr__(self):
        return short_repr(self)

    mode: str
    epochs: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    discord: list = field(default_factory=list)
    sweeps: list = field(default_factory=list)
    pattern_passes: list = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def final_train_loss(self):
        return self.train_loss[-1]

    @property
    def final_test_loss(self):
        return self.test_loss[-1] if self.test_loss else None


def _accuracy(loss, z, Y):
    if loss.activation == "sigmoid":
        return float(np.mean((z >= 0) == (Y >= 0.5)))
    if loss.activation == "softmax":
        return float(np.mean(np.argmax(z, axis=0) == np.argmax(Y, axis=0)))
    return None


def _progress(progress, total, desc):
    if progress is False or progress is None and total < 2:
        return None
    try:
        import sys

        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warnings.warn("progress=True needs tqdm: pip install graphsheaf[progress]", stacklevel=3)
        return None
    if progress is None and not sys.stderr.isatty():
        return None
    return tqdm(total=total, desc=desc, leave=False)


# ------------------------------------------------------------------------- trainer

MODES = ("paper", "exact", "backprop-equivalent")


class SheafTrainer:
    """Train the weights of a neural sheaf by local discrepancy minimisation.

    Parameters
    ----------
    S : neural sheaf
        Its affine maps are updated in place at the end of every epoch.
    alpha : float
        Cochain rate (paper mode).
    beta : float, optional
        Weight rate of paper mode; default ``1 / n_train`` (the paper's law).
    dt : float
        Euler step of paper mode (0.005 as the authors for one hidden layer).
    loss : str or Potential, optional
        Output-edge potential; default L2, or BCE/CE for sigmoid/softmax outputs.
    mode : {"paper", "exact", "backprop-equivalent"}
    gamma : float, optional
        Output-edge stiffness. Paper mode default 1 (the unit edge); exact mode 0.001.
    optimizer : {"sgd", "momentum", "adam"} or object
        Optimiser of the exact and backprop-equivalent modes (paper mode uses the
        authors' plain Euler step on the weights).
    learning_rate : float
        Step of that optimiser (default 0.05 for sgd/momentum, 0.01 for adam), applied
        to the batch-mean gradient.
    max_passes : int
        Exact mode: pattern passes per update before a sample whose on/off/kink pattern
        still changes is left unsettled (counted in ``info["unsettled"]``).
    weight_decay : float
        L2 penalty ``½ λ Σ‖W_ℓ‖²`` on the weights (not the biases), in every mode: its
        gradient ``λ W_ℓ`` joins the summed local rule (scikit-learn's ``alpha``).

    Examples
    --------
    >>> W, b = gn.init_weights([2, 8, 1], rng=0)
    >>> S = gn.neural_sheaf(W, b)
    >>> X = np.random.default_rng(0).uniform(-1, 1, (2, 50)); Y = (X ** 2).sum(0, keepdims=True)
    >>> h = gn.SheafTrainer(S, mode="exact", learning_rate=0.1).train(X, Y, epochs=30)
    >>> h.train_loss[-1] < h.train_loss[0]
    True
    """

    def __init__(self, S, *, alpha=1.0, beta=None, dt=0.005, loss=None, mode="paper",
                 gamma=None, optimizer="sgd", learning_rate=None, max_passes=10, weight_decay=0.0):
        if mode not in MODES:
            raise SheafError(f"mode must be one of {MODES}, got {mode!r}")
        self.S = S
        self.dag = is_dag_sheaf(S)
        if self.dag:  # residual/convolutional networks: trained on the compiled DAG plan
            self.mode, self.alpha, self.beta, self.dt = mode, float(alpha), beta, float(dt)
            self.gamma = float(gamma) if gamma is not None else 0.001
            if learning_rate is None:
                learning_rate = 0.01 if optimizer == "adam" else 0.05
            self.optimizer = make_optimizer(optimizer, learning_rate)
            self.weight_decay = float(weight_decay)
            self.state = None
            return
        self.plan = NetworkPlan(S)
        self.alpha, self.beta, self.dt = float(alpha), beta, float(dt)
        self.loss = get_loss(loss, self.plan.output_activation)
        self.mode = mode
        self.gamma = float(gamma) if gamma is not None else (1.0 if mode == "paper" else 0.001)
        if not self.gamma > 0:
            raise SheafError(f"gamma must be > 0, got {gamma}")
        if learning_rate is None:
            learning_rate = 0.01 if optimizer == "adam" else 0.05
        for name, value in (("learning_rate", learning_rate), ("dt", dt), ("alpha", alpha)):
            if not (isinstance(value, (int, float, np.integer, np.floating))
                    and np.isfinite(value) and value > 0):
                raise SheafError(f"{name} must be a finite number > 0, got {value!r}")
        self.optimizer = make_optimizer(optimizer, learning_rate)
        self.max_passes = int(max_passes)
        self.weight_decay = float(weight_decay)
        if not self.weight_decay >= 0:
            raise SheafError(f"weight_decay must be >= 0, got {weight_decay}")
        self.state = None

    # -- paper mode -------------------------------------------------------------
    def _init_state(self, X, init, draw):
        """Paper-mode cochain: the free stalks as views of one buffer (:class:`Stalks`)."""
        st = Stalks(self.plan, X, False, ones=1.0)
        z, a, _ = initial_stalks(self.plan, X, init, draw, False)
        st.load(z, a, None)
        return st

    def train(self, X, Y, X_test=None, Y_test=None, *, epochs=100, steps_per_epoch=None,
              warm_start=True, init="random", rng=None, batch_size=None, callback=None,
              progress=None):
        """Train; return a :class:`TrainHistory`.

        Parameters
        ----------
        X, Y : arrays (n_0, N) and (n_out, N)
            Samples as columns (Y of shape (N,) is accepted for one output).
        epochs : int
        steps_per_epoch : int, optional
            Updates per epoch: 1000 Euler steps in paper mode (the authors'), one pass
            over the mini-batches otherwise.
        warm_start : bool
            Paper mode: keep the cochain between epochs (else re-initialise it each
            epoch with ``init``).
        init : {"random", "zeros", "forward"}
            Paper-mode cochain initialisation.
        rng : seed, Generator or TorchSeed
            Stalk initialisation and mini-batch order.
        batch_size : int, optional
            Mini-batches sharing the weight edges; default the whole set.
        callback : callable, optional
            ``callback(epoch, logs) -> bool``; True stops training. ``logs`` holds
            ``train_loss``, ``test_loss`` (with test data), ``step`` and copies of the
            current ``weights`` and ``biases`` (e.g. to diagnose the network mid-training).
        progress : bool, optional
            tqdm progress bar (default: on for terminals when tqdm is installed).
        """
        if self.dag:
            return dag_train(self.S, X, Y, X_test, Y_test, history=TrainHistory(self.mode),
                             mode=self.mode, epochs=epochs, batch_size=batch_size,
                             optimizer=self.optimizer, gamma=self.gamma, rng=rng,
                             weight_decay=self.weight_decay, steps_per_epoch=steps_per_epoch,
                             dt=self.dt, alpha=self.alpha, beta=self.beta, callback=callback)
        # the graph is the source of truth: read it again (it may have been edited)
        self.plan = NetworkPlan(self.S)
        self._stepper = None  # (a stepper binds the previous plan's arrays)
        self._parameters(augmented=self.mode == "paper")
        X, Y = check_xy(self.plan, X, Y)
        has_test = X_test is not None
        if has_test:
            X_test, Y_test = check_xy(self.plan, X_test, Y_test)
        N = X.shape[1]
        bs = N if batch_size is None else int(batch_size)
        if bs < 1:
            raise SheafError(f"batch_size must be >= 1, got {batch_size}")
        batches = [np.arange(s, min(s + bs, N)) for s in range(0, N, bs)]
        if steps_per_epoch is None:
            steps_per_epoch = 1000 if self.mode == "paper" else len(batches)
        beta = self.beta if self.beta is not None else 1.0 / N
        draw = random_source(rng)
        order_rng = np.random.default_rng(rng if isinstance(rng, (int, np.integer)) else None)
        hist = TrainHistory(self.mode)
        self._record(hist, 0, 0, X, Y, X_test, Y_test, None)
        bar = _progress(progress, epochs * steps_per_epoch, f"sheaf training ({self.mode})")
        t0 = time.perf_counter()
        step = 0
        with single_blas_thread():
            if self.mode == "paper":
                st = self._init_state(X, init, draw)
            for epoch in range(1, epochs + 1):
                if self.mode == "paper" and epoch > 1 and not warm_start:
                    st = self._init_state(X, init, draw)
                sweeps, passes, disc = [], [], None
                for s in range(steps_per_epoch):
                    idx = batches[(step + s) % len(batches)]
                    if len(batches) > 1 and (step + s) % len(batches) == 0:
                        order_rng.shuffle(batches)
                        idx = batches[0]
                    if self.mode == "paper":
                        self._paper_batch(st, Y, idx, beta)
                    else:
                        # a batch is a range of columns: a slice's copy costs 0.4-7.5 µs
                        # against 1.4-18 µs for X[:, idx] (2 × 300 to 784 × 4,000 inputs;
                        # take() would first copy a strided X whole)
                        cols = slice(int(idx[0]), int(idx[-1]) + 1)
                        info = self._update(X[:, cols].copy(), Y[:, cols].copy())
                        sweeps.append(info["sweeps"])
                        passes.append(info["pattern_passes"])
                        disc = info.get("discord", disc)
                    if bar is not None:
                        bar.update(1)
                step += steps_per_epoch
                if self.mode == "paper":
                    disc = self._discord(st, Y)
                hist.sweeps.extend(sweeps)
                hist.pattern_passes.extend(passes)
                self._record(hist, epoch, step, X, Y, X_test, Y_test, disc)
                loss, first = hist.train_loss[-1], hist.train_loss[0]
                if not np.isfinite(loss) or loss > 1e8 * max(first, 1.0):
                    rate = ("dt or beta" if self.mode == "paper" else
                            f"the learning rate ({self.optimizer.lr:g})")
                    raise DivergenceError(
                        f"training diverged in epoch {epoch}: the loss went from {first:.3g} to "
                        f"{loss:.3g}; lower {rate}")
                if callback is not None and callback(epoch, self._logs(hist)):
                    hist.stopped_early = True
                    break
        if bar is not None:
            bar.close()
        self._stepper = None  # (it holds the run's stalks and targets)
        if self.mode == "paper":
            self.state = (st.z, st.a)
        hist.seconds = time.perf_counter() - t0
        self.plan.write_back()
        return hist

    def _paper_batch(self, st, Y, idx, beta):
        if len(idx) == st.buf.shape[1]:  # the whole set: one stepper while the stalks last
            cached = getattr(self, "_stepper", None)
            if cached is None or cached[0] is not st or cached[1] is not Y or cached[2] != beta:
                cached = self._stepper = (st, Y, beta, self._paper_stepper(st, Y, beta))
            cached[3]()
            return
        sub = Stalks(self.plan, st.a[0][:, idx], False, ones=1.0)
        sub.buf[...] = st.buf[:, idx]
        self._paper_step(sub, Y[:, idx], beta)
        st.buf[:, idx] = sub.buf

    def _buffers(self, st):
        """Force stalks, residual buffers, the flat gradient (its blocks follow the
        parameter buffer's layout) and the two moves of a step, ``θ -= c g`` and
        ``st += η F`` (:func:`.kernels.axpy_into`), for a batch of this size: made once,
        the state's move again only for other stalks (a mini-batch's)."""
        M = st.buf.shape[1]
        if getattr(self, "_bufs", (None,))[0] != M:
            F = Stalks(self.plan, st.a[0], False, ones=0.0)  # the constant rows do not move
            g, blocks = self._gradient
            # q_ℓ lives in the force buffer of a_ℓ, which the force then updates in place
            self._bufs = (M, F, [np.empty_like(v) for v in F.z], F.a[1:], g, blocks,
                          axpy_into(self._flat[0], g), [None, None])
        moves = self._bufs[-1]
        if moves[0] is not st.buf:
            moves[:] = st.buf, axpy_into(st.buf, self._bufs[1].buf)
        return self._bufs[1:-1] + (moves[1],)

    def _paper_step(self, st, Y, beta):
        """One joint Euler step (see :meth:`_paper_stepper`)."""
        self._paper_stepper(st, Y, beta)()

    def _paper_stepper(self, st, Y, beta):
        """A function making one joint Euler step of the stalks ``st`` against targets ``Y``
        (all forces and weight updates from the old state), its buffers, views and
        constants bound once: train() makes one for the whole set's stalks and calls it
        every step.

        The cochain moves by ``α Δt`` times the heat equation's forces (one kernel,
        :func:`.kernels.hidden_forces`) plus the output edge's ``-γ ∇U``; each weight
        by ``-Δt β/γ r aᵀ`` from its own edge's residual and tail stalk. The parameters
        are one buffer of ``[W_ℓ | b_ℓ]`` blocks and the stalks carry their pinned 1
        (:meth:`_flatten`), so each affine edge's residual is one product and its local
        rule ``r [a; 1]ᵀ`` another, and every parameter moves in one operation.
        """
        plan, k = self.plan, self.plan.k
        theta, decay, frozen = self._parameters(augmented=True)
        if st.a_aug is None:
            raise SheafError("paper-mode steps take stalks that carry their pinned 1 "
                             "(Stalks(..., ones=1.0))")
        eta, wstep = self.alpha * self.dt, self.dt * beta / self.gamma
        F, rb, qb, g, grads, move_theta, move_state = self._buffers(st)
        z, a, augmented = st.z, st.a, (self._blocks, st.a_aug)
        # the residuals, the local rules r_ℓ [a; 1]ᵀ (before any stalk moves) and the hidden
        # forces, bound once to these arrays (the parameters move in place)
        program = (residual_calls(plan, z, a, rb, qb, augmented=augmented)
                   + [partial(np.matmul, rb[l], st.a_aug[l].T, grads[l]) for l in range(k + 1)]
                   + force_calls(plan, z, rb, qb, F.z, F.a, last=False))
        r, out = rb, F.z[k]
        grad, gamma, decay_rate = self.loss.grad, self.gamma, self.weight_decay

        def step():
            for call in program:
                call()
            pull = grad(z[k], Y)
            if gamma != 1.0:
                pull = gamma * pull
            np.subtract(r[k], pull, out=out)
            move_state(eta)
            if decay_rate:
                g[decay] += decay_rate * theta[decay]
            if frozen is not None:
                g[frozen] = 0.0
            move_theta(-wstep)
        return step

    def _discord(self, st, Y):
        plan = self.plan
        M = Y.shape[1]
        r, q = residuals(plan, st.z, st.a)
        out = {e: v / M for e, v in edge_square_norms(plan, r, q, per_sample=False).items()}
        out[(plan.z_nodes[-1], "target")] = 2 * self.loss.value(st.z[-1], Y) / M
        return out

    # -- exact and backprop-equivalent -------------------------------------------
    def step(self, X, Y):
        """One optimiser update from a batch (exact and backprop-equivalent modes).

        ``X``, ``Y`` have samples as columns. The gradient is the summed local rule (or
        backprop's) plus ``weight_decay · W``, divided by the batch size. Returns the
        solver's ``info`` with ``potential``: the summed output potential of the batch
        at the weights before the update.
        """
        info = self._update(X, Y)
        info["potential"] = self.loss.value(info.pop("output"), Y)
        return info

    def _flatten(self, augmented=False):
        """Make the plan's W_ℓ and b_ℓ views of one buffer, so that the optimiser moves
        every parameter in one pass (a handful of NumPy calls per update instead of a
        handful per array).

        By default the buffer holds every W_ℓ, then every b_ℓ. ``augmented`` lays out each
        layer as the block ``[W_ℓ | b_ℓ]`` (the affine edge's map on the stalk with its
        pinned 1, the sheaf's own form), so that ``W_ℓ a + b_ℓ`` and the local rule's
        ``(r aᵀ, Σ r)`` are each one product with ``[a; 1]`` (paper mode). Sets
        ``self._flat = (theta, decay, frozen)`` — the buffer, the index of the weights
        (for weight decay) and of the frozen biases (or None) — ``self._layout``, the
        gradient's ``(offset, shape)`` per block, and ``self._blocks``, the layers'
        ``[W_ℓ | b_ℓ]`` views (augmented only).
        """
        plan, k = self.plan, self.plan.k
        shapes = ([(W.shape[0], W.shape[1] + 1) for W in plan.W] if augmented else
                  [W.shape for W in plan.W] + [v.shape for v in plan.b])
        theta = np.empty(sum(math.prod(s) for s in shapes))
        self._layout, pos = [], 0
        for s in shapes:
            self._layout.append((pos, s))
            pos += math.prod(s)
        blocks = [theta[p:p + math.prod(s)].reshape(s) for p, s in self._layout]
        is_bias = np.zeros(theta.size, dtype=bool)
        frozen = np.zeros(theta.size, dtype=bool)
        for l in range(k + 1):
            d, f = plan.W[l].shape
            if augmented:  # the bias is the block's last column
                blocks[l][:, :f], blocks[l][:, f] = plan.W[l], plan.b[l]
                W, bias = blocks[l][:, :f], blocks[l][:, f]
                at = self._layout[l][0] + np.arange(d) * (f + 1) + f
            else:
                blocks[l][...], blocks[k + 1 + l][...] = plan.W[l], plan.b[l]
                W, bias = blocks[l], blocks[k + 1 + l]
                at = self._layout[k + 1 + l][0] + np.arange(d)
            plan.W[l], plan.b[l] = W, bias
            is_bias[at] = True
            frozen[at] = not plan.trainable_bias(l)
        decay = slice(0, sum(W.size for W in plan.W)) if not augmented else np.flatnonzero(~is_bias)
        self._flat = (theta, decay, np.flatnonzero(frozen) if frozen.any() else None)
        self._blocks = blocks[:k + 1] if augmented else None
        self._bufs = (None,)  # (the paper step's buffers follow the layout)
        self._stepper = None
        g = np.empty_like(theta)  # a gradient in the same layout, and its blocks
        self._gradient = (g, [g[p:p + math.prod(s)].reshape(s) for p, s in self._layout])

    def _parameters(self, augmented):
        """``self._flat`` in the layout asked for, made again when the plan's arrays are not
        views of it (a new plan, or the other layout)."""
        flat = getattr(self, "_flat", None)
        if (flat is None or self.plan.W[0].base is not flat[0]
                or (self._blocks is not None) != augmented):
            self._flatten(augmented)
        return self._flat

    def _update(self, X, Y):
        plan = self.plan
        theta, decay, frozen = self._parameters(augmented=False)
        M = X.shape[1]
        if self.mode == "exact":  # the local rule written straight into the flat gradient
            g, blocks = self._gradient
            _, _, info = exact_gradients(plan, X, Y, self.loss, self.gamma, self.max_passes,
                                         details=False, out=(blocks[:plan.k + 1], blocks[plan.k + 1:]))
        elif self.mode == "backprop-equivalent":
            g, blocks = self._gradient  # (written into the flat gradient's blocks)
            _, _, z = backprop(plan, X, Y, self.loss, output=True,
                               out=(blocks[:plan.k + 1], blocks[plan.k + 1:]))
            info = {"sweeps": 2, "pattern_passes": 1, "output": z}
        else:
            raise SheafError("step() runs the exact and backprop-equivalent modes; paper mode "
                             "integrates its joint flow in train()")
        if self.weight_decay:
            g[decay] += self.weight_decay * theta[decay]
        g /= M  # (the penalty, then a division: the same roundings as per array)
        if frozen is not None:
            g[frozen] = 0.0
        self.optimizer.step([theta], [g])
        return info

    # -- bookkeeping ------------------------------------------------------------
    def _record(self, hist, epoch, step, X, Y, X_test, Y_test, disc):
        z = forward_output(self.plan, X)
        hist.epochs.append(epoch)
        hist.steps.append(step)
        hist.train_loss.append(self.loss.log_loss(z, Y))
        acc = _accuracy(self.loss, z, Y)
        if acc is not None:
            hist.train_accuracy.append(acc)
        if X_test is not None:
            zt = forward_output(self.plan, X_test)
            hist.test_loss.append(self.loss.log_loss(zt, Y_test))
            acc = _accuracy(self.loss, zt, Y_test)
            if acc is not None:
                hist.test_accuracy.append(acc)
        hist.discord.append(disc)

    def _logs(self, hist):
        logs = {"train_loss": hist.train_loss[-1], "step": hist.steps[-1],
                "weights": [w.copy() for w in self.plan.W],
                "biases": [v.copy() for v in self.plan.b]}
        if hist.test_loss:
            logs["test_loss"] = hist.test_loss[-1]
        return logs


def train_backprop(S, X, Y, X_test=None, Y_test=None, *, loss=None, objective="potential",
                   optimizer="sgd", learning_rate=0.005, epochs=100, steps_per_epoch=None,
                   batch_size=None, rng=None, callback=None):
    """Train the same network by ordinary backpropagation in NumPy (the baseline).

    Same architecture and initial weights (those of S, updated in place), same loss,
    batches and epochs as :class:`SheafTrainer`. ``objective="potential"`` minimises
    the batch mean of the output potential (as the exact mode does);
    ``objective="logged"`` minimises the logged loss exactly as the authors' PyTorch
    baseline does (mean MSE over all entries, or mean cross-entropy), so that their
    learning rates (0.005 regression, 0.01 classification) carry over.

    Returns
    -------
    TrainHistory
    """
    if objective not in ("potential", "logged"):
        raise SheafError(f"objective must be 'potential' or 'logged', got {objective!r}")
    trainer = SheafTrainer(S, mode="backprop-equivalent", loss=loss, optimizer=optimizer,
                           learning_rate=learning_rate)
    if objective == "logged" and trainer.loss.logged == "mse":
        # d/dz mean((z - y)²) over n_out × M entries = 2 (z - y) / n_out per sample-mean
        n_out = trainer.plan.dims[-1]
        trainer.loss = _Scaled(trainer.loss, 2.0 / n_out)
    hist = trainer.train(X, Y, X_test, Y_test, epochs=epochs, steps_per_epoch=steps_per_epoch,
                         batch_size=batch_size, rng=rng, callback=callback)
    hist.mode = "backprop"
    return hist


class _Scaled(L2):
    def __init__(self, base, factor):
        self.base, self.factor = base, factor

    def grad(self, z, y):
        return self.factor * self.base.grad(z, y)

    def values(self, z, y):
        return self.factor * self.base.values(z, y)
