"""Authoring tools: short request/state forms and the YAML policy unit-test runner behind ``pactum policies test``."""

from .inputs import InputError, load_request, load_state, request_from_dict, state_from_dict
from .runner import CaseResult, SuiteResult, find_suites, run_suite, run_suites

__all__ = ["CaseResult", "InputError", "SuiteResult", "find_suites", "load_request", "load_state",
           "request_from_dict", "run_suite", "run_suites", "state_from_dict"]
