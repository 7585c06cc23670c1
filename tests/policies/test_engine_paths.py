"""The compiled evaluator against an independent graph-walking evaluator, and under threads."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import rdflib

from policies import evaluate, parse_policy

BENCH = Path(__file__).resolve().parents[2] / "bench" / "policies.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pactum_bench_policies", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compiled_and_graph_walk_decide_alike() -> None:
    bench = _bench()
    text, _source = bench.policy_text()
    policy = parse_policy(text, format="turtle")
    walker = bench.GraphWalkEvaluator(rdflib.Graph().parse(data=text, format="turtle"))
    stream = bench.make_stream(400, seed=11)
    compiled = [evaluate(policy, r, s).decision for r, s in stream]
    walked = [walker.decide(r, s) for r, s in stream]
    assert compiled == walked
    assert 0 < compiled.count("permit") < len(compiled)  # the stream exercises both outcomes


def test_embedded_bench_policy_decides_like_the_library_one() -> None:
    bench = _bench()
    embedded = parse_policy(bench.EMBEDDED_POLICY, format="turtle")
    stream = bench.make_stream(200, seed=5)
    text, _ = bench.policy_text()
    library = parse_policy(text, format="turtle")
    assert [evaluate(embedded, r, s).decision for r, s in stream] == [
        evaluate(library, r, s).decision for r, s in stream]


def test_concurrent_evaluation_is_consistent() -> None:
    bench = _bench()
    text, _ = bench.policy_text()
    policy = parse_policy(text, format="turtle")  # compiled lazily by whichever thread comes first
    stream = bench.make_stream(300, seed=3)
    expected = [evaluate(parse_policy(text, format="turtle"), r, s).decision for r, s in stream]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _i: [evaluate(policy, r, s).decision for r, s in stream], range(4)))
    assert all(run == expected for run in runs)
