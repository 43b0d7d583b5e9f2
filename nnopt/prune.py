r"""Pruning (chapter 5): which weights to remove, when, and what removing them saves.

NumPy, float64, pure, with PyTorch's conventions (``torch.nn.utils.prune``):

* :func:`magnitude_mask` and :func:`channel_mask` say which weights stay (``True``)
  and which go, one weight at a time or whole slices at a time;
* :func:`soft_threshold` is the proximal step of an L1 penalty, the reason L1
  training makes weights exactly zero;
* :func:`gradual_sparsity` is the cubic schedule of Zhu and Gupta (2017);
* :func:`csr_bytes` and :func:`break_even_sparsity` say what a sparse matrix costs
  to store.

**Ties.** PyTorch picks the entries with ``torch.topk`` (the ``k`` smallest magnitudes
to remove, or the slices of largest norm to keep), whose choice among *equal* values is
whatever the C++ standard library's selection algorithm leaves: neither "first index
first" nor "last index first". The masks here make the same choice, ties included, by
replaying that algorithm as PyTorch's Linux builds run it (:mod:`nnopt._topk`);
``tests/test_prune.py`` checks them against ``torch.nn.utils.prune`` on thousands of
random tie patterns. The exercises accept any choice among ties.

The PyTorch helpers at the end (masks on a model that stay applied while it
trains, a proximal L1 optimizer, removing hidden units) import ``torch`` inside
the functions, so that importing this module costs NumPy only (the grader imports
it for the exercises' references).
"""

import numpy as np

from . import _topk, _validate


def _sparsity(sparsity):
    return _validate.number("sparsity", sparsity, low=0.0, high=1.0)




def magnitude_mask(w, sparsity):
    r"""Keep the weights of largest magnitude: ``False`` for the ``round(sparsity * w.size)`` smallest :math:`|w|`.

    .. math:: m_i = \mathbb 1\bigl[\,|w_i| \text{ is not among the } k \text{ smallest}\,\bigr],
              \qquad k = \operatorname{round}(s \cdot n)

    ``w`` any shape; returns a bool array of the same shape (``True`` = kept).
    ``round`` is Python's (halves to even), as in PyTorch. Equals the mask of
    ``torch.nn.utils.prune.l1_unstructured(module, name, amount=sparsity)`` for a
    float ``sparsity`` in [0, 1], also where magnitudes tie at the threshold (see the
    module docstring).
    """
    w = _validate.array("w", w)
    keep = np.ones(w.size, dtype=bool)
    keep[_topk.smallest(np.abs(w).ravel(), round(_sparsity(sparsity) * w.size))] = False
    return keep.reshape(w.shape)


def _axis(dim, ndim):
    dim = _validate.integer("dim", dim, low=-ndim)
    if dim >= ndim:
        raise ValueError(f"dim must be in [{-ndim}, {ndim - 1}] for an array of {ndim} dimensions, got {dim}")
    return dim % ndim


def channel_norms(w, dim=0):
    r"""The L2 norm of every slice of ``w`` along ``dim``: :math:`\lVert w_{[i]}\rVert_2` over all other axes.

    ``w`` has at least 2 dimensions; returns an array of shape ``(w.shape[dim],)``.
    For a ``torch.nn.Linear`` weight ``(out, in)`` and ``dim=0``, slice ``i`` is the
    incoming weights of output unit ``i``; for a convolution weight ``(F, C, KH, KW)``
    it is filter ``i``.
    """
    w = _validate.array("w", w)
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions (slices along dim are pruned), got shape {w.shape}")
    axis = _axis(dim, w.ndim)
    others = tuple(a for a in range(w.ndim) if a != axis)
    return np.sqrt(np.sum(w * w, axis=others))


