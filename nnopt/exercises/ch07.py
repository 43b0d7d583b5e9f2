"""Chapter 7 exercises: linear CKA, softmax with temperature, the distillation loss.

Every case list starts with calls on which each known mistake gives an answer far
from the reference and from every other mistake's (a temperature other than 1, an
``alpha`` other than 0, 1/2 and 1, features with non-zero means, a batch of more than
one example), so that the first failing call names the mistake. Calls that only
some mistakes fail (huge logits, rows of very different scale) come later.
"""

import numpy as np

from .. import transfer
from .core import Call, Exercise, Mistake

CHAPTER = "07_transfer"

# --- linear CKA --------------------------------------------------------------------------------


def _offset_features(rng, n, p):
    """Features with means far from zero and scales that differ, as a network's activations have."""
    return rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + rng.normal(size=p) * 5


def _cka_cases(rng):
    calls = []
    for n, p, q in [(30, 4, 6), (12, 20, 3), (50, 8, 8), (5, 2, 7), (3, 1, 1), (2, 3, 2), (40, 1, 5)]:
        X = _offset_features(rng, n, p)
        Y = np.tanh(X @ rng.normal(size=(p, q)) / np.sqrt(p)) + 0.5 * _offset_features(rng, n, q)
        calls.append(Call((X, Y), label=f"X of shape {X.shape}, Y of shape {Y.shape}"))
    X = _offset_features(rng, 25, 6)
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    calls.append(Call((X, 3.0 * X @ rotation + 2.0), label="Y a rotated, scaled and shifted copy of X (CKA 1)"))
    return calls


CKA_SIGNATURE = "def linear_cka(X, Y):\n"
CENTRED = "    X = X - X.mean(axis=0)\n    Y = Y - Y.mean(axis=0)\n"

