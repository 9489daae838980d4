"""Training subpackage: the only part of pairhunt that imports torch (extra ``train``).

- :mod:`pairhunt.train.data`: padded arrays from generated NanoAOD-like files or SPANet HDF5;
- :mod:`pairhunt.train.model`: the SPA-NET-style model with symmetric tensor attention;
- :mod:`pairhunt.train.loss`: permutation-minimal, partial-event, class-balanced loss;
- :mod:`pairhunt.train.loop`: the shared training loop, checkpoints and resume;
- :mod:`pairhunt.train.trainer`: supervised SPA-NET training and loading any run back;
- :mod:`pairhunt.train.abc_model`, :mod:`pairhunt.train.abc_trainer`: the unsupervised ABC model
  and its training on background only;
- :mod:`pairhunt.train.export`: ONNX export with a dynamic jet axis and the metadata contract.
"""
