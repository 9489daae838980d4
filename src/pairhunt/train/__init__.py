"""Training subpackage: the only part of pairhunt that imports torch (extra ``train``).

- :mod:`pairhunt.train.data`: padded arrays from generated NanoAOD-like files or SPANet HDF5;
- :mod:`pairhunt.train.model`: the SPA-NET-style model with symmetric tensor attention;
- :mod:`pairhunt.train.loss`: permutation-minimal, partial-event, class-balanced loss;
- :mod:`pairhunt.train.trainer`: the training loop, checkpoints and resume;
- :mod:`pairhunt.train.export`: ONNX export with a dynamic jet axis and the metadata contract.
"""
