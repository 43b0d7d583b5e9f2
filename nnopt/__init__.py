"""nnopt: the reference package of the neural-network optimization course.

Modules mirror the chapters:

* ``optim``, ``schedules``: optimizer steps and learning-rate schedules (chapters 1-2);
* ``cnn``: convolution and max pooling, forward and backward (chapter 3);
* ``rnn``, ``sequence``: a tanh RNN, backpropagation through time, gradient clipping;
  a long-dependency task and PyTorch recurrent classifiers (chapter 4);
* ``prune``: magnitude and channel masks, soft-thresholding, the gradual schedule,
  sparse storage, masked fine-tuning (chapter 5);
* ``quant``: affine quantization, per-channel weights, an integer-only linear layer,
  fake quantization for quantization-aware training (chapter 6);
* ``transfer``, ``lockstep``: softmax with temperature, the distillation loss, linear
  CKA, fine-tuning helpers; many small MLPs trained at once (chapter 7);
* ``cost``, ``gpu``: FLOPs, bytes, the roofline and the ring all-reduce in NumPy;
  timing and measuring on the device at hand with PyTorch (chapter 8);

and serve them all:

* ``landscapes``, ``models``: test problems;
* ``data``: offline data sets split into train, validation and test; mini-batching;
* ``train``: a small seeded PyTorch training loop;
* ``experiments``: seeds, choices on validation data, intervals, interleaved timings;
* ``progress``: progress lines for slow loops;
* ``plots``, ``widgets``: figures, and sliders that work live in Jupyter and precomputed
  in the book;
* ``exercises``: the exercise registry behind checks and grading.
"""

__version__ = "0.1.0"
