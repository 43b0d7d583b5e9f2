"""nnopt: the reference package of the neural-network optimization course.

Modules mirror the chapters: ``optim`` and ``schedules`` (chapters 1-2), ``landscapes``
and ``models`` (test problems), ``data`` (offline datasets split into train, validation
and test, mini-batching), ``train`` (a small seeded PyTorch training loop),
``experiments`` (seeds, choices on validation data, intervals, interleaved timings),
``progress`` (progress lines for slow loops), ``plots`` and ``widgets`` (figures, and
sliders that work live in Jupyter and precomputed in the book), ``transfer`` (chapter 7:
softmax with temperature, the distillation loss, linear CKA, fine-tuning helpers),
``lockstep`` (many small networks trained at once, for sweeps over seeds and settings),
and ``exercises`` (the exercise registry behind checks and grading).
"""

__version__ = "0.1.0"
