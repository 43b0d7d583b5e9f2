"""Chapter 2 exercises: Adagrad, RMSprop, Adam and AdamW.

The optimizers keep state, so the cases are teacher-forced: for each shape the
reference runs from zero state at ``t = 1`` for several steps, and every step
becomes one call whose state is the reference's. Every shape gets its own
regime, so that each known mistake shows on every seed:

* small gradients (1e-4 to 1e-3) with a larger ``eps``: only where ``eps`` is
  not negligible against the square root do the ``eps`` placement mistakes
  show. This regime comes first because every known mistake changes its
  answers by far more than the tolerance, so the first failing call names the
  mistake unambiguously (where a mistake barely shows, two mistakes can look
  alike);
* non-default hyperparameters;
* default hyperparameters;
* small gradients with the default ``eps``;
* large gradients with non-default hyperparameters.
"""

import textwrap

import numpy as np

from .. import optim
from .ch01 import SHAPES
from .core import Call, Exercise, Mistake

CHAPTER = "02_adaptive_optimizers"
STEPS = 8
GRADIENT_SCALES = {"normal": (-1, 1), "small": (-4, -3), "large": (1, 2)}  # log10 of the range


def _teacher_forced(rng, update, state_size, regimes, counts_steps=False):
    """Calls of ``update`` along the reference's own trajectory: one shape per regime, STEPS steps each.

    ``regimes`` is a list of ``(label, hyperparameters, gradient scale)``, the scale
    a key of ``GRADIENT_SCALES``. The state (``state_size`` arrays) starts at zero,
    and ``t`` (when ``counts_steps``) at 1.
    """
    calls = []
    shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))]
    for shape, (label, hyperparameters, scale) in zip(shapes, regimes):
        low, high = GRADIENT_SCALES[scale]
        gradient_scale = 10 ** rng.uniform(low, high)
        theta = rng.normal(size=shape) * 10 ** rng.uniform(-1, 1)
        state = [np.zeros(shape) for _ in range(state_size)]
        settings = ", ".join(f"{k}={v:g}" for k, v in hyperparameters.items())
        regime = f"{label}: {settings}" if settings else label
        for t in range(1, STEPS + 1):
            grad = rng.normal(size=shape) * gradient_scale
            args = (theta, grad, *state, *([t] if counts_steps else []))
            where = f"t={t}" if counts_steps else f"step {t}"
            calls.append(Call(args, dict(hyperparameters), f"{where}, shape {shape}, {regime}"))
            theta, *state = update(*args, **hyperparameters)
    return calls


def _pick(rng, values):
    return float(rng.choice(values))


# --- Adagrad -------------------------------------------------------------------------------------


def _adagrad_cases(rng):
    regimes = [
        ("small gradients", {"lr": _pick(rng, [0.01, 0.1]), "eps": _pick(rng, [1e-7, 1e-6])}, "small"),
        ("non-default lr", {"lr": _pick(rng, [0.05, 0.3, 1.0])}, "normal"),
        ("default hyperparameters", {}, "normal"),
        ("small gradients, default eps", {"lr": _pick(rng, [0.01, 0.1])}, "small"),
        ("large gradients", {"lr": _pick(rng, [0.05, 0.5]), "eps": _pick(rng, [1e-8, 1e-3])}, "large"),
    ]
    return _teacher_forced(rng, optim.adagrad_step, 1, regimes)


ADAGRAD_SIGNATURE = "def adagrad_step(theta, grad, sum_sq, lr=0.01, eps=1e-10):\n"
ADAGRAD_DECAY = (
    "sum_sq decays like a moving average, which makes it RMSprop: Adagrad adds every squared "
    "gradient with weight 1, sum_sq = sum_sq + grad**2"
)

