"""The theory map: which known signal hypothesis does an excess look like, and does it look like none?

After a bump hunt, an analyst asks what the excess is. A set-embedding network (trained with
``pairhunt train embed``, run here through onnxruntime) maps *sets* of events from one theory
to one region of a low-dimensional latent space, so theories that look alike sit close together
(von Schwartz, Kasieczka, Shih, "Learning a Representation of New Physics Models", ML4Jets 2023).
The events of a mass window, minus a sideband estimate of the background, land somewhere on that
map; a kernel density per library theory says which ones are near, and a test of the set's pooled
representation per theory says whether it is like none of them.

- :mod:`pairhunt.theory.inputs`: the per-event features, read from a run's per-event table;
- :mod:`pairhunt.theory.sets`: sets of events for training (drawn by weight) and testing (disjoint);
- :mod:`pairhunt.theory.contract`: what the exported model carries in its ONNX metadata;
- :mod:`pairhunt.theory.density`: kernel densities of the library's theories on the map;
- :mod:`pairhunt.theory.novelty`: is a set like any theory at all (the unlike flag);
- :mod:`pairhunt.theory.embedding`: the exported model through onnxruntime;
- :mod:`pairhunt.theory.characterize`: a mass window's events placed on the map (``pairhunt characterize``).
"""

from pairhunt.theory.characterize import characterize, window_set
from pairhunt.theory.contract import EmbeddingContract
from pairhunt.theory.density import TheoryDensity
from pairhunt.theory.embedding import TheoryMap
from pairhunt.theory.inputs import EMBEDDING_FEATURES, TheoryEvents, load_events
from pairhunt.theory.novelty import SetNovelty
from pairhunt.theory.sets import disjoint_sets, draw_sets

__all__ = [
    "EMBEDDING_FEATURES", "EmbeddingContract", "SetNovelty", "TheoryDensity", "TheoryEvents", "TheoryMap",
    "characterize", "disjoint_sets", "draw_sets", "load_events", "window_set",
]
