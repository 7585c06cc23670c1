"""Benchmark of the ODRL engine: compile time, evaluations per second, and compiled vs. rdflib graph walks.

Run: ``.venv/bin/python bench/policies.py [--seconds 3] [--requests 2000]``

1. compile: parse the library supply-chain policy (Turtle -> graph -> model) and compile it, fresh each
   run; median over runs.
2. compiled: ``evaluate()`` over a stream of varied requests and states (actions across the ODRL
   hierarchy, purposes, memberships, usage counts, agreement ages, deletion events); evaluations per
   second of CPU time of this one process (one core).
3. rdflib: the same decisions taken by walking the rdflib graph for every request (rules, action
   hierarchy via odrl:includedIn in the vocabulary graph, constraints, duties), with the same fact
   resolvers and operators, so only "compiled model" vs. "graph walk" differs. Every decision of the
   stream is checked to be identical before timing.

Ends with ``RESULT`` lines: policies_compile_ms, policies_evals_per_s, policies_compiled_vs_rdflib.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import rdflib

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policies import Event, Request, StateOfWorld, compile_policy, evaluate, parse_policy  # noqa: E402
from policies.facts import MISSING, EvalContext  # noqa: E402
from policies.model import Term  # noqa: E402
from policies.profiles import registry  # noqa: E402
from policies.values import apply_operator, normalise_right, term_to_python  # noqa: E402
from policies.vocab import ODRL, expand  # noqa: E402

LIBRARY_POLICY = ROOT / "policies" / "library" / "supply-chain.ttl"

# Used only while policies/library/supply-chain.ttl does not exist: the same shape of policy.
EMBEDDED_POLICY = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix cx-policy: <https://w3id.org/catenax/policy/> .
@prefix sc: <https://w3id.org/pactum/bench/supply-chain#> .
<https://w3id.org/pactum/bench/supply-chain> a odrl:Offer ; odrl:conflict odrl:prohibit ;
    odrl:assigner <urn:pactum:provider> ; odrl:target <urn:pactum:asset> ;
    odrl:permission sc:use ; odrl:prohibition sc:no-distribution, sc:no-transfer .
sc:use odrl:action odrl:use ; odrl:constraint sc:purpose, sc:members, sc:max-uses ; odrl:duty sc:delete .
sc:purpose odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "quality-analysis" .
sc:members odrl:leftOperand cx-policy:Membership ; odrl:operator odrl:eq ; odrl:rightOperand "active" .
sc:max-uses odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand "100"^^xsd:integer .
sc:delete odrl:action [ rdf:value odrl:delete ; odrl:refinement [ odrl:leftOperand odrl:elapsedTime ;
    odrl:operator odrl:lteq ; odrl:rightOperand "P90D"^^xsd:duration ] ] .
sc:no-distribution odrl:action odrl:distribute .
sc:no-transfer odrl:action odrl:transfer .
"""

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MEMBER = {"type": ["VerifiableCredential", "MembershipCredential"], "issuer": "did:web:authority",
          "validFrom": "2024-01-01T00:00:00Z", "validUntil": "2027-01-01T00:00:00Z",
          "credentialSubject": {"id": "did:web:consumer", "holderIdentifier": "BPNL000000000001"}}
EXPIRED = dict(MEMBER, validUntil="2025-01-01T00:00:00Z")


def policy_text() -> tuple[str, str]:
    """(Turtle, where it came from): the library policy once it exists, else the embedded twin."""
    if LIBRARY_POLICY.exists():
        return LIBRARY_POLICY.read_text(encoding="utf-8"), str(LIBRARY_POLICY.relative_to(ROOT))
    return EMBEDDED_POLICY, "embedded (policies/library/supply-chain.ttl not found)"


