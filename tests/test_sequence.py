"""Chapter 4's task and recurrent classifiers: the data is what the docstring says, the models are PyTorch's."""

import numpy as np
import pytest
import torch

from nnopt import sequence


@pytest.mark.parametrize("max_lag, min_lag", [(1, 1), (6, 1), (20, 20), (12, 5)])
def test_marked_recall_marks_one_step_and_labels_its_symbol(max_lag, min_lag):
    split = sequence.marked_recall(max_lag, min_lag=min_lag, train=300, val=20, test=30, seed=3)
    for X, y in [(split.X_train, split.y_train), (split.X_val, split.y_val), (split.X_test, split.y_test)]:
        assert X.shape == (len(y), max_lag, 5) and X.dtype == np.float64 and y.dtype == np.int64
        np.testing.assert_array_equal(X[:, :, :4].sum(axis=2), 1.0)  # one symbol per step
        np.testing.assert_array_equal(X[:, :, 4].sum(axis=1), 1.0)  # one marked step
        lags = sequence.lags(X)
        assert lags.min() >= min_lag and lags.max() <= max_lag
        marked = max_lag - lags
        np.testing.assert_array_equal(np.argmax(X[np.arange(len(y)), marked, :4], axis=1), y)
    lags = sequence.lags(split.X_train)
    assert set(np.unique(lags)) == set(range(min_lag, max_lag + 1))  # every lag occurs
    assert set(np.unique(split.y_train)) == {0, 1, 2, 3}


def test_marked_recall_is_seeded():
    a, b = sequence.marked_recall(5, seed=1, train=50), sequence.marked_recall(5, seed=1, train=50)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, sequence.marked_recall(5, seed=2, train=50).X_test)


@pytest.mark.parametrize("change, name", [({"max_lag": 0}, "max_lag"), ({"min_lag": 4}, "min_lag"),
                                          ({"symbols": 1}, "symbols"), ({"val": 0}, "val")])
def test_marked_recall_names_the_bad_argument(change, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        sequence.marked_recall(**dict({"max_lag": 3}, **change))


@pytest.mark.parametrize("kind, cell", [("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM)])
def test_recurrent_classifier_reads_out_the_last_state_of_pytorchs_cell(kind, cell):
    model = sequence.recurrent_classifier(kind, 5, 7, 4, seed=0)
    assert isinstance(model.recurrent, cell) and model.recurrent.batch_first
    x = torch.randn(3, 6, 5)
    outputs, _ = model.recurrent(x)
    torch.testing.assert_close(model(x), model.readout(outputs[:, -1]))
    again = sequence.recurrent_classifier(kind, 5, 7, 4, seed=0)
    torch.testing.assert_close(again(x), model(x))  # the seed fixes the weights


def test_forget_bias_sets_the_forget_gates_total_bias():
    model = sequence.recurrent_classifier("lstm", 5, 3, 4, seed=0, forget_bias=1.0)
    default = sequence.recurrent_classifier("lstm", 5, 3, 4, seed=0)
    total = (model.recurrent.bias_ih_l0 + model.recurrent.bias_hh_l0).detach()
    torch.testing.assert_close(total[3:6], torch.ones(3))  # rows H:2H, PyTorch's order i, f, g, o
    torch.testing.assert_close(model.recurrent.bias_ih_l0[:3], default.recurrent.bias_ih_l0[:3])
    with pytest.raises(ValueError, match="forget_bias"):
        sequence.recurrent_classifier("rnn", 5, 3, 4, forget_bias=1.0)
    with pytest.raises(ValueError, match="kind"):
        sequence.recurrent_classifier("gru", 5, 3, 4)


def test_parameter_count():
    model = sequence.recurrent_classifier("rnn", 5, 32, 4)
    assert sequence.parameter_count(model) == 32 * 5 + 32 * 32 + 2 * 32 + 4 * 32 + 4
