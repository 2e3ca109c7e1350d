"""Watch a Playwright page for script that should never run: dialogs, CSP violations, page errors,
and markup in the DOM that only an injection would put there."""

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

# Registered before any page script (Playwright injects it outside the page's CSP).
VIOLATION_LISTENER = """
document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP-VIOLATION ' + JSON.stringify({
    directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
    source: e.sourceFile, line: e.lineNumber, page: document.location.href
  }));
}, true);
"""

DOM_SCAN = (Path(__file__).parent / "dom_scan.js").read_text()

SKIP_LINK = re.compile(r"(logout|export|download|\.csv|\.json|/static/|\?.*format=)", re.I)


def squash(text: str) -> str:
    return " ".join((text or "").split())


class BrowserGuard:
    """Attach to a page; `visit(url)` loads it and returns what went wrong there (empty: nothing)."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.violations: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(VIOLATION_LISTENER)
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{self.page.url}: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def _on_console(self, message) -> None:
        if message.text.startswith("CSP-VIOLATION "):
            self.violations.append(message.text[len("CSP-VIOLATION ") :])

    def settle(self) -> None:
        """Let queued events (violation reports, autofocus, onload) fire."""
        self.page.wait_for_load_state("load")
        self.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 10))")

    def visit(self, url: str) -> list[str]:
        response = self.page.goto(url)
        self.settle()
        problems = []
        if response is None or response.status >= 500:
            problems.append(f"{url}: HTTP {response.status if response else 'no response'}")
        problems += [f"{url}: injected {item}" for item in self.page.evaluate(DOM_SCAN)]
        return problems

    def text(self) -> str:
        """All text in the page, whitespace squashed (includes <option> and hidden text)."""
        return squash(self.page.evaluate("() => document.documentElement.textContent"))

    def same_origin_links(self, base: str) -> list[str]:
        hrefs = self.page.evaluate("() => Array.from(document.querySelectorAll('a[href]'), (a) => a.href)")
        origin = urlsplit(base)[:2]
        links = []
        for href in hrefs:
            absolute = urljoin(self.page.url, href).split("#")[0]
            if urlsplit(absolute)[:2] == origin and not SKIP_LINK.search(absolute):
                links.append(absolute)
        return links

    def report(self) -> str:
        return json.dumps({"dialogs": self.dialogs, "csp": self.violations, "errors": self.errors}, indent=1)

    def assert_clean(self, problems: list[str]) -> None:
        assert not problems and not self.dialogs and not self.violations and not self.errors, (
            "\n".join(problems[:40]) + "\n" + self.report()
        )
