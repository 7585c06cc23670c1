"""Property tests: the fast comparison paths agree with the general operators; canonical hashes are
invariant under everything that does not change meaning (order, blank nodes, syntax)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import canonical_hash, parse_policy, policy_to_jsonld
from policies.values import apply_operator, make_fast_check
from tests.policies.helpers import PREFIXES

OPS = ["eq", "neq", "lt", "lteq", "gt", "gteq", "isAnyOf", "isNoneOf", "isPartOf", "isA"]

numbers = st.one_of(st.integers(-1000, 1000), st.decimals(-1000, 1000, places=2, allow_nan=False),
                    st.floats(-1000, 1000, allow_nan=False))
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1000))
words = st.sampled_from(["DE", "FR", "US", "research", "ads", "EU"])
values = st.one_of(numbers, times, durations, words, st.none(), st.booleans())


@settings(max_examples=400, deadline=None)
@given(op=st.sampled_from(OPS), right=st.one_of(st.decimals(-1000, 1000, places=2, allow_nan=False), times,
                                                   durations, words),
       value=values, groups=st.booleans())
def test_fast_path_agrees_with_general_operator(op: str, right: Any, value: Any, groups: bool) -> None:
    table = {"DE": frozenset({"EU"}), "FR": frozenset({"EU"})} if groups else {}
    fast = make_fast_check(op, (right,), is_list=False, rank=None, groups=table)
    if fast is None:
        return
    quick = fast(value)
    if quick is NotImplemented:
        return
    general = apply_operator(op, value, (right,), is_list=False, broader=lambda v: table.get(v, ()))
    assert quick == general, (op, right, value)


def test_float_facts_compare_by_their_decimal_text() -> None:
    for op in ("eq", "lt", "lteq", "gt", "gteq"):
        fast = make_fast_check(op, (Decimal("0.1"),), is_list=False, rank=None, groups={})
        assert fast is None or fast(0.1) is NotImplemented
    assert apply_operator("eq", 0.1, (Decimal("0.1"),), is_list=False, broader=lambda v: ()) is True


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(["isAnyOf", "isNoneOf"]), rights=st.lists(words, min_size=1, max_size=4, unique=True),
       value=words)
def test_fast_set_membership_agrees(op: str, rights: list[str], value: str) -> None:
    fast = make_fast_check(op, tuple(rights), is_list=True, rank=None, groups={})
    assert fast is not None
    assert fast(value) == apply_operator(op, value, tuple(rights), is_list=True, broader=lambda v: ())


LEFT = ["odrl:purpose", "odrl:count", "odrl:spatial", "odrl:dateTime"]
ACTIONS = ["odrl:use", "odrl:read", "odrl:print", "odrl:distribute"]


def _constraint(rnd: random.Random) -> str:
    left = rnd.choice(LEFT)
    if left == "odrl:count":
        right = f'"{rnd.randint(0, 9)}"^^xsd:integer'
        op = rnd.choice(["lt", "lteq", "eq"])
    elif left == "odrl:dateTime":
        right = f'"202{rnd.randint(0, 9)}-01-01T00:00:00Z"^^xsd:dateTime'
        op = rnd.choice(["lt", "gt"])
    else:
        right = ", ".join(f'"{w}"' for w in rnd.sample(["a", "b", "c", "d"], rnd.randint(1, 3)))
        op = rnd.choice(["isAnyOf", "isNoneOf"])
    return f"[ odrl:leftOperand {left} ; odrl:operator odrl:{op} ; odrl:rightOperand {right} ]"


def _policy(seed: int) -> tuple[str, list[list[str]]]:
    rnd = random.Random(seed)
    rules = []
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.choice(["permission", "prohibition"])
        parts = [f"odrl:action {rnd.choice(ACTIONS)}"] + [f"odrl:constraint {_constraint(rnd)}"
                                                            for _ in range(rnd.randint(0, 3))]
        rules.append([kind] + parts)
    return "ex:p a odrl:Set ; odrl:conflict odrl:prohibit .", rules


def _turtle(head: str, rules: list[list[str]], rnd: random.Random) -> str:
    body = [head]
    for i, (kind, *parts) in enumerate(rules):
        parts = parts[:]
        rnd.shuffle(parts)
        label = f"ex:r{rnd.randint(0, 10**6)}x{i}" if rnd.random() < 0.5 else "[ " + " ; ".join(parts) + " ]"
        if label.startswith("ex:"):
            body.append(f"{label} " + " ; ".join(parts) + " .")
        body.append(f"ex:p odrl:{kind} {label} .")
    return PREFIXES + "\n".join(body)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle=st.integers(0, 10_000))
def test_canonical_hash_ignores_order_labels_and_syntax(seed: int, shuffle: int) -> None:
    head, rules = _policy(seed)
    rnd = random.Random(shuffle)
    first = parse_policy(_turtle(head, rules, random.Random(seed)))
    shuffled_rules = rules[:]
    rnd.shuffle(shuffled_rules)
    second = parse_policy(_turtle(head, shuffled_rules, rnd))
    assert canonical_hash(first) == canonical_hash(second)
    via_jsonld = parse_policy(json.loads(json.dumps(policy_to_jsonld(second))))
    assert canonical_hash(via_jsonld) == canonical_hash(first)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_canonical_hash_sees_a_changed_bound(seed: int) -> None:
    base = PREFIXES + (f"ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:leftOperand"
                       f" odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand {seed} ] ] .")
    other = base.replace(f"odrl:rightOperand {seed} ", f"odrl:rightOperand {seed + 1} ")
    assert canonical_hash(parse_policy(base)) != canonical_hash(parse_policy(other))
    assert Decimal(seed) < Decimal(seed + 1)
