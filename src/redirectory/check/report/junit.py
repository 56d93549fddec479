"""`--format junit`: JUnit XML for CI (GitLab, CircleCI, Jenkins): one testcase per check id,
failed by its error/warning findings (infos are listed in system-out, not failures)."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - we only write XML

from redirectory.check.checks import CHECKS
from redirectory.check.model import Severity
from redirectory.check.report import RunResult


def render(result: RunResult) -> str:
    suites = ET.Element("testsuites", name="redirectory check")
    suite = ET.SubElement(suites, "testsuite", name=f"redirectory check ({result.profile})")
    failures = 0
    for cid in sorted(CHECKS):
        chk = CHECKS[cid]
        mine = [f for f in result.findings if f.id == cid]
        case = ET.SubElement(suite, "testcase", classname="redirectory.check", name=f"{cid}: {chk.title}")
        failing = [f for f in mine if f.severity is not Severity.INFO]
        if failing:
            failures += 1
            worst = max(failing, key=lambda f: f.severity.rank)
            failure = ET.SubElement(case, "failure", type=worst.severity.value,
                                    message=f"{len(failing)} finding(s): {worst.message}")
            failure.text = "\n".join(f"[{f.severity.value}] {f.location}: {f.message} (fix: {f.fix})" for f in failing)
        infos = [f for f in mine if f.severity is Severity.INFO]
        if infos:
            ET.SubElement(case, "system-out").text = "\n".join(f"[info] {f.location}: {f.message}" for f in infos)
    suite.set("tests", str(len(CHECKS)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suites.set("tests", str(len(CHECKS)))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