ADAGRAD_STEP = Exercise(
    chapter=CHAPTER,
    name="adagrad_step",
    points=2,
    cases=_adagrad_cases,
    reference=optim.adagrad_step,
    mistakes=(
        Mistake(
            "eps_inside_sqrt",
            ADAGRAD_SIGNATURE + "    sum_sq = sum_sq + grad**2\n"
            "    return theta - lr * grad / np.sqrt(sum_sq + eps), sum_sq\n",
            diagnosis="eps is inside the square root: PyTorch divides by np.sqrt(sum_sq) + eps, "
            "not by np.sqrt(sum_sq + eps)",
        ),
        Mistake(
            "eps_outside_denominator",
            ADAGRAD_SIGNATURE + "    sum_sq = sum_sq + grad**2\n"
            "    return theta - lr * grad / np.sqrt(sum_sq) + eps, sum_sq\n",
            diagnosis="eps was added outside the denominator (lr * grad / np.sqrt(sum_sq) + eps); "
            "put it inside: lr * grad / (np.sqrt(sum_sq) + eps)",
        ),
        Mistake(
            "decay_0_99",
            ADAGRAD_SIGNATURE + "    sum_sq = 0.99 * sum_sq + 0.01 * grad**2\n"
            "    return theta - lr * grad / (np.sqrt(sum_sq) + eps), sum_sq\n",
            diagnosis=ADAGRAD_DECAY,
        ),
        Mistake(
            "decay_0_9",
            ADAGRAD_SIGNATURE + "    sum_sq = 0.9 * sum_sq + 0.1 * grad**2\n"
            "    return theta - lr * grad / (np.sqrt(sum_sq) + eps), sum_sq\n",
            diagnosis=ADAGRAD_DECAY,
        ),
        Mistake(
            "old_sum",
            ADAGRAD_SIGNATURE + "    step = lr * grad / (np.sqrt(sum_sq) + eps)\n"
            "    return theta - step, sum_sq + grad**2\n",
            diagnosis="the step divided by the old sum_sq: add grad**2 first, then divide by the "
            "square root of the new sum",
        ),
        Mistake(
            "no_sqrt",
            ADAGRAD_SIGNATURE + "    sum_sq = sum_sq + grad**2\n"
            "    return theta - lr * grad / (sum_sq + eps), sum_sq\n",
            diagnosis="the square root is missing: divide by np.sqrt(sum_sq) + eps",
        ),
        Mistake(
            "in_place",
            ADAGRAD_SIGNATURE + "    sum_sq += grad**2\n"
            "    theta -= lr * grad / (np.sqrt(sum_sq) + eps)\n"
            "    return theta, sum_sq\n",
            expect="modified its input",
        ),
    ),
)

# --- RMSprop -------------------------------------------------------------------------------------


def _rmsprop_cases(rng):
    regimes = [
        ("small gradients", {"alpha": _pick(rng, [0.9, 0.95]), "eps": _pick(rng, [1e-7, 1e-6])}, "small"),
        ("non-default", {"lr": _pick(rng, [1e-3, 0.05]), "alpha": _pick(rng, [0.5, 0.9, 0.999])}, "normal"),
        ("default hyperparameters", {}, "normal"),
        ("small gradients, default eps", {"lr": _pick(rng, [1e-3, 0.1])}, "small"),
        ("large gradients", {"lr": _pick(rng, [0.03, 0.3]), "alpha": _pick(rng, [0.8, 0.9])}, "large"),
    ]
    return _teacher_forced(rng, optim.rmsprop_step, 1, regimes)


RMSPROP_SIGNATURE = "def rmsprop_step(theta, grad, sq_avg, lr=0.01, alpha=0.99, eps=1e-8):\n"
RMSPROP_AVERAGE = "    sq_avg = alpha * sq_avg + (1 - alpha) * grad**2\n"

RMSPROP_STEP = Exercise(
    chapter=CHAPTER,
    name="rmsprop_step",
    points=2,
    cases=_rmsprop_cases,
    reference=optim.rmsprop_step,
    mistakes=(
        Mistake(
            "eps_inside_sqrt",
            RMSPROP_SIGNATURE
            + RMSPROP_AVERAGE
            + "    return theta - lr * grad / np.sqrt(sq_avg + eps), sq_avg\n",
            diagnosis="eps is inside the square root: PyTorch divides by np.sqrt(sq_avg) + eps, "
            "not by np.sqrt(sq_avg + eps)",
        ),
        Mistake(
            "eps_outside_denominator",
            RMSPROP_SIGNATURE
            + RMSPROP_AVERAGE
            + "    return theta - lr * grad / np.sqrt(sq_avg) + eps, sq_avg\n",
            diagnosis="eps was added outside the denominator (lr * grad / np.sqrt(sq_avg) + eps); "
            "put it inside: lr * grad / (np.sqrt(sq_avg) + eps)",
        ),
        Mistake(
            "no_decay",
            RMSPROP_SIGNATURE + "    sq_avg = sq_avg + grad**2\n"
            "    return theta - lr * grad / (np.sqrt(sq_avg) + eps), sq_avg\n",
            diagnosis="sq_avg + grad**2 never forgets: that is Adagrad's sum. RMSprop keeps a moving "
            "average, sq_avg = alpha * sq_avg + (1 - alpha) * grad**2",
        ),
        Mistake(
            "alpha_swapped",
            RMSPROP_SIGNATURE + "    sq_avg = (1 - alpha) * sq_avg + alpha * grad**2\n"
            "    return theta - lr * grad / (np.sqrt(sq_avg) + eps), sq_avg\n",
            diagnosis="alpha and 1 - alpha are swapped: alpha weighs the old average, "
            "sq_avg = alpha * sq_avg + (1 - alpha) * grad**2",
        ),
        Mistake(
            "in_place",
            RMSPROP_SIGNATURE + "    sq_avg *= alpha\n"
            "    sq_avg += (1 - alpha) * grad**2\n"
            "    theta -= lr * grad / (np.sqrt(sq_avg) + eps)\n"
            "    return theta, sq_avg\n",
            expect="modified its input",
        ),
    ),
)

