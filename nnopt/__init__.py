"""nnopt: the reference package of the neural-network optimization course.

Modules mirror the chapters: ``optim`` and ``schedules`` (chapters 1-2), ``cnn``
(chapter 3: convolution and max pooling, forward and backward), ``rnn`` (chapter 4: a
tanh RNN, backpropagation through time, gradient clipping) and ``sequence`` (chapter
4's long-dependency task and PyTorch recurrent classifiers), ``landscapes``
and ``models`` (test problems), ``data`` (offline datasets split into train, validation
and test, mini-batching), ``train`` (a small seeded PyTorch training loop),
``experiments`` (seeds, choices on validation data, intervals, interleaved timings),
``progress`` (progress lines for slow loops), ``plots`` and ``widgets`` (figures, and
sliders that work live in Jupyter and precomputed in the book), ``cost`` and ``gpu``
(chapter 8: FLOPs, bytes, the roofline and the ring all-reduce in NumPy; timing and
measuring on the device at hand with PyTorch), and ``exercises`` (the exercise registry
behind checks and grading).
"""

__version__ = "0.1.0"
