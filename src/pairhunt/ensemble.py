"""A deep ensemble of exported SPA-NET models, composed into one ONNX graph.

Why: models of one topology trained with different seeds, options or data make partly different
mistakes; averaging their tuple probabilities before decoding assigns better than any member
(models/ttbar_allhad.md has the measurement). Composing at the ONNX level needs no training run
and no torch: any exported models whose contracts agree can be joined, the shipped ones
included. The result is an ordinary pairhunt model: the same inputs, outputs and contract (with
the members recorded in it), so the processor, top-k decoding and detection cuts take it
unchanged; it costs the sum of its members.

Interchangeable parents (ttbar's t1 and t2) are labelled arbitrarily by each model: one member's
``t1`` head may pick the top that another's ``t2`` head picks. Before averaging, every member's
pair of interchangeable parents is swapped, event by event, when that agrees better with the
first member (overlap of the tuple probabilities); its detection outputs swap with it. Without
this the members' heads mix two different tops (a geometric mean of unaligned members lost a
third of the efficiency on the tuning events).

How each output is averaged (the mean of the members' *probabilities*, the deep-ensemble rule):
``assignment_*`` log-probabilities become the log of the mean probability; ``detection_*``
probabilities and ``regression_*`` values their mean; ``classification_*`` logits the log of the
mean softmax probability (a softmax of them gives the mean probability back); the ``detection``
logits the logit of the mean sigmoid.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pairhunt.contract import DETECTION_LOGITS, METADATA_KEY, ModelContract, assignment_output, detection_output
from pairhunt.errors import PairhuntError

# what the members must share to be averaged output by output
SHARED = ("kind", "topology", "features", "max_jets", "inputs", "outputs", "global_features", "precision")
MEMBER_PREFIX = "member{}/"


def ensemble_contract(contracts: list[ModelContract], sources: list[str]) -> ModelContract:
    """The ensemble's contract: the members' shared one, each member's normalisation and
    provenance under ``members``; a clear error when the members cannot be averaged."""
    if len(contracts) < 2:
        raise PairhuntError("an ensemble needs at least two models")
    first = contracts[0]
    for contract, source in zip(contracts, sources):
        if contract.kind != "spanet":
            raise PairhuntError(
                f"{source} is not a SPA-NET model (kind {contract.kind!r}); ensembles of exported models are for SPA-NET "
                "(an ABC ensemble is trained as one: pairhunt train abc --seeds)"
            )
        if contract.fold_rule is not None:
            raise PairhuntError(f"{source} is fold {contract.fold_rule.fold} of a k-fold set: it must not score the events it trained on")
        for key in SHARED:
            if getattr(contract, key) != getattr(first, key):
                raise PairhuntError(f"{source} and {sources[0]} differ in {key}; their outputs cannot be averaged")
    interchangeable_pairs(first)  # a clear error for what cannot be aligned, before any graph is built
    members = [
        {"source": Path(source).name, "normalisation": c.normalisation, "pairhunt_version": c.pairhunt_version, "members": c.members}
        for c, source in zip(contracts, sources)
    ]
    return dataclasses.replace(first, members=members)


def interchangeable_pairs(contract: ModelContract) -> list[tuple[str, str]]:
    """The pairs of parents a model may label either way (from the topology's parent symmetries)."""
    topology = contract.model_topology
    pairs = []
    for group in topology.parent_symmetries:
        if len(group) > 2:
            raise PairhuntError(
                f"topology {topology.name!r} has {len(group)} interchangeable parents {list(group)}; "
                "ensembles align members for pairs of interchangeable parents only"
            )
        if len(group) == 2:
            pairs.append(tuple(group))
    return pairs


def _probabilities(helper, contract: ModelContract, member: str) -> tuple[list, dict[str, str]]:
    """Nodes computing ``member``'s tuple probabilities of every interchangeable parent, and their names."""
    nodes, names = [], {}
    for parent in dict.fromkeys(p for pair in interchangeable_pairs(contract) for p in pair):  # ordered: a reproducible graph
        names[parent] = f"{member}probability_{parent}"
        nodes.append(helper.make_node("Exp", [member + assignment_output(parent)], [names[parent]]))
    return nodes, names


def _align(helper, contract: ModelContract, reference: dict[str, str], member: str, node_prefix: str) -> tuple[list, dict[str, str]]:
    """Nodes that swap ``member``'s (an output-name prefix) interchangeable parents where that
    agrees better with the ``reference`` tuple probabilities, and the member's output names to average."""
    nodes, mine = _probabilities(helper, contract, member)
    renamed = {}
    parents = list(contract.model_topology.parents)
    for first, second in interchangeable_pairs(contract):
        tag = f"{node_prefix}{first}_{second}/"
        k = len(contract.model_topology.products[first])
        axes = f"{tag}tuple_axes"
        nodes.append(helper.make_node("Constant", [], [axes], value_ints=list(range(1, k + 1))))

        def overlap(a: str, b: str) -> str:
            name = f"{tag}overlap_{len(nodes)}"
            nodes.append(helper.make_node("Mul", [a, b], [name + "_product"]))
            nodes.append(helper.make_node("ReduceSum", [name + "_product", axes], [name], keepdims=0))
            return name

        r1, r2, m1, m2 = reference[first], reference[second], mine[first], mine[second]
        same, swapped = f"{tag}same", f"{tag}swapped"
        nodes.append(helper.make_node("Add", [overlap(r1, m1), overlap(r2, m2)], [same]))
        nodes.append(helper.make_node("Add", [overlap(r1, m2), overlap(r2, m1)], [swapped]))
        flip = f"{tag}flip"
        nodes.append(helper.make_node("Greater", [swapped, same], [flip]))

        def swap(name_of, rank: int) -> None:
            a, b = member + name_of(first), member + name_of(second)
            condition = flip
            if rank > 1:
                condition = f"{tag}flip_rank{rank}"
                nodes.append(helper.make_node("Constant", [], [condition + "_axes"], value_ints=list(range(1, rank))))
                nodes.append(helper.make_node("Unsqueeze", [flip, condition + "_axes"], [condition]))
            for mine, other in ((a, b), (b, a)):
                aligned = f"{tag}aligned/{mine}"
                nodes.append(helper.make_node("Where", [condition, other, mine], [aligned]))
                renamed[mine] = aligned

        swap(assignment_output, k + 1)
        if detection_output(first) in contract.outputs:
            swap(detection_output, 1)
        if DETECTION_LOGITS in contract.outputs:
            order = list(range(len(parents)))
            i, j = parents.index(first), parents.index(second)
            order[i], order[j] = j, i
            logits = renamed.get(member + DETECTION_LOGITS, member + DETECTION_LOGITS)
            columns, reversed_ = f"{tag}columns", f"{tag}detection_swapped"
            nodes.append(helper.make_node("Constant", [], [columns], value_ints=order))
            nodes.append(helper.make_node("Gather", [logits, columns], [reversed_], axis=1))
            nodes.append(helper.make_node("Constant", [], [f"{tag}flip_axes2"], value_ints=[1]))
            nodes.append(helper.make_node("Unsqueeze", [flip, f"{tag}flip_axes2"], [f"{tag}flip2"]))
            aligned = f"{tag}aligned/{member}{DETECTION_LOGITS}"
            nodes.append(helper.make_node("Where", [f"{tag}flip2", reversed_, logits], [aligned]))
            renamed[member + DETECTION_LOGITS] = aligned
    return nodes, renamed


def _combine(helper, names: list[str], output: str, node_prefix: str) -> list:
    """Nodes writing ``output``, the member outputs ``names`` averaged by the rule for its kind."""
    count = len(names)
    stacked, nodes = f"{node_prefix}stacked", []
    axes = f"{node_prefix}axes"
    nodes.append(helper.make_node("Constant", [], [axes], value_ints=[0]))
    for k, name in enumerate(names):
        nodes.append(helper.make_node("Unsqueeze", [name, axes], [f"{node_prefix}u{k}"]))
    nodes.append(helper.make_node("Concat", [f"{node_prefix}u{k}" for k in range(count)], [stacked], axis=0))

    def constant(value: float) -> str:
        name = f"{node_prefix}c{len(nodes)}"
        nodes.append(helper.make_node("Constant", [], [name], value_float=value))
        return name

    def mean(values: str, result: str) -> None:
        nodes.append(helper.make_node("ReduceMean", [values, axes], [result], keepdims=0))

    def log_mean_exp(values: str, result: str) -> None:  # max-shifted: the -1e9 of forbidden tuples stays finite
        top = f"{node_prefix}top"
        nodes.append(helper.make_node("ReduceMax", [values, axes], [top], keepdims=1))
        nodes.append(helper.make_node("Sub", [values, top], [f"{node_prefix}shifted"]))
        nodes.append(helper.make_node("Exp", [f"{node_prefix}shifted"], [f"{node_prefix}exp"]))
        nodes.append(helper.make_node("ReduceMean", [f"{node_prefix}exp", axes], [f"{node_prefix}mean"], keepdims=0))
        nodes.append(helper.make_node("Log", [f"{node_prefix}mean"], [f"{node_prefix}log"]))
        nodes.append(helper.make_node("Squeeze", [top, axes], [f"{node_prefix}top0"]))
        nodes.append(helper.make_node("Add", [f"{node_prefix}log", f"{node_prefix}top0"], [result]))

    if output.startswith("assignment_"):
        log_mean_exp(stacked, output)
    elif output.startswith("classification_"):
        nodes.append(helper.make_node("LogSoftmax", [stacked], [f"{node_prefix}logp"], axis=-1))
        log_mean_exp(f"{node_prefix}logp", output)
    elif output == DETECTION_LOGITS:
        nodes.append(helper.make_node("Sigmoid", [stacked], [f"{node_prefix}p"]))
        mean(f"{node_prefix}p", f"{node_prefix}pm")
        eps = constant(1e-7)
        nodes.append(helper.make_node("Clip", [f"{node_prefix}pm", eps, constant(1.0 - 1e-7)], [f"{node_prefix}pc"]))
        nodes.append(helper.make_node("Log", [f"{node_prefix}pc"], [f"{node_prefix}lp"]))
        nodes.append(helper.make_node("Sub", [constant(1.0), f"{node_prefix}pc"], [f"{node_prefix}q"]))
        nodes.append(helper.make_node("Log", [f"{node_prefix}q"], [f"{node_prefix}lq"]))
        nodes.append(helper.make_node("Sub", [f"{node_prefix}lp", f"{node_prefix}lq"], [output]))
    elif output.startswith(("detection_", "regression_")):
        mean(stacked, output)
    else:
        raise PairhuntError(f"no averaging rule for the output {output!r}")
    return nodes


def compose_ensemble(sources: list[str | Path], output: str | Path) -> ModelContract:
    """Write ``output``: one ONNX graph running every model of ``sources`` on the same inputs and
    averaging their outputs (module docstring); returns its contract."""
    import onnx
    from onnx import compose, helper

    from pairhunt.assign.onnx import read_contract

    sources = [str(s) for s in sources]
    repeated = sorted({s for s in sources if sum(Path(t).resolve() == Path(s).resolve() for t in sources) > 1})
    if repeated:
        raise PairhuntError(f"{', '.join(repeated)} given more than once; an ensemble averages different models")
    contract = ensemble_contract([read_contract(Path(s)) for s in sources], sources)
    protos = [onnx.load(s) for s in sources]
    for proto, source in zip(protos, sources):
        if proto.functions or {(o.domain, o.version) for o in proto.opset_import} != {(o.domain, o.version) for o in protos[0].opset_import}:
            raise PairhuntError(f"{source}: exported with other ONNX operator sets than {sources[0]} (or with functions); re-export both")
    graph_inputs, graph_outputs = list(protos[0].graph.input), list(protos[0].graph.output)
    nodes, initializers, value_info = [], [], []
    member_outputs: dict[str, list[str]] = {o.name: [] for o in graph_outputs}
    for index, proto in enumerate(protos):
        prefix = MEMBER_PREFIX.format(index)
        member = compose.add_prefix(proto, prefix).graph
        nodes += [helper.make_node("Identity", [i.name], [prefix + i.name]) for i in graph_inputs]
        nodes += list(member.node)
        initializers += list(member.initializer)
        value_info += list(member.value_info)
        for name in member_outputs:
            member_outputs[name].append(prefix + name)
    reference_nodes, reference = _probabilities(helper, contract, MEMBER_PREFIX.format(0))
    nodes += reference_nodes
    for index in range(1, len(protos)):
        aligning, renamed = _align(helper, contract, reference, MEMBER_PREFIX.format(index), f"align{index}/")
        nodes += aligning
        member_outputs = {name: [renamed.get(n, n) for n in names] for name, names in member_outputs.items()}
    for name, names in member_outputs.items():
        nodes += _combine(helper, names, name, f"ensemble/{name}/")
    graph = helper.make_graph(nodes, "pairhunt_ensemble", graph_inputs, graph_outputs, initializer=initializers, value_info=value_info)
    proto = helper.make_model(graph, opset_imports=list(protos[0].opset_import), producer_name="pairhunt")
    proto.ir_version = protos[0].ir_version
    onnx.checker.check_model(proto)
    onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    onnx.save(proto, str(partial))
    partial.replace(output)
    return contract