LINEAR_CKA = Exercise(
    chapter=CHAPTER,
    name="linear_cka",
    points=3,
    cases=_cka_cases,
    reference=transfer.linear_cka,
    mistakes=(
        Mistake(
            "no_centring",
            CKA_SIGNATURE + "    return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            diagnosis="the features were not centred: subtract each feature's mean over the examples "
            "(X - X.mean(axis=0), and the same for Y) before the products",
        ),
        Mistake(
            "rows_centred",
            CKA_SIGNATURE + "    X = X - X.mean(axis=1, keepdims=True)\n"
            "    Y = Y - Y.mean(axis=1, keepdims=True)\n"
            "    with np.errstate(invalid='ignore', divide='ignore'):\n"
            "        return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                     / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            diagnosis="each example was centred over its features (axis=1); centre each feature "
            "over the examples instead: X - X.mean(axis=0)",
        ),
        Mistake(
            "numerator_not_squared",
            CKA_SIGNATURE + CENTRED + "    return float(np.linalg.norm(Y.T @ X)\n"
            "                 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            diagnosis="the numerator is the squared Frobenius norm ||Y^T X||_F ** 2 (HSIC of the two "
            "Gram matrices), not ||Y^T X||_F",
        ),
        Mistake(
            "no_square_root",
            CKA_SIGNATURE + CENTRED + "    return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X) ** 2 * np.linalg.norm(Y.T @ Y) ** 2))\n",
            diagnosis="the denominator is sqrt(HSIC(K, K) * HSIC(L, L)) = ||X^T X||_F * ||Y^T Y||_F: "
            "the square root is missing",
        ),
        Mistake(
            "one_side_centred",
            CKA_SIGNATURE + "    X = X - X.mean(axis=0)\n"
            "    return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            diagnosis="only X was centred: centre both representations, X - X.mean(axis=0) and "
            "Y - Y.mean(axis=0)",
        ),
        Mistake(
            "standardised",
            CKA_SIGNATURE + "    X = (X - X.mean(axis=0)) / X.std(axis=0)\n"
            "    Y = (Y - Y.mean(axis=0)) / Y.std(axis=0)\n"
            "    return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            diagnosis="each feature was also divided by its standard deviation: CKA centres the features "
            "but does not rescale them (scaling some features more than others changes CKA)",
        ),
        Mistake(
            "spectral_norm",
            CKA_SIGNATURE + CENTRED + "    return float(np.linalg.norm(Y.T @ X, 2) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X, 2) * np.linalg.norm(Y.T @ Y, 2)))\n",
            diagnosis="np.linalg.norm(A, 2) of a matrix is its largest singular value; CKA uses the "
            "Frobenius norm, np.linalg.norm(A) (or ord='fro')",
        ),
        Mistake(
            "in_place",
            CKA_SIGNATURE + "    X -= X.mean(axis=0)\n    Y -= Y.mean(axis=0)\n"
            "    return float(np.linalg.norm(Y.T @ X) ** 2\n"
            "                 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))\n",
            expect="modified its input",
        ),
    ),
)

# --- softmax with temperature ------------------------------------------------------------------


def _softmax_cases(rng):
    calls = []
    for shape in [(3, 5), (6,), (2, 3, 4), (4, 1), (1,)]:
        T = float(rng.choice([0.5, 2.0, 3.0]))
        calls.append(Call((rng.normal(size=shape) * 2, T), label=f"logits of shape {shape}, T={T:g}"))
    calls.append(Call((rng.normal(size=(2, 6)) * 2,), label="T left at its default (1)"))
    calls.append(Call((rng.normal(size=(3, 4)) * 3, 0.05), label="a small temperature, T=0.05"))
    calls.append(Call((rng.normal(size=(3, 4)) * 3, 100.0), label="a large temperature, T=100"))
    for shape, T in [((8,), 1.0), ((3, 5), 0.5)]:
        z = rng.normal(size=shape) * 10 ** rng.uniform(3, 4)
        calls.append(Call((z, T), label=f"huge logits (up to {np.max(np.abs(z)):.0f}), T={T:g}"))
    offsets = np.array([[0.0], [-2000.0], [3000.0]])
    z = rng.normal(size=(3, 5)) + offsets
    calls.append(Call((z, 1.0), label="rows of logits near 0, -2000 and 3000"))
    return calls


SOFTMAX_SIGNATURE = "def softmax(z, T=1.0):\n"
SOFTMAX_BODY = "    e = np.exp(z - z.max(axis=-1, keepdims=True))\n    return e / e.sum(axis=-1, keepdims=True)\n"

SOFTMAX = Exercise(
    chapter=CHAPTER,
    name="softmax",
    points=2,
    cases=_softmax_cases,
    reference=transfer.softmax,
    mistakes=(
        Mistake(
            "no_temperature",
            SOFTMAX_SIGNATURE + SOFTMAX_BODY,
            diagnosis="the temperature is ignored: divide the logits by T before the softmax, softmax(z / T)",
        ),
        Mistake(
            "times_temperature",
            SOFTMAX_SIGNATURE + "    z = z * T\n" + SOFTMAX_BODY,
            diagnosis="the logits were multiplied by T; divide them instead, softmax(z / T) "
            "(a large T must flatten the distribution)",
        ),
        Mistake(
            "no_max_subtraction",
            SOFTMAX_SIGNATURE + "    with np.errstate(over='ignore', invalid='ignore'):\n"
            "        e = np.exp(z / T)\n"
            "        return e / e.sum(axis=-1, keepdims=True)\n",
            diagnosis="np.exp overflowed on large logits (inf / inf = nan): subtract each row's maximum "
            "before exponentiating, which does not change the result",
        ),
        Mistake(
            "global_max",
            SOFTMAX_SIGNATURE + "    with np.errstate(invalid='ignore'):\n"
            "        e = np.exp((z - z.max()) / T)\n"
            "        return e / e.sum(axis=-1, keepdims=True)\n",
            diagnosis="the maximum of the whole array was subtracted: a row whose logits lie far below it "
            "underflows to 0 / 0 = nan. Subtract each row's own maximum, z.max(axis=-1, keepdims=True)",
        ),
        Mistake(
            "wrong_axis",
            SOFTMAX_SIGNATURE + "    e = np.exp((z - z.max(axis=0)) / T)\n    return e / e.sum(axis=0)\n",
            diagnosis="the softmax was taken over the first axis; the classes are on the last axis "
            "(axis=-1), so each row (the last axis) must sum to 1",
        ),
        Mistake(
            "in_place",
            SOFTMAX_SIGNATURE + "    z -= z.max(axis=-1, keepdims=True)\n    z /= T\n"
            "    e = np.exp(z)\n    return e / e.sum(axis=-1, keepdims=True)\n",
            expect="modified its input",
        ),
    ),
)

# --- distillation loss -------------------------------------------------------------------------


def _distillation_call(rng, n, classes, T, alpha, scale=3.0, label=""):
    student = rng.normal(size=(n, classes)) * scale
    teacher = rng.normal(size=(n, classes)) * 2 * scale
    labels = rng.integers(0, classes, size=n)
    settings = f"N={n}, C={classes}, T={T:g}, alpha={alpha:g}"
    return Call((student, teacher, labels, T, alpha), label=f"{label}, {settings}" if label else settings)


def _distillation_cases(rng):
    pick = lambda values: float(rng.choice(values))  # noqa: E731
    calls = [_distillation_call(rng, 4, 3, pick([2.0, 4.0]), pick([0.3, 0.7, 0.9]))]
    for n, classes in [(8, 10), (1, 5), (16, 4), (3, 2)]:
        calls.append(_distillation_call(rng, n, classes, pick([0.5, 1.0, 3.0, 8.0]), pick([0.2, 0.5, 0.8])))
    calls.append(_distillation_call(rng, 6, 5, pick([2.0, 5.0]), 1.0, label="soft targets only"))
    calls.append(_distillation_call(rng, 6, 5, pick([2.0, 5.0]), 0.0, label="hard labels only"))
    calls.append(_distillation_call(rng, 5, 4, 1.0, pick([0.3, 0.6]), label="T = 1"))
    huge = _distillation_call(rng, 4, 6, pick([1.0, 2.0]), pick([0.4, 0.9]), scale=10 ** rng.uniform(3, 4))
    calls.append(Call(huge.args, label=f"huge student and teacher logits, {huge.label}"))
    return calls


DISTILLATION_SIGNATURE = "def distillation_loss(student_logits, teacher_logits, labels, T, alpha):\n"
LOG_SOFTMAX = (
    "    def log_softmax(z):\n"
    "        z = z - z.max(axis=1, keepdims=True)\n"
    "        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
)


def _distillation_variant(
    student_soft="log_softmax(student_logits / T)",
    teacher_soft="log_softmax(teacher_logits / T)",
    kl="np.sum(p * (log_p - log_q)) / n",
    hard_logits="student_logits",
    loss="alpha * T**2 * kl + (1 - alpha) * ce",
    grad="alpha * T * (np.exp(log_q) - p) / n + (1 - alpha) * hard / n",
    helpers=LOG_SOFTMAX,
    guard="",
):
    """The code of a distillation loss with one part written differently from the reference.

    ``log_q`` and ``log_p`` are the student's and the teacher's log-probabilities in
    the soft term, ``p = exp(log_p)``, ``hard`` is softmax(hard_logits) minus the one-hot labels.
    """
    body = (
        helpers
        + "    n = len(labels)\n"
        + f"    log_q = {student_soft}\n"
        + f"    log_p = {teacher_soft}\n"
        + "    p = np.exp(log_p)\n"
        + f"    kl = {kl}\n"
        + f"    log_hard = log_softmax({hard_logits})\n"
        + "    ce = -log_hard[np.arange(n), labels].mean()\n"
        + "    hard = np.exp(log_hard)\n"
        + "    hard[np.arange(n), labels] -= 1.0\n"
        + f"    return float({loss}), {grad}\n"
    )
    if guard:
        body = f"    with np.errstate({guard}):\n" + "".join("    " + line + "\n" for line in body.splitlines())
    return DISTILLATION_SIGNATURE + body


DISTILLATION_LOSS = Exercise(
    chapter=CHAPTER,
    name="distillation_loss",
    points=4,
    cases=_distillation_cases,
    reference=transfer.distillation_loss,
    mistakes=(
        Mistake(
            "no_t_squared",
            _distillation_variant(loss="alpha * kl + (1 - alpha) * ce", grad="alpha / T * (np.exp(log_q) - p) / n + (1 - alpha) * hard / n"),
            diagnosis="the factor T**2 on the soft term is missing: without it the soft term's gradient "
            "shrinks like 1/T**2 as the temperature grows; use alpha * T**2 * KL",
        ),
        Mistake(
            "teacher_only_softened",
            _distillation_variant(student_soft="log_softmax(student_logits)", grad="alpha * T**2 * (np.exp(log_q) - p) / n + (1 - alpha) * hard / n"),
            diagnosis="only the teacher's logits were divided by T: soften both distributions, "
            "softmax(teacher_logits / T) and softmax(student_logits / T)",
        ),
        Mistake(
            "student_only_softened",
            _distillation_variant(teacher_soft="log_softmax(teacher_logits)"),
            diagnosis="only the student's logits were divided by T: soften both distributions, "
            "softmax(teacher_logits / T) and softmax(student_logits / T)",
        ),
        Mistake(
            "kl_reversed",
            _distillation_variant(kl="np.sum(np.exp(log_q) * (log_q - log_p)) / n"),
            diagnosis="the KL divergence is in the wrong direction: the soft term is KL(teacher || student) "
            "= sum p_teacher * (log p_teacher - log p_student), averaged over the batch",
        ),
        Mistake(
            "kl_mean_over_classes",
            _distillation_variant(
                kl="np.sum(p * (log_p - log_q)) / p.size",
                grad="alpha * T * (np.exp(log_q) - p) / p.size + (1 - alpha) * hard / n",
            ),
            diagnosis="the soft term was divided by N * C, as kl_div(reduction='mean') does; sum the KL "
            "divergence over the classes and average it over the N examples (reduction='batchmean')",
        ),
        Mistake(
            "alpha_swapped",
            _distillation_variant(
                loss="(1 - alpha) * T**2 * kl + alpha * ce",
                grad="(1 - alpha) * T * (np.exp(log_q) - p) / n + alpha * hard / n",
            ),
            diagnosis="alpha and 1 - alpha are swapped: alpha weighs the soft term, "
            "alpha * T**2 * KL + (1 - alpha) * cross-entropy",
        ),
        Mistake(
            "hard_term_softened",
            _distillation_variant(hard_logits="student_logits / T", grad="alpha * T * (np.exp(log_q) - p) / n + (1 - alpha) * hard / (n * T)"),
            diagnosis="the cross-entropy with the labels used the softened student (logits / T); "
            "the hard term is the ordinary cross_entropy(student_logits, labels) at T = 1",
        ),
        Mistake(
            "gradient_without_batch_mean",
            _distillation_variant(grad="alpha * T * (np.exp(log_q) - p) + (1 - alpha) * hard"),
            diagnosis="the gradient is N times too large: both terms are means over the batch, so each "
            "example's gradient carries a factor 1/N",
        ),
        Mistake(
            "summed_over_batch",
            _distillation_variant(
                kl="np.sum(p * (log_p - log_q))",
                loss="alpha * T**2 * kl + (1 - alpha) * ce * n",
                grad="alpha * T * (np.exp(log_q) - p) + (1 - alpha) * hard",
            ),
            diagnosis="the loss and its gradient are N times too large: both terms are averaged over the "
            "batch (kl_div with reduction='batchmean', the mean cross-entropy), not summed",
        ),
        Mistake(
            "gradient_sign",
            _distillation_variant(grad="alpha * T * (p - np.exp(log_q)) / n - (1 - alpha) * hard / n"),
            diagnosis="the gradient has the wrong sign: it is (student's probabilities - target) in both "
            "terms, alpha * T * (softmax(s / T) - softmax(t / T)) / N + (1 - alpha) * (softmax(s) - one_hot) / N",
        ),
        Mistake(
            "gradient_without_t",
            _distillation_variant(grad="alpha * (np.exp(log_q) - p) / n + (1 - alpha) * hard / n"),
            diagnosis="the soft term's gradient is missing its factor T: T**2 from the loss times 1/T from "
            "the chain rule through s / T gives alpha * T * (softmax(s / T) - softmax(t / T)) / N",
        ),
        Mistake(
            "gradient_without_chain_rule_t",
            _distillation_variant(grad="alpha * T**2 * (np.exp(log_q) - p) / n + (1 - alpha) * hard / n"),
            diagnosis="the soft term's gradient is alpha * T * (softmax(s / T) - softmax(t / T)) / N: "
            "T**2 from the loss times 1/T from the chain rule through s / T",
        ),
        Mistake(
            "no_max_subtraction",
            _distillation_variant(
                helpers="    def log_softmax(z):\n"
                "        e = np.exp(z)\n"
                "        return np.log(e / e.sum(axis=1, keepdims=True))\n",
                guard="over='ignore', invalid='ignore', divide='ignore'",
            ),
            diagnosis="np.exp overflowed on large logits (nan or inf): subtract each row's maximum logit "
            "before exponentiating, and compute log-probabilities as shifted - log(sum(exp(shifted)))",
        ),
        Mistake(
            "log_of_softmax",
            _distillation_variant(
                helpers="    def log_softmax(z):\n"
                "        e = np.exp(z - z.max(axis=1, keepdims=True))\n"
                "        return np.log(e / e.sum(axis=1, keepdims=True))\n",
                guard="divide='ignore', invalid='ignore'",
            ),
            diagnosis="np.log of a softmax probability that underflowed to 0 gave -inf: compute the "
            "log-probabilities directly, shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
        ),
    ),
)

EXERCISES = (LINEAR_CKA, SOFTMAX, DISTILLATION_LOSS)
