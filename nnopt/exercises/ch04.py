"""Chapter 4 exercises: the tanh RNN forward pass, backpropagation through time, gradient clipping.

The sizes cover one step (T = 1, where a gradient that is not carried through time
still looks right), long sequences, a batch of one and H != D both ways; the
recurrent weights are drawn at three scales, so that tanh works in its linear
range and in saturation. The cases of ``rnn_backward`` get ``hs`` from the
reference forward pass, as a student's backward pass would from their own.
"""

import numpy as np

from .. import rnn
from .core import Call, Exercise, Mistake

CHAPTER = "04_rnn"
# (T, N, D, H): the first case is short but not one step, so that every mistake shows on it
SIZES = [(3, 2, 3, 4), (1, 3, 4, 2), (6, 1, 2, 5), (4, 4, 5, 3), (30, 2, 3, 3), (12, 3, 4, 6)]
RECURRENT_SCALES = (0.5, 1.0, 3.0)  # times 1/sqrt(H): contracting, about neutral, saturating


def _network(rng, T, N, D, H, scale):
    """Random inputs and weights of an RNN with the given sizes; ``scale`` sets W_hh's size."""
    return {
        "x": rng.normal(size=(T, N, D)),
        "h0": rng.normal(size=(N, H)) * 0.5,
        "W_ih": rng.normal(size=(H, D)) / np.sqrt(D),
        "W_hh": rng.normal(size=(H, H)) * scale / np.sqrt(H),
        "b_ih": rng.normal(size=H) * 0.2,
        "b_hh": rng.normal(size=H) * 0.2,
    }


def _networks(rng):
    """One network per size, each with a recurrent scale drawn from RECURRENT_SCALES, and its label."""
    for T, N, D, H in SIZES:
        scale = float(rng.choice(RECURRENT_SCALES))
        yield _network(rng, T, N, D, H, scale), f"T={T}, N={N}, D={D}, H={H}, W_hh scale {scale:g}/sqrt(H)"


def _forward_cases(rng):
    names = ("x", "h0", "W_ih", "W_hh", "b_ih", "b_hh")
    return [Call(tuple(network[name] for name in names), label=label) for network, label in _networks(rng)]


FORWARD_SIGNATURE = "def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):\n"


def _forward_variant(start="h0", step="np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)", collect="hs"):
    """The code of a forward pass with one part written differently from the reference."""
    return (
        FORWARD_SIGNATURE
        + f"    h = {start}\n"
        + "    hs = []\n"
        + "    for t in range(x.shape[0]):\n"
        + f"        h = {step}\n"
        + "        hs.append(h)\n"
        + f"    hs = np.stack({collect})\n"
        + "    return hs, h.copy()\n"
    )


RNN_FORWARD = Exercise(
    chapter=CHAPTER,
    name="rnn_forward",
    points=2,
    cases=_forward_cases,
    reference=rnn.rnn_forward,
    mistakes=(
        Mistake(
            "ignores_h0",
            _forward_variant(start="np.zeros_like(h0)"),
            diagnosis="the recurrence started from zeros: the first step uses the given h0, "
            "h_1 = tanh(x_1 @ W_ih.T + b_ih + h0 @ W_hh.T + b_hh)",
        ),
        Mistake(
            "one_bias",
            _forward_variant(step="np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T)"),
            diagnosis="b_hh is missing: PyTorch's RNN adds both biases, "
            "tanh(x_t @ W_ih.T + b_ih + h @ W_hh.T + b_hh)",
        ),
        Mistake(
            "hs_with_h0",
            _forward_variant(collect="[h0] + hs"),
            diagnosis="hs starts with h0: it holds the T new states h_1, ..., h_T (shape (T, N, H)), "
            "as torch.nn.RNN's output does",
        ),
        Mistake(
            "no_tanh",
            _forward_variant(step="x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh"),
            diagnosis="tanh is missing: h_t = tanh(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)",
        ),
        Mistake(
            "W_hh_untransposed",
            _forward_variant(step="np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh + b_hh)"),
            diagnosis="W_hh was used untransposed: with the batch as rows, the recurrent term is "
            "h_{t-1} @ W_hh.T (W_hh h_{t-1} for one column vector), as for W_ih",
        ),
        Mistake(
            "hs_shifted",
            FORWARD_SIGNATURE + "    h = h0\n"
            "    hs = []\n"
            "    for t in range(x.shape[0]):\n"
            "        hs.append(h)\n"
            "        h = np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)\n"
            "    return np.stack(hs), h.copy()\n",
            diagnosis="hs is shifted by one step: hs[t] holds the state before step t; it should hold "
            "the state the step produced, so hs is h_1, ..., h_T and hs[-1] equals h_last",
        ),
        Mistake(
            "in_place",
            FORWARD_SIGNATURE + "    h = h0\n"
            "    hs = np.empty((x.shape[0],) + h0.shape)\n"
            "    for t in range(x.shape[0]):\n"
            "        h[...] = np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)\n"
            "        hs[t] = h\n"
            "    return hs, h\n",
            expect="modified its input",
        ),
    ),
)