def make_stream(n: int, seed: int = 7) -> list[tuple[Request, StateOfWorld]]:
    """Varied requests: actions across the hierarchy, purposes, credentials, counts, ages, events."""
    rnd = random.Random(seed)
    actions = ["use", "read", "display", "print", "distribute", "transfer", "sell", "reproduce"]
    stream = []
    for _ in range(n):
        age = timedelta(days=rnd.randint(0, 120))
        events: tuple[Event, ...] = ()
        if rnd.random() < 0.15:
            events = (Event(action="delete", target="urn:pactum:asset", time=NOW - timedelta(days=1)),)
        stream.append((
            Request(action=rnd.choice(actions), target="urn:pactum:asset", assignee="did:web:consumer",
                    purpose=rnd.choice(["quality-analysis", "quality-analysis", "marketing", None])),
            StateOfWorld(now=NOW, credentials=rnd.choice([[MEMBER], [MEMBER], [MEMBER], [EXPIRED], []]),
                         counters={"urn:pactum:asset": rnd.randint(0, 130)}, agreement_time=NOW - age,
                         events=events),
        ))
    return stream


class GraphWalkEvaluator:
    """The same decision procedure, reading the rdflib graph on every request (the baseline)."""

    ns = rdflib.Namespace(ODRL)

    def __init__(self, graph: rdflib.Graph) -> None:
        self.g = graph
        self.vocab = rdflib.Graph().parse(
            data=resources.files("policies.resources.vocab").joinpath("ODRL22.ttl").read_bytes(), format="turtle")
        self.policy = next(iter(graph.subjects(self.ns.permission, None)))

    def _ancestors(self, action: rdflib.URIRef) -> set[rdflib.URIRef]:
        seen = {action}
        todo = [action]
        while todo:
            for parent in self.vocab.objects(todo.pop(), self.ns.includedIn):
                if isinstance(parent, rdflib.URIRef) and parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        if len(seen) == 1 and action not in (self.ns.use, self.ns.transfer):
            seen.add(self.ns.use)
        return seen

    def _constraint(self, node: Any, ctx: EvalContext) -> bool | None:
        g = self.g
        for op in ("and", "or", "xone", "andSequence"):
            operands = list(g.objects(node, self.ns[op]))
            if operands:
                results = [self._constraint(c, ctx) for c in operands]
                if op in ("and", "andSequence"):
                    return False if False in results else (None if None in results else True)
                if op == "or":
                    return True if True in results else (None if None in results else False)
                return None if None in results else results.count(True) == 1
        spec = registry.left_operand(str(g.value(node, self.ns.leftOperand)))
        if spec is None:
            return None
        value = spec.resolve(ctx)
        if value is MISSING:
            return None
        operator = str(g.value(node, self.ns.operator))[len(ODRL):]
        rights = []
        for o in g.objects(node, self.ns.rightOperand):
            term = Term(value=str(o), datatype=str(o.datatype) if isinstance(o, rdflib.Literal) and o.datatype
                        else None, is_iri=isinstance(o, rdflib.URIRef))
            rights.append(normalise_right(term_to_python(term)))
        rank = {v: i for i, v in enumerate(spec.ordering)} if spec.ordering else None
        groups = spec.groups
        return apply_operator(operator, value, tuple(rights), is_list=len(rights) > 1,
                              broader=lambda v: groups.get(v, ()), rank=rank)

    def _duty_violated(self, duty: Any, ctx: EvalContext) -> bool:
        g = self.g
        for action_node in g.objects(duty, self.ns.action):
            action = g.value(action_node, rdflib.RDF.value) or action_node
            done = any(self.ns[e.action] == action or expand(e.action) == str(action) for e in ctx.state.events)
            if done:
                return False
            for ref in g.objects(action_node, self.ns.refinement):
                if str(g.value(ref, self.ns.leftOperand)) == ODRL + "elapsedTime" and ctx.state.agreement_time:
                    limit = term_to_python(Term(value=str(g.value(ref, self.ns.rightOperand)),
                                                datatype="http://www.w3.org/2001/XMLSchema#duration"))
                    if ctx.state.agreement_time + limit < ctx.now:
                        return True
        return False

    def decide(self, request: Request, state: StateOfWorld) -> str:
        g = self.g
        ctx = EvalContext(request, state)
        ancestors = self._ancestors(rdflib.URIRef(expand(request.action)))
        policy_actions = list(g.objects(self.policy, self.ns.action))
        permitted = prohibited = undecided = False
        for kind in ("permission", "prohibition"):
            for rule in g.objects(self.policy, self.ns[kind]):
                actions = [g.value(a, rdflib.RDF.value) or a for a in g.objects(rule, self.ns.action)] or policy_actions
                if actions and not any(a in ancestors for a in actions):
                    continue
                targets = {str(t) for t in g.objects(rule, self.ns.target)} or {
                    str(t) for t in g.objects(self.policy, self.ns.target)}
                if targets and request.target is not None and request.target not in targets:
                    continue
                result: bool | None = True
                for c in g.objects(rule, self.ns.constraint):
                    r = self._constraint(c, ctx)
                    if r is False:
                        result = False
                    elif r is None and result is True:
                        result = None
                if kind == "permission":
                    if result is True and any(self._duty_violated(d, ctx) for d in g.objects(rule, self.ns.duty)):
                        result = False
                    permitted = permitted or result is True
                else:
                    prohibited = prohibited or result is True
                    undecided = undecided or result is None
        conflict = g.value(self.policy, self.ns.conflict)
        if prohibited:
            return "permit" if permitted and conflict == self.ns.perm else "deny"
        if undecided:
            return "deny"
        return "permit" if permitted else "deny"