def channel_mask(w, sparsity, dim=0):
    r"""Remove whole slices along ``dim``: the ``round(sparsity * n)`` slices of smallest L2 norm.

    .. math:: m_{[i]} = \mathbb 1\bigl[\,\lVert w_{[i]}\rVert_2 \text{ is not among the } k
              \text{ smallest}\,\bigr], \qquad k = \operatorname{round}(s \cdot n), \quad n = w.\text{shape}[\text{dim}]

    ``w`` at least 2-D; returns a bool array of the shape of ``w``, constant along
    each slice (``True`` = kept). Equals the mask of
    ``torch.nn.utils.prune.ln_structured(module, name, amount=sparsity, n=2,
    dim=dim)``, ties included (PyTorch keeps the ``n - k`` largest norms). The norms are
    NumPy's, and PyTorch sums in another order: two norms within a rounding error of
    each other (say of slices that hold the same numbers in another order) can compare
    differently there.
    """
    norms = channel_norms(w, dim)
    w = np.asarray(w)
    axis = dim % w.ndim
    keep = np.zeros(norms.size, dtype=bool)
    keep[_topk.largest(norms, norms.size - round(_sparsity(sparsity) * norms.size))] = True
    shape = [1] * w.ndim
    shape[axis] = norms.size
    return np.broadcast_to(keep.reshape(shape), w.shape).copy()


def soft_threshold(w, threshold):
    r"""The proximal step of :math:`\tau\lVert w\rVert_1`: shrink every weight toward 0 by ``threshold``, stop at 0.

    .. math:: \operatorname{prox}_{\tau\lVert\cdot\rVert_1}(w)_i = \operatorname{sign}(w_i)\,\max(|w_i| - \tau,\ 0)

    ``w`` any shape; returns a new array of its shape. Weights with
    :math:`|w_i| \le \tau` become exactly 0. Matches
    ``torch.nn.functional.softshrink(w, lambd=threshold)``.
    """
    w = _validate.array("w", w)
    threshold = _validate.number("threshold", threshold)
    return np.sign(w) * np.maximum(np.abs(w) - threshold, 0.0)