def _backward_cases(rng):
    calls = []
    for network, label in _networks(rng):
        hs, _ = rnn.rnn_forward(**network)
        dhs = rng.normal(size=hs.shape)
        args = (dhs, network["x"], network["h0"], hs, network["W_ih"], network["W_hh"])
        calls.append(Call(args, label=label))
    return calls


BACKWARD_SIGNATURE = "def rnn_backward(dhs, x, h0, hs, W_ih, W_hh):\n"


def _backward_variant(
    local="(dhs[t] + carried) * (1 - hs[t] ** 2)",
    dW_hh="da.T @ previous[t]",
    carry="da @ W_hh",
    dh0="carried",
):
    """The code of a backward pass with one part written differently from the reference."""
    return (
        BACKWARD_SIGNATURE
        + "    previous = np.concatenate([h0[None], hs[:-1]])\n"
        + "    dx = np.zeros_like(x)\n"
        + "    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(W_hh.shape[0])\n"
        + "    carried = np.zeros_like(h0)\n"
        + "    for t in reversed(range(x.shape[0])):\n"
        + f"        da = {local}\n"
        + "        dx[t] = da @ W_ih\n"
        + "        dW_ih += da.T @ x[t]\n"
        + f"        dW_hh += {dW_hh}\n"
        + "        db += da.sum(axis=0)\n"
        + f"        carried = {carry}\n"
        + f"    return dx, {dh0}, dW_ih, dW_hh, db, db.copy()\n"
    )


RNN_BACKWARD = Exercise(
    chapter=CHAPTER,
    name="rnn_backward",
    points=4,
    cases=_backward_cases,
    reference=rnn.rnn_backward,
    mistakes=(
        Mistake(
            "no_tanh_derivative",
            _backward_variant(local="dhs[t] + carried"),
            diagnosis="the tanh derivative is missing: multiply the gradient on h_t by "
            "1 - h_t**2 before passing it to the weights and back in time",
        ),
        Mistake(
            "tanh_derivative_at_previous_state",
            _backward_variant(local="(dhs[t] + carried) * (1 - previous[t] ** 2)"),
            diagnosis="the tanh derivative was taken at the previous state h_{t-1}; step t's is "
            "1 - h_t**2, with h_t = hs[t] the state that step produced",
        ),
        Mistake(
            "tanh_of_tanh",
            _backward_variant(local="(dhs[t] + carried) * (1 - np.tanh(hs[t]) ** 2)"),
            diagnosis="the tanh derivative was computed as 1 - tanh(h_t)**2; h_t is already "
            "tanh(a_t), so the derivative at the pre-activation is 1 - h_t**2",
        ),
        Mistake(
            "dW_hh_from_h_t",
            _backward_variant(dW_hh="da.T @ hs[t]"),
            diagnosis="dW_hh was built from h_t; W_hh multiplies the previous state, so step t "
            "adds da_t.T @ h_{t-1} (h0 for the first step)",
        ),
        Mistake(
            "not_through_time",
            _backward_variant(local="dhs[t] * (1 - hs[t] ** 2)"),
            diagnosis="the gradient was not carried back through time: each step used only "
            "dhs[t]; add the gradient arriving from step t+1, (da_{t+1} @ W_hh)",
        ),
        Mistake(
            "carried_with_W_hh_transposed",
            _backward_variant(carry="da @ W_hh.T"),
            diagnosis="the gradient was carried back with W_hh.T; the step computed h_{t-1} @ W_hh.T, "
            "so the gradient reaching h_{t-1} is da_t @ W_hh",
        ),
        Mistake(
            "dW_hh_transposed",
            _backward_variant(dW_hh="previous[t].T @ da"),
            diagnosis="dW_hh is transposed: row i of W_hh feeds unit i, so step t adds da_t.T @ h_{t-1} "
            "(shape (H, H), output units as rows), not h_{t-1}.T @ da_t",
        ),
        Mistake(
            "carried_skips_tanh_derivative",
            _backward_variant(local="dhs[t] * (1 - hs[t] ** 2) + carried"),
            diagnosis="the gradient arriving from step t+1 skipped step t's tanh derivative: add it to "
            "dhs[t] first, then multiply, da_t = (dhs[t] + da_{t+1} @ W_hh) * (1 - h_t**2)",
        ),
        Mistake(
            "dh0_missing",
            _backward_variant(dh0="np.zeros_like(h0)"),
            diagnosis="dh0 is zero: h0 feeds the first step, so dh0 = da_1 @ W_hh, the gradient "
            "carried out of the first step",
        ),
        Mistake(
            "in_place",
            BACKWARD_SIGNATURE + "    previous = np.concatenate([h0[None], hs[:-1]])\n"
            "    dx = np.zeros_like(x)\n"
            "    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(W_hh.shape[0])\n"
            "    dh0 = np.zeros_like(h0)\n"
            "    for t in reversed(range(x.shape[0])):\n"
            "        da = dhs[t] * (1 - hs[t] ** 2)\n"
            "        dx[t] = da @ W_ih\n"
            "        dW_ih += da.T @ x[t]\n"
            "        dW_hh += da.T @ previous[t]\n"
            "        db += da.sum(axis=0)\n"
            "        if t > 0:\n"
            "            dhs[t - 1] += da @ W_hh\n"
            "        else:\n"
            "            dh0 = da @ W_hh\n"
            "    return dx, dh0, dW_ih, dW_hh, db, db.copy()\n",
            expect="modified its input",
        ),
    ),
)