def rate(fn: Any, stream: list[tuple[Request, StateOfWorld]], seconds: float) -> float:
    """Evaluations per second of process CPU time (one core)."""
    done = 0
    start = time.process_time()
    while True:
        for req, st in stream:
            fn(req, st)
        done += len(stream)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per timed loop")
    parser.add_argument("--requests", type=int, default=2000, help="size of the request stream")
    parser.add_argument("--compile-runs", type=int, default=15)
    args = parser.parse_args(argv)

    text, source = policy_text()
    compile_ms = []
    for _ in range(args.compile_runs):
        start = time.perf_counter()
        compile_policy(parse_policy(text, format="turtle"))
        compile_ms.append((time.perf_counter() - start) * 1000)
    policy = parse_policy(text, format="turtle")
    compile_policy(policy)

    stream = make_stream(args.requests)
    walker = GraphWalkEvaluator(rdflib.Graph().parse(data=text, format="turtle"))
    decisions = [evaluate(policy, r, s).decision for r, s in stream]
    baseline = [walker.decide(r, s) for r, s in stream]
    if decisions != baseline:
        diff = next(i for i, (a, b) in enumerate(zip(decisions, baseline, strict=True)) if a != b)
        print(f"decisions differ at request {diff}: compiled={decisions[diff]} rdflib={baseline[diff]}")
        return 1
    permits = decisions.count("permit")

    compiled_rate = rate(lambda r, s: evaluate(policy, r, s).decision, stream, args.seconds)
    rdflib_rate = rate(walker.decide, stream[: max(200, len(stream) // 10)], max(1.0, args.seconds / 2))

    print(f"policy: {source}")
    print(f"stream: {len(stream)} requests, {permits} permitted, {len(stream) - permits} denied "
          "(identical decisions on both paths)")
    print(f"{'path':<26}{'evaluations/s':>16}")
    print(f"{'compiled model':<26}{compiled_rate:>16,.0f}")
    print(f"{'rdflib graph walk':<26}{rdflib_rate:>16,.0f}")
    print(f"compile (parse + compile), median of {len(compile_ms)}: {statistics.median(compile_ms):.2f} ms")
    print(f"RESULT policies_compile_ms={statistics.median(compile_ms):.2f} ms")
    print(f"RESULT policies_evals_per_s={compiled_rate:.0f} 1/s")
    print(f"RESULT policies_compiled_vs_rdflib={compiled_rate / rdflib_rate:.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