def gradual_sparsity(step, begin_step, end_step, final_sparsity, initial_sparsity=0.0):
    r"""The cubic sparsity schedule of Zhu and Gupta (2017): fast at first, slow near the end.

    .. math:: s_t = s_f + (s_i - s_f)\Bigl(1 - \frac{t - t_0}{t_1 - t_0}\Bigr)^3,
              \qquad t \text{ clipped to } [t_0, t_1]

    Before ``begin_step`` the sparsity is ``initial_sparsity``; from ``end_step`` on
    it is ``final_sparsity``. Prune to :math:`s_t` every few steps in between and
    train on. The same rule as TensorFlow Model Optimization's
    ``PolynomialDecay(power=3)``. Returns a float.
    """
    step = _validate.integer("step", step)
    begin_step = _validate.integer("begin_step", begin_step)
    end_step = _validate.integer("end_step", end_step, low=begin_step + 1)
    final_sparsity = _validate.number("final_sparsity", final_sparsity, high=1.0)
    initial_sparsity = _validate.number("initial_sparsity", initial_sparsity, high=1.0)
    progress = (min(max(step, begin_step), end_step) - begin_step) / (end_step - begin_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def _itemsize(name, dtype, kinds):
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise ValueError(f"{name} must be a NumPy dtype such as 'int32', got {dtype!r}") from error
    if dtype.kind not in kinds:
        raise ValueError(f"{name} must be {'an integer' if kinds == 'iu' else 'a numeric'} dtype, got {dtype}")
    return dtype


def csr_bytes(weights, value_dtype="float32", index_dtype="int32"):
    r"""Bytes of ``weights`` stored in CSR: values, column indices and row pointers.

    .. math:: \text{bytes} = \mathrm{nnz}\,(b_v + b_i) + (R + 1)\, b_i

    for a matrix of ``R`` rows with ``nnz`` non-zero entries, ``b_v`` bytes per value
    (``value_dtype``) and ``b_i`` per index (``index_dtype``, used for the column
    indices and the row pointers alike). ``weights`` is 2-D. Equals
    ``data.nbytes + indices.nbytes + indptr.nbytes`` of
    ``scipy.sparse.csr_array(weights.astype(value_dtype))`` with its index arrays
    cast to ``index_dtype``. Raises ``ValueError`` when ``index_dtype`` cannot hold
    the largest column index or ``nnz``. Returns an int.
    """
    weights = _validate.array("weights", weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, got shape {weights.shape}")
    value_size = _itemsize("value_dtype", value_dtype, "iufc").itemsize
    index_type = _itemsize("index_dtype", index_dtype, "iu")
    rows, columns = weights.shape
    nonzero = int(np.count_nonzero(weights))
    largest = max(columns - 1, nonzero)
    if largest > np.iinfo(index_type).max:
        raise ValueError(f"index_dtype {index_type} cannot hold {largest} (a column index or the row pointer nnz)")
    return nonzero * (value_size + index_type.itemsize) + (rows + 1) * index_type.itemsize


def break_even_sparsity(shape, value_dtype="float32", index_dtype="int32"):
    r"""The sparsity above which CSR (:func:`csr_bytes`) takes fewer bytes than the dense matrix.

    Setting :math:`\mathrm{nnz} = (1 - s)\,RC` equal in
    :math:`\mathrm{nnz}(b_v + b_i) + (R+1)\,b_i = RC\,b_v` gives

    .. math:: s^* = 1 - \frac{RC\,b_v - (R+1)\,b_i}{RC\,(b_v + b_i)}
              = \frac{b_i}{b_v + b_i}\Bigl(1 + \frac{R+1}{RC}\Bigr)

    ``shape`` is ``(R, C)``. For float32 values: about 1/2 with int32 indices, 1/3
    with int16. A value above 1 means CSR is never smaller. Returns a float.
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, columns), got {shape!r}")
    rows = _validate.integer("shape[0]", shape[0], low=1)
    columns = _validate.integer("shape[1]", shape[1], low=1)
    value_size = _itemsize("value_dtype", value_dtype, "iufc").itemsize
    index_size = _itemsize("index_dtype", index_dtype, "iu").itemsize
    return index_size / (value_size + index_size) * (1 + (rows + 1) / (rows * columns))


# --- PyTorch helpers (torch is imported inside) ---------------------------------------------------


def prunable_layers(model):
    """The ``torch.nn.Linear`` and convolution layers of ``model``, as ``{name: module}`` in model order."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
    return {name: module for name, module in model.named_modules() if isinstance(module, kinds)}


def effective_weights(model):
    """The weights each prunable layer computes with (mask applied), as float64 arrays ``{name: array}``.

    After :func:`apply_masks`, a layer's trained parameter is ``weight_orig`` and its
    mask the buffer ``weight_mask``; the weight it computes with is their product.
    """
    weights = {}
    for name, module in prunable_layers(model).items():
        weight = module.weight_orig * module.weight_mask if hasattr(module, "weight_mask") else module.weight
        weights[name] = weight.detach().double().numpy().copy()
    return weights


def apply_masks(model, masks):
    """Multiply the weights of the named layers by ``masks`` and keep them multiplied while the model trains.

    ``masks`` maps layer names (as in :func:`prunable_layers`) to bool arrays of the
    weight's shape (``True`` = kept). Uses ``torch.nn.utils.prune.custom_from_mask``:
    the layer's parameter becomes ``weight_orig``, the mask a buffer
    ``weight_mask``, and before every forward pass ``weight = weight_orig *
    weight_mask``, so removed weights get zero gradient and stay zero through
    fine-tuning. Masking a layer again multiplies the masks: a removed weight stays
    removed. Create the optimizer after the first call (it must hold
    ``weight_orig``); later calls keep the same parameter. Returns ``model``.
    """
    import torch
    from torch.nn.utils import prune

    layers = prunable_layers(model)
    for name, mask in masks.items():
        if name not in layers:
            raise ValueError(f"masks names {name!r}, which is not a prunable layer of the model ({', '.join(layers)})")
        module = layers[name]
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != tuple(module.weight.shape):
            raise ValueError(f"masks[{name!r}] must be a bool array of shape {tuple(module.weight.shape)}, got {mask.dtype} {mask.shape}")
        prune.custom_from_mask(module, "weight", torch.tensor(mask))
    return model


def global_magnitude_masks(weights, sparsity, mask_function=magnitude_mask):
    """:func:`magnitude_mask` of all the arrays of ``weights`` together: one threshold for all of them.

    ``weights`` maps names to arrays; returns ``{name: bool mask}``. Layers whose
    weights are small lose more of them than layers whose weights are large.
    Matches ``torch.nn.utils.prune.global_unstructured(..., pruning_method=
    L1Unstructured, amount=sparsity)``. ``mask_function`` stands in for
    :func:`magnitude_mask` (a notebook passes the student's).
    """
    names = list(weights)
    arrays = [_validate.array(f"weights[{name!r}]", weights[name]) for name in names]
    flat = mask_function(np.concatenate([array.ravel() for array in arrays]), sparsity)
    ends = np.cumsum([array.size for array in arrays])
    return {name: part.reshape(array.shape) for name, array, part in zip(names, arrays, np.split(flat, ends[:-1]))}


def prune_by_magnitude(model, sparsity, scope="global", mask_function=magnitude_mask):
    """Mask the prunable layers of ``model`` to ``sparsity`` by the magnitude of their current weights.

    ``scope="global"``: one threshold for all layers (:func:`global_magnitude_masks`,
    like ``torch.nn.utils.prune.global_unstructured``); ``scope="layer"``: every layer
    loses the same fraction (:func:`magnitude_mask` per layer, like
    ``torch.nn.utils.prune.l1_unstructured`` on each). Weights already removed are
    zero, hence the smallest, so calling this again with a larger sparsity prunes on
    from where the last call left (iterative pruning). ``mask_function`` stands in
    for :func:`magnitude_mask`. Returns the masks ``{name: bool array}``.
    """
    weights = effective_weights(model)
    if scope == "global":
        masks = global_magnitude_masks(weights, sparsity, mask_function)
    elif scope == "layer":
        masks = {name: mask_function(weight, sparsity) for name, weight in weights.items()}
    else:
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    apply_masks(model, masks)
    return masks


def make_masks_permanent(model):
    """Replace every masked layer's ``weight_orig`` and mask by the plain masked weight (``torch.nn.utils.prune.remove``)."""
    from torch.nn.utils import prune

    for module in prunable_layers(model).values():
        if hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return model


class ProximalL1:
    r"""A ``torch.optim`` optimizer followed, at every step, by the proximal step of an L1 penalty.

    After the wrapped optimizer's step, each weight in ``weights`` is soft-thresholded
    by :math:`\eta\lambda` (:func:`soft_threshold`, ``torch.nn.functional.softshrink``),
    with :math:`\eta` the learning rate of its parameter group and :math:`\lambda`
    = ``strength``. With plain SGD this is proximal gradient descent on
    :math:`f(w) + \lambda\lVert w\rVert_1`; weights whose gradient cannot hold them away
    from zero become exactly zero. Use it where an optimizer goes (``nnopt.train.fit``).
    """

    def __init__(self, optimizer, weights, strength):
        self.optimizer = optimizer
        self.strength = _validate.number("strength", strength)
        self._weights = {id(weight) for weight in weights}

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self):
        import torch

        self.optimizer.step()
        with torch.no_grad():
            for group in self.optimizer.param_groups:
                threshold = group["lr"] * self.strength
                for parameter in group["params"]:
                    if id(parameter) in self._weights:
                        parameter.copy_(torch.nn.functional.softshrink(parameter, threshold))


def layer_weights(model):
    """The trainable weight tensors of the prunable layers (``weight_orig`` where masked), for :class:`ProximalL1`."""
    return [getattr(module, "weight_orig", module.weight) for module in prunable_layers(model).values()]


def remove_hidden_units(model, sparsity, mask_function=channel_mask):
    r"""A smaller dense copy of an MLP with the hidden units of smallest incoming-weight norm removed.

    ``model`` is a ``torch.nn.Sequential`` of ``Linear`` layers with element-wise
    activations between them (as :func:`nnopt.train.mlp` builds). In every hidden
    layer, :func:`channel_mask` with ``dim=0`` picks the ``round(sparsity * width)``
    units whose incoming weights have the smallest L2 norm. A removed unit's
    weights are zero, so it outputs the constant :math:`a(b_j)` (its own bias through
    the activation); that constant is folded into the next layer's bias,
    :math:`b' = b + W_{[:, j]}\, a(b_j)`, so the smaller model computes exactly what the
    model pruned with ``torch.nn.utils.prune.ln_structured(n=2, dim=0)`` on its
    hidden layers computes. ``mask_function`` stands in for :func:`channel_mask`.
    Returns a new model; ``model`` is not changed.
    """
    import torch

    sparsity = _sparsity(sparsity)
    modules = list(model)
    linear = [i for i, module in enumerate(modules) if isinstance(module, torch.nn.Linear)]
    if not linear or any(i not in linear and list(module.parameters()) for i, module in enumerate(modules)):
        raise ValueError("model must be a Sequential of Linear layers and parameter-free activations")
    weights = {i: modules[i].weight.detach().clone() for i in linear}
    biases = {i: modules[i].bias.detach().clone() for i in linear}
    copies = list(modules)
    kept_inputs = torch.ones(weights[linear[0]].shape[1], dtype=torch.bool)
    for position, i in enumerate(linear):
        weight, bias = weights[i][:, kept_inputs], biases[i]
        if position + 1 < len(linear):
            keep = torch.tensor(mask_function(weights[i].double().numpy(), sparsity, dim=0)[:, 0])
            following = linear[position + 1]
            with torch.no_grad():
                activation = torch.nn.Sequential(*modules[i + 1 : following])
                # a removed unit's whole row is masked, so it sees its own original bias alone
                constant = activation(modules[i].bias.detach()[~keep].unsqueeze(0)).squeeze(0)
                biases[following] = biases[following] + weights[following][:, ~keep] @ constant
            weight, bias, kept_inputs = weight[keep], bias[keep], keep
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        copies[i] = layer
    return torch.nn.Sequential(*copies)


def csr_forward(model):
    """A function that computes ``model(x)`` with every ``Linear`` weight stored as a ``torch`` sparse CSR matrix.

    ``model`` is a ``torch.nn.Sequential`` of ``Linear`` layers (masked or not) and
    parameter-free modules. Each layer computes ``torch.sparse.mm(W, x.T).T + b``
    with ``W`` in CSR; only its non-zeros are stored and multiplied. PyTorch warns
    that sparse CSR support is in beta; that warning is silenced here.
    """
    import warnings

    import torch

    weights = effective_weights(model)
    names = {id(module): name for name, module in model.named_modules()}
    steps = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        for module in model:
            if isinstance(module, torch.nn.Linear):
                weight = torch.from_numpy(weights[names[id(module)]]).to(module.bias.dtype)
                steps.append((weight.to_sparse_csr(), module.bias.detach().clone()))
            elif list(module.parameters()):
                raise ValueError("model must be a Sequential of Linear layers and parameter-free modules")
            else:
                steps.append(module)

    def forward(x):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            for step in steps:
                if isinstance(step, tuple):
                    weight, bias = step
                    x = torch.sparse.mm(weight, x.T).T + bias
                else:
                    x = step(x)
        return x

    return forward