# max_norm as a multiple of the total norm: over the limit first (where a per-array or an
# element-wise clip shows), then under it (where scaling up shows); never within 1e-3 of it
CLIP_RATIOS = [0.3, 2.0, 0.05, 0.8, 1.5, 0.0, 10.0]
CLIP_SHAPES = [[(3, 4), (4,), (2, 3)], [(5,), (5, 5)], [(3, 2), (2,)], [(4,), (3, 3), (2, 2, 2), (1,)],
               [(6,)], [(2, 2), (2,)], [(7, 3), (3,)]]


def _clip_cases(rng):
    calls = []
    for shapes, ratio in zip(CLIP_SHAPES, CLIP_RATIOS):
        grads = [rng.normal(size=shape) * 10 ** rng.uniform(-1, 1) for shape in shapes]
        total = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
        max_norm = ratio * total
        shown = ", ".join(str(shape) for shape in shapes)
        calls.append(Call((grads, max_norm), label=f"arrays of shapes {shown}, norm {total:.4g}, max_norm {max_norm:g}"))
    return calls


CLIP_SIGNATURE = "def clip_grad_norm(grads, max_norm):\n"


def _clip_variant(total="np.sqrt(sum(np.sum(g ** 2) for g in grads))", scale="min(1.0, max_norm / (total + 1e-6))",
                  clipped="[g * scale for g in grads]", returned="total"):
    """The code of a clipping function with one part written differently from the reference."""
    return (
        CLIP_SIGNATURE
        + f"    total = float({total})\n"
        + f"    scale = {scale}\n"
        + f"    clipped = {clipped}\n"
        + f"    return clipped, {returned}\n"
    )


CLIP_GRAD_NORM = Exercise(
    chapter=CHAPTER,
    name="clip_grad_norm",
    points=2,
    cases=_clip_cases,
    reference=rnn.clip_grad_norm,
    mistakes=(
        Mistake(
            "per_array_norm",
            _clip_variant(clipped="[g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads]"),
            diagnosis="each array was clipped by its own norm, which changes the direction of the whole "
            "gradient; use one factor for all arrays, from the global norm sqrt(sum of all squares)",
        ),
        Mistake(
            "element_wise",
            _clip_variant(clipped="[np.clip(g, -max_norm, max_norm) for g in grads]"),
            diagnosis="every entry was clipped to [-max_norm, max_norm]: that is clip_grad_value_. "
            "clip_grad_norm_ multiplies all arrays by one factor, min(1, max_norm / (total_norm + 1e-6))",
        ),
        Mistake(
            "sum_of_norms",
            _clip_variant(total="sum(np.linalg.norm(g) for g in grads)"),
            diagnosis="the total norm is the sum of the arrays' norms; the global norm is the square "
            "root of the sum of their squared norms (all entries as one vector)",
        ),
        Mistake(
            "scales_up",
            _clip_variant(scale="max_norm / (total + 1e-6)"),
            diagnosis="the gradients were scaled although their norm was under max_norm: the factor is "
            "min(1, max_norm / (total_norm + 1e-6)), so nothing changes below the limit",
        ),
        Mistake(
            "no_eps",
            _clip_variant(scale="min(1.0, max_norm / total) if total > 0 else 1.0"),
            diagnosis="PyTorch divides by total_norm + 1e-6, not by total_norm: the factor is "
            "min(1, max_norm / (total_norm + 1e-6))",
        ),
        Mistake(
            "eps_added_to_factor",
            _clip_variant(scale="min(1.0, max_norm / total + 1e-6)"),
            diagnosis="1e-6 was added to the factor; PyTorch adds it to the norm: "
            "min(1, max_norm / (total_norm + 1e-6))",
        ),
        Mistake(
            "norm_after_clipping",
            _clip_variant(returned="float(np.sqrt(sum(np.sum(g ** 2) for g in clipped)))"),
            diagnosis="the returned norm is the one after clipping; return the total norm of the "
            "gradients before clipping, as clip_grad_norm_ does",
        ),
        Mistake(
            "in_place",
            CLIP_SIGNATURE + "    total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))\n"
            "    scale = min(1.0, max_norm / (total + 1e-6))\n"
            "    for g in grads:\n"
            "        g *= scale\n"
            "    return list(grads), total\n",
            expect="modified its input",
        ),
    ),
)

EXERCISES = (RNN_FORWARD, RNN_BACKWARD, CLIP_GRAD_NORM)
