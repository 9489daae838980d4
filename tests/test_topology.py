"""Topology configs: shipped YAMLs, SPANet's event YAML, round trip, clear errors."""

from __future__ import annotations

import pytest
import yaml

from pairhunt.errors import PairhuntError
from pairhunt.topology import load_topology, topology_from_dict

SPANET_TTBAR = """
INPUTS:
  SEQUENTIAL:
    Source:
      mass: log_normalize
      pt: log_normalize
      eta: normalize
      phi: normalize
      btag: none
  GLOBAL:
EVENT:
  t1:
    - q1
    - q2
    - b
  t2:
    - q1
    - q2
    - b
PERMUTATIONS:
  EVENT:
    - [ t1, t2 ]
  t1:
    - [ q1, q2 ]
  t2:
    - [ q1, q2 ]
"""

SPANET_TTH = """
INPUTS:
  SEQUENTIAL:
    Momenta:
      mass: log_normalize
      pt: log_normalize
      eta: normalize
      phi: normalize
      qtag: none
  GLOBAL:
    Met:
      met: log_normalize
      met_phi: normalize
EVENT:
  ht: {b1: Momenta, b2: Momenta}
  lt: {b: Momenta, l: Momenta}
  ht2: {b: Momenta, q1: Momenta, q2: Momenta}
PERMUTATIONS:
  ht2:
    - [q1, q2]
"""


@pytest.mark.parametrize("name", ["ttbar_allhad", "pair_3body"])
def test_shipped_topologies_round_trip(name):
    topology = load_topology(name)
    assert topology_from_dict(topology.to_dict()) == topology
    assert topology.n_parents == 2 and topology.jets.collection == "Jet"
    assert topology.jets.selection.min_count == topology.n_assigned == 6


def test_ttbar_symmetries():
    topology = load_topology("ttbar_allhad")
    assert topology.parent_symmetries == (("t1", "t2"),)
    assert topology.symmetric_products("t1") == [(0, 1)]
    assert topology.jets.features[-1].branches == ("btag", "btagDeepFlavB>0.2783", "btagDeepB>0.4941")


def test_reads_spanet_event_yaml(tmp_path):
    path = tmp_path / "full_hadronic_ttbar.yaml"
    path.write_text(SPANET_TTBAR)
    topology = load_topology(path)
    assert topology.parents == ("t1", "t2")
    assert topology.products["t1"] == ("q1", "q2", "b")
    assert topology.symmetric_products("t2") == [(0, 1)]
    assert [f.name for f in topology.jets.features] == ["mass", "pt", "eta", "phi", "btag"]
    assert [f.transform for f in topology.jets.features][:2] == ["log1p", "log1p"]


def test_reads_spanet_v2_mapping_products_and_globals(tmp_path):
    path = tmp_path / "tth.yaml"
    path.write_text(SPANET_TTH)
    topology = load_topology(path)
    assert topology.products["ht2"] == ("b", "q1", "q2")
    assert [i.kind for i in topology.inputs] == ["sequential", "global"]
    assert topology.parent_symmetries == ()


def test_unknown_topology_lists_the_shipped_ones():
    with pytest.raises(PairhuntError, match="ttbar_allhad"):
        load_topology("stop_pairs")


def test_symmetry_with_unknown_names_is_an_error():
    data = load_topology("ttbar_allhad").to_dict()
    data["permutations"]["t1"] = [["q1", "q3"]]
    with pytest.raises(PairhuntError, match="q3"):
        topology_from_dict(data)


def test_malformed_config_is_an_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"name": "broken", "inputs": {}}))
    with pytest.raises(PairhuntError, match="event"):
        load_topology(path)


def _write_shipped(tmp_path, name: str, edit) -> str:
    """The shipped ttbar YAML with ``edit(text)`` applied, as a file."""
    from importlib.resources import files

    path = tmp_path / name
    path.write_text(edit((files("pairhunt") / "topologies" / "ttbar_allhad.yaml").read_text()))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("    selection:", "    selction:"), r"'selction' in inputs\.Jet; did you mean 'selection'\?"),
        (lambda t: t.replace("min_count: 6", "min_cnt: 6"), r"'min_cnt' in inputs\.Jet\.selection; did you mean 'min_count'\?"),
        (lambda t: t.replace("histograms:", "histogram:"), r"unknown key 'histogram'; did you mean 'histograms'\?"),
        (lambda t: t.replace("keep: 10", "keep: 4"), r"keep 4 is below the 6 decay products"),
        (lambda t: t.replace("t1: [q1, q2, b]", "t1: [q1, q2, q2]"), r"t1 lists the product\(s\) \['q2'\] more than once"),
        (lambda t: t + "name: again\n", r"broken\.yaml:\d+:1: duplicate key 'name'"),
        # the truth block (real NanoAOD MC labels)
        (lambda t: t.replace("{t1: 6, t2: -6}", "{t1: 6}"), r"truth\.parents names \['t1'\], the topology's parents are \['t1', 't2'\]"),
        (lambda t: t.replace("{t1: 6, t2: -6}", "{t1: 6, t2: top}"), r"truth\.parents\.t2: expected a non-zero integer PDG id"),
        (lambda t: t.replace("b:  {pdgId: 5}", "c:  {pdgId: 5}"), r"truth\.products names \['c', 'q1', 'q2'\], the topology's products are \['b', 'q1', 'q2'\]"),
        (lambda t: t.replace("b:  {pdgId: 5}", "b:  {pdgId: -5}"), r"truth\.products\.b\.pdgId: expected a positive integer \|PDG id\|"),
        (lambda t: t.replace("b:  {pdgId: 5}", "b:  5"), r"truth\.products\.b: expected \{pdgId: \.\.\., via: \[\.\.\.\]\}, got 5"),
        (lambda t: t.replace("via: [24]}   #", "vai: [24]}   #"), r"unknown key 'vai' in truth\.products\.q1; did you mean 'via'\?"),
        (lambda t: t.replace("  parents: {t1: 6, t2: -6}", "  parent: 6"), r"unknown key 'parent' in truth; did you mean 'parents'\?"),
    ],
)
def test_config_mistakes_are_one_line_errors_that_say_where(tmp_path, edit, message):
    path = _write_shipped(tmp_path, "broken.yaml", edit)
    with pytest.raises(PairhuntError, match=message) as error:
        load_topology(path)
    assert "\n" not in str(error.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("name: x\ninputs:\n  Jet: {collection: Jet\nevent: {}\n")
    with pytest.raises(PairhuntError, match=r"syntax\.yaml:4:6: expected ',' or '\}', but got ':'"):
        load_topology(path)


def test_unknown_spanet_section_is_an_error(tmp_path):
    path = tmp_path / "spanet.yaml"
    path.write_text(SPANET_TTBAR.replace("PERMUTATIONS:", "PERMUTATION:"))
    with pytest.raises(PairhuntError, match="did you mean 'PERMUTATIONS'"):
        load_topology(path)


def test_truth_blocks_of_the_shipped_topologies():
    ttbar, gluinos = load_topology("ttbar_allhad"), load_topology("pair_3body")
    assert ttbar.truth.parents == (6, -6) and ttbar.truth.products["q1"].via == (24,)
    assert ttbar.truth.products["b"].pdg_ids == (5,) and ttbar.truth.products["b"].via == ()
    assert gluinos.truth.parents == (1000021, 1000021)
    assert topology_from_dict(load_topology("pair_abc").to_dict()) == load_topology("pair_abc")