# --- Adam and AdamW ------------------------------------------------------------------------------

ADAM_SIGNATURE = "def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):\n"
ADAMW_SIGNATURE = (
    "def adamw_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2):\n"
)
CORRECT_UPDATE = "theta - lr * m_hat / (np.sqrt(v_hat) + eps)"


def _adam_variant(
    signature=ADAM_SIGNATURE,
    first="",
    m_hat="m / (1 - beta1**t)",
    v_hat="v / (1 - beta2**t)",
    update=CORRECT_UPDATE,
    state="m, v",
):
    """The code of an Adam (or AdamW) step with one part written differently from the reference."""
    return (
        signature
        + first
        + "    m = beta1 * m + (1 - beta1) * grad\n"
        + "    v = beta2 * v + (1 - beta2) * grad**2\n"
        + f"    m_hat = {m_hat}\n"
        + f"    v_hat = {v_hat}\n"
        + f"    return {update}, {state}\n"
    )


NO_BIAS_CORRECTION = (
    "bias correction is missing: divide m by 1 - beta1**t and v by 1 - beta2**t before the step "
    "(without it the early steps are off by the factor (1 - beta1**t) / np.sqrt(1 - beta2**t))"
)
T_OFF_BY_ONE = (
    "the step number is off by one: t counts from 1 (the first call has t = 1), so correct with "
    "1 - beta1**t and 1 - beta2**t for the t you are given"
)
EPS_INSIDE_SQRT = (
    "eps is inside the square root: divide by np.sqrt(v_hat) + eps, not by np.sqrt(v_hat + eps)"
)
EPS_OUTSIDE = (
    "eps was added outside the denominator (lr * m_hat / np.sqrt(v_hat) + eps); "
    "put it inside: lr * m_hat / (np.sqrt(v_hat) + eps)"
)
CORRECTED_STATE = (
    "the returned moments are the bias-corrected m_hat and v_hat; return the running averages m and v "
    "themselves (the next step corrects them again with its own t)"
)


def _adam_mistakes(signature, first=""):
    """The mistakes that Adam and AdamW share, for ``signature``; ``first`` is AdamW's decay line."""
    return (
        Mistake(
            "no_bias_correction",
            _adam_variant(signature, first, m_hat="m", v_hat="v"),
            diagnosis=NO_BIAS_CORRECTION,
        ),
        Mistake("t_plus_one", _adam_variant(signature, first + "    t = t + 1\n"), diagnosis=T_OFF_BY_ONE),
        Mistake(
            "t_minus_one",  # at t = 1 this divides by 1 - beta**0 = 0: quietly, like the student's code
            signature
            + "    t = t - 1\n"
            + "    with np.errstate(divide='ignore', invalid='ignore'):\n"
            + textwrap.indent(_adam_variant("", first), "    "),
            diagnosis=T_OFF_BY_ONE,
        ),
        Mistake(
            "eps_inside_sqrt",
            _adam_variant(signature, first, update="theta - lr * m_hat / np.sqrt(v_hat + eps)"),
            diagnosis=EPS_INSIDE_SQRT,
        ),
        Mistake(
            "eps_outside_denominator",
            _adam_variant(signature, first, update="theta - lr * m_hat / np.sqrt(v_hat) + eps"),
            diagnosis=EPS_OUTSIDE,
        ),
        Mistake("corrected_state", _adam_variant(signature, first, state="m_hat, v_hat"), diagnosis=CORRECTED_STATE),
    )


def _adam_regimes(rng):
    return [
        ("small gradients", {"lr": _pick(rng, [0.01, 0.05]), "eps": _pick(rng, [1e-7, 1e-6])}, "small"),
        (
            "non-default",
            {
                "lr": _pick(rng, [0.01, 0.1]),
                "beta1": _pick(rng, [0.5, 0.8, 0.95]),
                "beta2": _pick(rng, [0.9, 0.99, 0.995]),
            },
            "normal",
        ),
        ("default hyperparameters", {}, "normal"),
        ("small gradients, default eps", {"beta2": _pick(rng, [0.99, 0.999])}, "small"),
        ("large gradients", {"lr": _pick(rng, [0.01, 0.1]), "beta1": _pick(rng, [0.0, 0.9])}, "large"),
    ]


def _adam_cases(rng):
    return _teacher_forced(rng, optim.adam_step, 2, _adam_regimes(rng), counts_steps=True)


