"""Jet-to-parent assignment: every method the processor can run, and what they share.

- :mod:`pairhunt.assign.base`: :class:`JetAssignment` (what every method returns) and the method interface;
- :mod:`pairhunt.assign.baselines`: χ² (optionally b-tag aware) and minimal mass asymmetry,
  exact over every assignment, on the compiled searches of :mod:`pairhunt.assign.pair_search`
  and the permutation tables of :mod:`pairhunt.assign.combinatorics`;
- :mod:`pairhunt.assign.onnx`: exported SPA-NET-style models through onnxruntime, decoded by
  :mod:`pairhunt.assign.decoding` (greedy or top-k, numba);
- :mod:`pairhunt.assign.abc`: the exported ABC model (hard categories and anomaly score);
- :mod:`pairhunt.assign.registry`: methods by name, as ``pairhunt run --method`` takes them.
"""
