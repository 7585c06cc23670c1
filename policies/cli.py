"""``pactum policies``: lint, evaluate, explain and test ODRL policies from the command line.

Mounted by ``connector/cli.py`` as ``pactum policies``; also runs alone as ``python -m policies.cli``.
User errors raise ``PolicyError`` subclasses: the entry point prints ``error: <message>`` and exits 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from policies import Report, evaluate, load_policy_file
from policies.authoring import load_request, load_state, run_suites
from policies.errors import PolicyError
from policies.lint import Severity, expand_paths, has_errors, lint_file


class ChecksFailedError(PolicyError):
    """Lint found errors or author tests failed: the command's verdict, reported as one line and exit 1."""

    code = "checks_failed"


app = typer.Typer(
    name="policies",
    help=(
        "Lint, evaluate, explain and test ODRL 2.2 policies (Turtle or JSON-LD).\n\n"
        "Examples:\n\n"
        "  pactum policies lint policies/library\n\n"
        "  pactum policies eval policy.ttl --request request.json --sotw state.json --json\n\n"
        "  pactum policies explain policy.ttl --request request.json --sotw state.json\n\n"
        "  pactum policies test policies/library"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Trees are cropped at the console width; when piped, use a wide console so explanations stay whole.
_out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

_SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


@app.callback()
def _root() -> None:
    """Lint, evaluate, explain and test ODRL 2.2 policies."""


@app.command("lint")
def lint_command(
    files: Annotated[list[Path], typer.Argument(help="Policy files (.ttl, .jsonld, .json) or directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only a JSON object with the findings.")] = False,
) -> None:
    """Check policies against the ODRL SHACL shapes and Pactum's semantic rules.

    Exits 0 when no file has an error (warnings are shown but do not fail), 1 otherwise.

    Examples:

      pactum policies lint policies/library

      pactum policies lint offer.ttl --json
    """
    paths = expand_paths(files)
    findings = [f for path in paths for f in lint_file(path)]
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    if as_json:
        typer.echo(json.dumps({"files": [str(p) for p in paths], "errors": errors,
                               "findings": [f.to_json() for f in findings]}, indent=2))
    else:
        for finding in findings:
            style = _SEVERITY_STYLE[finding.severity]
            _out.print(f"[{style}]{escape(finding.to_text())}[/{style}]")
        if not has_errors(findings):
            _out.print(f"[green]ok[/green] {len(paths)} file(s), no errors"
                       + (f", {len(findings)} warning(s)" if findings else ""))
    if has_errors(findings):
        bad_files = len({f.file for f in findings if f.severity is Severity.ERROR})
        raise ChecksFailedError(f"lint found {errors} error(s) in {bad_files} of {len(paths)} file(s)")


def _evaluate(policy: Path, request: Path, sotw: Path) -> Report:
    return evaluate(load_policy_file(policy), load_request(request), load_state(sotw))


_REQUEST_HELP = "The request: short JSON/YAML form, or Turtle/JSON-LD odrl:Request."
_SOTW_HELP = "The state of the world: short JSON/YAML form, or Turtle/JSON-LD (SolidLab style)."


@app.command("eval")
def eval_command(
    policy: Annotated[Path, typer.Argument(help="The policy file (.ttl, .jsonld, .json).")],
    request: Annotated[Path, typer.Option("--request", "-r", help=_REQUEST_HELP)],
    sotw: Annotated[Path, typer.Option("--sotw", "-s", help=_SOTW_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object (decision, rules, ...).")]
    = False,
    report: Annotated[str | None, typer.Option("--report", help="Print the compliance report; only 'ttl'.")]
    = None,
) -> None:
    """Evaluate a request against a policy and a state of the world: permit or deny.

    Examples:

      pactum policies eval policies/library/supply-chain.ttl -r request.json -s state.json

      pactum policies eval policy.ttl -r request.json -s state.json --json

      pactum policies eval policy.ttl -r request.ttl -s sotw.ttl --report ttl
    """
    if report is not None and report != "ttl":
        raise PolicyError(f"--report supports only 'ttl' (the ODRL Compliance Report Model), not {report!r}",
                          code="invalid_option")
    if as_json and report is not None:
        raise PolicyError("use either --json or --report ttl, not both", code="invalid_option")
    result = _evaluate(policy, request, sotw)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, default=str))
    elif report == "ttl":
        typer.echo(result.to_turtle())
    else:
        colour = "green" if result.decision == "permit" else "red"
        _out.print(f"[{colour}]{result.decision}[/{colour}]")
        for reason in result.reasons:
            _out.print(f"  {escape(reason)}")
        for duty in result.duties:
            params = ", ".join(f"{k}={v}" for k, v in duty.parameters.items())
            _out.print(escape(f"  duty {duty.action}: {duty.state}" + (f" ({params})" if params else "")))


def _tree(data: dict[str, Any]) -> Tree:
    colour = "green" if data.get("decision") == "permit" else "red"
    tree = Tree(f"[bold {colour}]{str(data.get('decision', '?')).upper()}[/bold {colour}]  policy "
                f"{escape(str(data.get('policy', '')))}")
    for reason in data.get("reasons") or []:
        tree.add(f"[red]reason:[/red] {escape(str(reason))}")
    for rule in data.get("rules") or []:
        active = rule.get("activation") == "active"
        style = "green" if active else "dim"
        label = escape(f"{rule.get('kind')} {rule.get('id') or ''}: {rule.get('activation')}")
        branch = tree.add(f"[{style}]{label}[/{style}]")
        for name, state in (rule.get("premises") or {}).items():
            branch.add(escape(f"{name}: {state}"))
        for constraint in rule.get("constraints") or []:
            _constraint_branch(branch, constraint)
        for duty in rule.get("duties") or []:
            params = ", ".join(f"{k}={v}" for k, v in (duty.get("parameters") or {}).items())
            branch.add(escape(f"duty {duty.get('action')}: ") + f"[bold]{escape(str(duty.get('state')))}[/bold]"
                       + escape(f" ({params})" if params else ""))
        for term in rule.get("notUnderstood") or []:
            branch.add(f"[red]not understood:[/red] {escape(str(term))}")
    return tree


def _constraint_branch(parent: Tree, constraint: dict[str, Any]) -> None:
    state = constraint.get("state", "")
    style = {"satisfied": "green", "unsatisfied": "red"}.get(state, "yellow")
    if "logical" in constraint:
        name = escape(str(constraint.get("logical")))
        node = parent.add(f"{name}: [{style}]{state}[/{style}]")
        for child in constraint.get("constraints") or []:
            _constraint_branch(node, child)
        return
    actual = constraint.get("actual")
    text = escape(f"{constraint.get('leftOperand')} {constraint.get('operator')} {constraint.get('rightOperand')!r}")
    parent.add(f"{text}: [{style}]{state}[/{style}] " + escape(f"(actual {actual!r})"))


@app.command("explain")
def explain_command(
    policy: Annotated[Path, typer.Argument(help="The policy file (.ttl, .jsonld, .json).")],
    request: Annotated[Path, typer.Option("--request", "-r", help=_REQUEST_HELP)],
    sotw: Annotated[Path, typer.Option("--sotw", "-s", help=_SOTW_HELP)],
) -> None:
    """Show why a request is permitted or denied, as a tree of rules, constraints and duties.

    Example:

      pactum policies explain policies/library/supply-chain.ttl -r request.json -s state.json
    """
    result = _evaluate(policy, request, sotw)
    _out.print(_tree(result.to_json()))


@app.command("test")
def test_command(
    paths: Annotated[list[Path], typer.Argument(help="Directories (searched for *.test.yaml) or suite files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only a JSON object with every case result.")]
    = False,
) -> None:
    """Run the policy unit tests written by authors (YAML suites: policy, cases, expected decision and duties).

    Exits 1 when any case fails, showing a diff of expected against actual.

    Examples:

      pactum policies test policies/library

      pactum policies test my-policies/offer.test.yaml --json
    """
    suites = run_suites(list(paths))
    cases = [c for s in suites for c in s.cases]
    failed = [c for c in cases if not c.passed]
    if as_json:
        typer.echo(json.dumps({"suites": len(suites), "cases": len(cases), "failed": len(failed),
                               "results": [c.to_json() for c in cases]}, indent=2))
    else:
        for suite in suites:
            mark = "[green]PASS[/green]" if suite.passed else "[red]FAIL[/red]"
            _out.print(f"{mark} " + escape(f"{suite.path} ({len(suite.cases)} case(s), policy {suite.policy})"))
            for case in suite.cases:
                if case.passed:
                    continue
                _out.print(f"  [red]✗[/red] {escape(case.name)}")
                for line in (case.error or case.diff).splitlines():
                    style = "red" if line.startswith("-") else "green" if line.startswith("+") else "default"
                    _out.print(f"      [{style}]{escape(line)}[/{style}]")
        if not failed:
            _out.print(f"[green]ok[/green] {len(cases)} case(s) in {len(suites)} suite(s) passed")
    if failed:
        raise ChecksFailedError(f"{len(failed)} of {len(cases)} policy test case(s) failed")


@app.command("profiles")
def profiles_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON.")] = False,
) -> None:
    """List the ODRL profiles Pactum understands and their left operands.

    Example: pactum policies profiles
    """
    from policies.profiles import registry

    data = [{"iri": p.iri, "prefix": p.prefix, "description": p.description,
             "leftOperands": sorted(p.left_operands)} for p in registry.profiles()]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for profile in data:
        _out.print(f"[bold]{profile['prefix']}[/bold] " + escape(f"{profile['iri']}: {profile['description']}"))
        _out.print(f"  {len(profile['leftOperands'])} left operand(s)")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: user errors become one ``error: ...`` line on stderr and exit code 1."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        code = app(args=list(sys.argv[1:] if argv is None else argv), prog_name="policies",
                   standalone_mode=False)
    except PolicyError as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: missing option, bad value, unknown command
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err.print(f"error: {message}", markup=False)
        return 1
    return int(code) if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
