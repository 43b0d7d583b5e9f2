r"""Transfer learning and knowledge distillation (chapter 7).

NumPy references (float64, pure, PyTorch's conventions), which the exercises use:

* :func:`softmax` with a temperature, over the last axis;
* :func:`distillation_loss`, Hinton et al.'s loss on soft and hard targets, and its
  gradient with respect to the student's logits;
* :func:`linear_cka`, Kornblith et al.'s linear centred kernel alignment between
  two representations of the same examples.

PyTorch helpers for fine-tuning a model whose top-level children are *blocks*, the
last one named ``head`` (as :func:`nnopt.lockstep.mlp` builds them):
:func:`freeze_blocks`, :func:`replace_head`, :func:`parameter_groups` (a smaller
learning rate for the pretrained body) and :func:`features` (the output of a named
layer). They import PyTorch when called: the exercise registry imports this module
where PyTorch must not be loaded.
"""

import copy

import numpy as np

from . import _validate


def _temperature(T):
    T = _validate.number("T", T)
    if T == 0.0:
        raise ValueError("T must be positive, got 0.0")
    return T


def _log_softmax(z):
    """log softmax over the last axis, computed from the shifted logits (never overflows)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z, T=1.0):
    r"""Softmax with temperature over the last axis, :math:`p_i = e^{z_i/T} / \sum_j e^{z_j/T}`.

    Computed as :math:`e^{(z_i - m)/T} / \sum_j e^{(z_j - m)/T}` with :math:`m = \max_j z_j`,
    which is the same number and cannot overflow. ``z`` has any shape with at least
    one axis (classes last); the result has its shape. ``T > 0``: large ``T`` flattens
    the distribution toward uniform, small ``T`` sharpens it toward the arg-max.
    Matches ``torch.softmax(z / T, dim=-1)``.
    """
    z = _validate.array("z", z)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"z must have at least one axis with at least one class (last axis), got shape {z.shape}")
    T = _temperature(T)
    return np.exp(_log_softmax(z / T))


def _logits_and_labels(student_logits, teacher_logits, labels):
    student_logits = _validate.array("student_logits", student_logits)
    if student_logits.ndim != 2 or 0 in student_logits.shape:
        raise ValueError(f"student_logits must have shape (N, C) with N, C >= 1, got {student_logits.shape}")
    teacher_logits = _validate.same_shape("teacher_logits", teacher_logits, "student_logits", student_logits)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    n, classes = student_logits.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one class index per row, got {labels.shape}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must be class indices in [0, {classes}), got values from {labels.min()} to {labels.max()}")
    return student_logits, teacher_logits, labels.astype(np.int64)


def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    r"""Knowledge-distillation loss (Hinton et al. 2015) and its gradient with respect to the student's logits.

    With :math:`p^T = \mathrm{softmax}(t/T)` the teacher's and :math:`q^T = \mathrm{softmax}(s/T)`
    the student's softened distributions, and :math:`q = \mathrm{softmax}(s)`,

    .. math::
        L = \frac{\alpha T^2}{N} \sum_{n} \mathrm{KL}\bigl(p^T_n \,\|\, q^T_n\bigr)
          + \frac{1 - \alpha}{N} \sum_n \bigl(-\log q_{n, y_n}\bigr),
        \qquad
        \frac{\partial L}{\partial s_n} = \frac{\alpha T}{N}\bigl(q^T_n - p^T_n\bigr)
          + \frac{1 - \alpha}{N}\bigl(q_n - e_{y_n}\bigr),

    where :math:`\mathrm{KL}(p \| q) = \sum_c p_c (\log p_c - \log q_c)` (a class with
    :math:`p_c = 0` adds 0). The factor :math:`T^2` keeps the soft term's gradient,
    which shrinks like :math:`1/T^2` for large ``T``, on the scale of the hard term's.

    Shapes: ``student_logits`` and ``teacher_logits`` ``(N, C)``, ``labels`` ``(N,)``
    integers in ``[0, C)``; ``T > 0``, ``alpha`` in ``[0, 1]``. Returns ``(loss, grad)``:
    a float, and a float64 array ``(N, C)``. Matches
    ``alpha * T**2 * kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean")
    + (1 - alpha) * cross_entropy(s, labels)`` and its autograd gradient.
    """
    student_logits, teacher_logits, labels = _logits_and_labels(student_logits, teacher_logits, labels)
    T = _temperature(T)
    alpha = _validate.number("alpha", alpha, high=1.0)
    n = len(labels)
    rows = np.arange(n)
    log_student_soft = _log_softmax(student_logits / T)
    log_teacher_soft = _log_softmax(teacher_logits / T)
    teacher_soft = np.exp(log_teacher_soft)
    kl = np.sum(teacher_soft * (log_teacher_soft - log_student_soft)) / n
    log_student = _log_softmax(student_logits)
    cross_entropy = -log_student[rows, labels].mean()
    loss = alpha * T**2 * kl + (1 - alpha) * cross_entropy
    hard = np.exp(log_student)
    hard[rows, labels] -= 1.0
    grad = alpha * T * (np.exp(log_student_soft) - teacher_soft) / n + (1 - alpha) * hard / n
    return float(loss), grad


def linear_cka(X, Y):
    r"""Linear centred kernel alignment (Kornblith et al. 2019) of two representations of the same examples.

    With :math:`\tilde X` and :math:`\tilde Y` the column-centred matrices (each
    feature minus its mean over the examples),

    .. math::
        \mathrm{CKA}(X, Y) = \frac{\lVert \tilde Y^\top \tilde X \rVert_F^2}
        {\lVert \tilde X^\top \tilde X \rVert_F\, \lVert \tilde Y^\top \tilde Y \rVert_F}
        = \frac{\mathrm{HSIC}(K, L)}{\sqrt{\mathrm{HSIC}(K, K)\,\mathrm{HSIC}(L, L)}},
        \quad K = XX^\top,\ L = YY^\top .

    A number in ``[0, 1]``, unchanged by rotations and by isotropic scaling of
    either representation, and by adding a constant to a feature. Shapes:
    ``X (n, p)`` and ``Y (n, q)``, one row per example, ``n >= 2``. Raises
    ``ValueError`` when a representation is constant over the examples (CKA is not
    defined). Matches the Gram-matrix form computed in PyTorch (tests/test_transfer.py).
    """
    X = _validate.array("X", X)
    Y = _validate.array("Y", Y)
    for name, value in (("X", X), ("Y", Y)):
        if value.ndim != 2 or value.shape[0] < 2 or value.shape[1] < 1:
            raise ValueError(f"{name} must have shape (n, features) with n >= 2 examples, got {value.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must hold the same examples: X has {X.shape[0]} rows, Y has {Y.shape[0]}")
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    norms = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    for name, norm in zip("XY", norms):
        if norm == 0.0:
            raise ValueError(f"{name} is the same for every example: CKA needs a representation that varies")
    return float(np.linalg.norm(Y.T @ X) ** 2 / (norms[0] * norms[1]))


# --- PyTorch helpers for fine-tuning ----------------------------------------------------------


def _blocks(model):
    names = [name for name, _ in model.named_children()]
    if not names or names[-1] != "head":
        raise ValueError(f"model must be made of named blocks, the last one named 'head'; its children are {names}")
    return list(model.named_children())


def freeze_blocks(model, k):
    """Freeze the first ``k`` blocks of ``model`` (its first ``k`` children): their
    parameters get ``requires_grad = False``, so no gradient is computed for them and
    no optimizer moves them. ``k = 0`` freezes nothing; freezing every block before
    the head makes a linear probe. Changes ``model`` in place, like
    ``torch.nn.Module.requires_grad_(False)`` on each of those blocks, and returns it.
    (Parameters only: a frozen block with batch normalization would still update its
    running statistics in training mode.)
    """
    blocks = _blocks(model)
    k = _validate.integer("k", k)
    if k > len(blocks) - 1:
        raise ValueError(f"k must be at most {len(blocks) - 1}, the number of blocks before the head, got {k}")
    for _, block in blocks[:k]:
        block.requires_grad_(False)
    return model


def replace_head(model, head):
    """A copy of ``model`` whose last block, ``head``, is replaced by ``head``.

    The body's weights are copied (deep copy), not shared, so fine-tuning the copy
    leaves ``model`` as it was; ``head`` itself is used as given (make it fresh, e.g.
    ``torch.nn.Linear(features, classes)`` for a new task's classes).
    """
    import torch

    _blocks(model)
    if not isinstance(head, torch.nn.Module):
        raise ValueError(f"head must be a torch.nn.Module, got {type(head).__name__}")
    new = copy.deepcopy(model)
    new.head = head
    return new


def parameter_groups(model, lr, body_lr):
    """Optimizer parameter groups for fine-tuning: the head at ``lr``, every other block at ``body_lr``.

    Frozen parameters (``requires_grad = False``) are left out, and so is a group
    with no parameters. ``body_lr < lr`` is a discriminative learning rate: the
    pretrained body moves more slowly than the new head. Use as
    ``torch.optim.SGD(parameter_groups(model, 0.1, 0.01), lr=0.1, momentum=0.9)``.
    """
    blocks = _blocks(model)
    lr = _validate.number("lr", lr)
    body_lr = _validate.number("body_lr", body_lr)
    body = [p for _, block in blocks[:-1] for p in block.parameters() if p.requires_grad]
    head = [p for p in blocks[-1][1].parameters() if p.requires_grad]
    groups = [{"params": body, "lr": body_lr}, {"params": head, "lr": lr}]
    return [group for group in groups if group["params"]]


def features(model, X, layer):
    """The output of the submodule named ``layer`` when ``model`` runs on ``X``, as a float64 NumPy array.

    ``layer`` is a name as in ``model.named_modules()`` (``"block1"``, ``"head"``).
    The model runs in evaluation mode without gradients (and is put back in the mode
    it was in); the output is caught with a forward hook
    (``torch.nn.Module.register_forward_hook``) and returned with the shape the
    layer produced.
    """
    import torch

    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        raise ValueError(f"layer must name a submodule of model ({', '.join(names)}), got {layer!r}")
    caught = []
    handle = model.get_submodule(layer).register_forward_hook(lambda module, inputs, output: caught.append(output))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(X.float() if isinstance(X, torch.Tensor) else torch.tensor(np.asarray(X), dtype=torch.float32))
    finally:
        handle.remove()
        model.train(was_training)
    return caught[0].detach().double().numpy()