ADAM_STEP = Exercise(
    chapter=CHAPTER,
    name="adam_step",
    points=3,
    cases=_adam_cases,
    reference=optim.adam_step,
    mistakes=(
        *_adam_mistakes(ADAM_SIGNATURE),
        Mistake(
            "only_m_corrected",
            _adam_variant(v_hat="v"),
            diagnosis="only m was bias-corrected: divide v by 1 - beta2**t too (uncorrected, v is far "
            "too small in the first steps, so the steps are far too large)",
        ),
        Mistake(
            "only_v_corrected",
            _adam_variant(m_hat="m"),
            diagnosis="only v was bias-corrected: divide m by 1 - beta1**t too (uncorrected, m is too "
            "small in the first steps, so the steps are too small)",
        ),
        Mistake(
            "eps_before_correction",
            _adam_variant(
                m_hat="m",
                v_hat="v",
                update="theta - lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)",
            ),
            diagnosis="eps was added to np.sqrt(v) before the bias correction (the Adam paper's "
            "'efficient' form); PyTorch adds it after: np.sqrt(v_hat) + eps",
        ),
        Mistake(
            "in_place",
            ADAM_SIGNATURE + "    m *= beta1\n"
            "    m += (1 - beta1) * grad\n"
            "    v *= beta2\n"
            "    v += (1 - beta2) * grad**2\n"
            "    theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)\n"
            "    return theta, m, v\n",
            expect="modified its input",
        ),
    ),
)


def _adamw_cases(rng):
    regimes = []
    for label, hyperparameters, scale in _adam_regimes(rng):
        if hyperparameters:  # every regime but the defaults gets a non-default weight decay too
            hyperparameters = dict(hyperparameters, weight_decay=_pick(rng, [0.05, 0.1, 0.5]))
        regimes.append((label, hyperparameters, scale))
    return _teacher_forced(rng, optim.adamw_step, 2, regimes, counts_steps=True)


DECAYED = "    theta = theta * (1 - lr * weight_decay)\n"
DEFAULTS_USED = (
    "adamw_step used the default value of some of its hyperparameters instead of the ones it was "
    "given: pass lr, beta1, beta2 and eps on (to adam_step, if you call it)"
)

ADAMW_STEP = Exercise(
    chapter=CHAPTER,
    name="adamw_step",
    points=3,
    cases=_adamw_cases,
    reference=optim.adamw_step,
    mistakes=(
        *_adam_mistakes(ADAMW_SIGNATURE, DECAYED),
        Mistake(
            "l2_penalty",
            _adam_variant(ADAMW_SIGNATURE, first="    grad = grad + weight_decay * theta\n"),
            diagnosis="weight decay was added to the gradient (grad + weight_decay * theta): that is an "
            "L2 penalty, which Adam then rescales. AdamW decays the weights directly, "
            "theta * (1 - lr * weight_decay), and takes the Adam step of grad alone",
        ),
        Mistake(
            "decay_without_lr",
            _adam_variant(ADAMW_SIGNATURE, first="    theta = theta * (1 - weight_decay)\n"),
            diagnosis="the weights were multiplied by 1 - weight_decay; PyTorch's AdamW scales the decay "
            "by the learning rate: theta * (1 - lr * weight_decay)",
        ),
        Mistake(
            "adam_with_defaults",  # e.g. adam_step(decayed_theta, grad, m, v, t)
            _adam_variant(ADAMW_SIGNATURE, first=DECAYED + "    lr, beta1, beta2, eps = 1e-3, 0.9, 0.999, 1e-8\n"),
            diagnosis=DEFAULTS_USED,
        ),
        Mistake(
            "adam_with_lr_only",  # e.g. adam_step(decayed_theta, grad, m, v, t, lr=lr)
            _adam_variant(ADAMW_SIGNATURE, first=DECAYED + "    beta1, beta2, eps = 0.9, 0.999, 1e-8\n"),
            diagnosis=DEFAULTS_USED,
        ),
        Mistake(
            "decay_after_step",
            _adam_variant(ADAMW_SIGNATURE, update=f"({CORRECT_UPDATE}) * (1 - lr * weight_decay)"),
            diagnosis="the decay was applied after the Adam step; PyTorch decays theta first: "
            "theta * (1 - lr * weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps)",
        ),
        Mistake(
            "in_place",
            ADAMW_SIGNATURE + "    theta *= 1 - lr * weight_decay\n"
            "    m *= beta1\n"
            "    m += (1 - beta1) * grad\n"
            "    v *= beta2\n"
            "    v += (1 - beta2) * grad**2\n"
            "    theta -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)\n"
            "    return theta, m, v\n",
            expect="modified its input",
        ),
    ),
)

EXERCISES = (ADAGRAD_STEP, RMSPROP_STEP, ADAM_STEP, ADAMW_STEP)
