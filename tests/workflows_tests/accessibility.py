"""Accessibility checks for the browser tests: axe-core injected into the page Selenium shows."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import ROOT

AXE_JS = ROOT / "tests" / "static" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(driver: WebDriver, *, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[dict[str, Any]]:
    """Run axe-core's WCAG 2 A and AA rules on the current page; return the violations of these impacts."""
    driver.execute_script(AXE_JS.read_text())
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},"
        " resultTypes: ['violations']}).then((r) => done(r.violations), (e) => done([{id: 'axe-error',"
        " impact: 'critical', help: String(e), nodes: []}]));"
    )
    return [v for v in result if v.get("impact") in impacts]


def violations_text(violations: list[dict[str, Any]]) -> str:
    """Return the violations as lines a failing assertion can show: rule, impact, help, first targets."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n.get('target') for n in v.get('nodes', [])][:5]}"
        for v in violations
    )
