"""Read a JUnit XML file with junitparser (PyPI) and print it as JSON: its suites, their
counts, and every case with its outcome (passed, failure, error, skipped), message, type and
system-out. Used by tests/profiles/report_junit.rs to check what `mcp-canary --junit` wrote the
way a CI system reads it."""

import json
import sys

from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite


def outcome(case):
    for result in case.result:
        if isinstance(result, Failure):
            return "failure", result
        if isinstance(result, Error):
            return "error", result
        if isinstance(result, Skipped):
            return "skipped", result
    return "passed", None


def read(path):
    xml = JUnitXml.fromfile(path)
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    out = []
    for suite in suites:
        cases = []
        for case in suite:
            kind, result = outcome(case)
            cases.append(
                {
                    "name": case.name,
                    "classname": case.classname,
                    "outcome": kind,
                    "message": result.message if result is not None else None,
                    "type": result.type if result is not None else None,
                    "system_out": case.system_out,
                    "time": case.time,
                }
            )
        out.append(
            {
                "name": suite.name,
                "tests": suite.tests,
                "failures": suite.failures,
                "errors": suite.errors,
                "skipped": suite.skipped,
                "cases": cases,
            }
        )
    return {"suites": out}


if __name__ == "__main__":
    json.dump(read(sys.argv[1]), sys.stdout)
