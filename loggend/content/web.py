"""apache, nginx and squid: web servers' and a web proxy's access logs, forwarded through syslog.

* ``apache`` and ``nginx``: the combined log format (``%h %l %u %t "%r" %>s %b "%{Referer}i"
  "%{User-agent}i"``), Apache's through rsyslog's imfile (tag ``apache-access``), nginx's own
  ``access_log syslog:`` output (tag ``nginx``, local7.info). A site's traffic: pages pull their
  assets (the same client, a referrer naming the page), 200 and 304 dominate, bots and scanners
  add 404s, the odd 5xx. The proof is one more quoted field after the user agent, as sites append
  ``"$http_x_forwarded_for"`` or ``"$request_id"``: combined-format parsers read the first nine.
* ``squid``: the native access.log line (``time.ms elapsed client code/status bytes method URL
  user hierarchy/peer type``) as Squid's ``access_log syslog:`` sends it; HTTPS as CONNECT
  tunnels, a cache's HIT/MISS mix. The proof is two ``key=value`` fields after the native ten, as
  custom ``logformat`` lines append theirs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from loggend.content import netplan
from loggend.content.hostkit import CLF, EPOCH, Episode, Later, interleave, pick, syslog3164
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

NGINX_PRI = 190                 # local7.info, nginx's default
APACHE_PRI = 134                # local0.info, a usual imfile facility
SQUID_PRI = 166                 # local4.info, Squid's syslog default
WEB_PROOF = Proof(' "loggen_stream=', " ", "loggen_seq=", '"')
SQUID_PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")
AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", 40),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", 14),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 10),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", 14),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
     "Safari/537.36", 8),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 5),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("curl/8.5.0", 2), ("python-requests/2.32.3", 2), ("Go-http-client/1.1", 1),
    ("Mozilla/5.0 zgrab/0.x", 1),
)
PAGES = ("/", "/index.html", "/products", "/products/item/1043", "/blog/2026/11/release-notes", "/login",
         "/account", "/search?q=invoice", "/cart", "/checkout", "/about", "/contact", "/docs/getting-started")
ASSETS = (("/static/css/main.css", "text/css", 18_000), ("/static/js/app.js", "application/javascript", 240_000),
          ("/static/img/logo.svg", "image/svg+xml", 4_200), ("/favicon.ico", "image/x-icon", 15_086),
          ("/static/img/hero.webp", "image/webp", 96_000), ("/static/fonts/inter.woff2", "font/woff2", 48_000))
APIS = ("/api/v1/orders", "/api/v1/cart", "/api/v1/session", "/api/v2/search", "/api/v1/metrics")
PROBES = ("/wp-login.php", "/.env", "/admin/config.php", "/phpmyadmin/index.php", "/.git/config",
          "/cgi-bin/luci/;stok=/locale", "/actuator/health", "/vendor/phpunit/src/Util/PHP/eval-stdin.php")
SITES = ("www", "shop", "portal", "api", "intranet")


def identity(rng: random.Random) -> Identity:
    hosts = tuple(f"web{i:02d}" for i in range(1, rng.randint(4, 8) + 1))
    return Identity(hosts=hosts, extra={"sites": tuple(f"{s}.{netplan.COMPANY_DOMAIN}" for s in SITES)})


class _Site:
    """Visits to one company's web sites, as either server logs them."""

    def __init__(self, ident: Identity, rng: random.Random, pri: int, tag: str, nginx: bool) -> None:
        self.rng = rng
        self.hosts = ident.hosts
        self.sites = ident.extra["sites"]
        self.pri, self.tag, self.nginx = pri, tag, nginx
        self.agents = [a for a, _ in AGENTS]
        self.agent_weights = [w for _, w in AGENTS]

    def line(self, host: str, client: str, user: str, method: str, path: str, status: int, size: int,
             referrer: str, agent: str) -> Draft:
        size_text = str(size) if size or self.nginx else "-"
        return (*syslog3164(self.pri, host, self.tag), f"{client} - {user} [", CLF,
                f'] "{method} {path} HTTP/1.1" {status} {size_text} "{referrer}" "{agent}" "loggen_stream=', STREAM,
                " loggen_seq=", SEQ, '"')

    def episode(self) -> Episode:
        rng = self.rng
        host, site = rng.choice(self.hosts), rng.choice(self.sites)
        client = netplan.external(rng) if rng.random() < 0.75 else netplan.internal_client(rng)
        agent = rng.choices(self.agents, self.agent_weights)[0]
        if "zgrab" in agent or "python" in agent or rng.random() < 0.04:
            path = rng.choice(PROBES)
            return [self.line(host, client, "-", rng.choice(("GET", "GET", "POST")), path,
                              rng.choice((404, 404, 404, 403, 400)), rng.randint(150, 560), "-", agent)], []
        if "curl" in agent or "Go-http" in agent or site.startswith("api"):
            answer = pick(rng, (("200", 90), ("201", 4), ("401", 3), ("429", 1), ("500", 1), ("502", 1)))
            method = "POST" if answer == "201" else rng.choice(("GET", "GET", "GET", "POST", "PUT"))
            user = rng.choice(("svc-sync", "svc-report", "-")) if answer != "401" else "-"
            return [self.line(host, client, user, method, rng.choice(APIS), int(answer),
                              rng.randint(90, 12_000), "-", agent)], []
        page = rng.choice(PAGES)
        status = int(pick(rng, (("200", 86), ("304", 6), ("301", 3), ("302", 2), ("404", 2), ("500", 1))))
        size = {200: rng.randint(2_000, 90_000), 304: 0, 301: 162, 302: 154, 404: 153, 500: 537}[status]
        referrer = rng.choice(("-", "https://www.google.com/", f"https://{site}/")) if rng.random() < 0.6 else "-"
        opening = [self.line(host, client, "-", "GET", page, status, size, referrer, agent)]
        closing: list[Later] = []
        if status == 200 and not agent.startswith("Mozilla/5.0 (compatible"):
            for asset, _, length in rng.sample(ASSETS, rng.randint(1, 4)):
                cached = rng.random() < 0.35
                closing.append(self.line(host, client, "-", "GET", asset, 304 if cached else 200,
                                         0 if cached else length, f"https://{site}{page}", agent))
        return opening, closing


def _web_generate(pri: int, tag: str, nginx: bool) -> Callable[[Identity, random.Random, int, str], Iterator[Draft]]:
    def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
        return interleave(rng, count, _Site(ident, rng, pri, tag, nginx).episode, tag)
    return generate


# Shares of what the visits make (a page brings its assets): measured, held by tests/unit/test_source_kinds.py.
WEB_KINDS = (
    Kind("page", 29.7, "a page request (200 mostly, 304, redirects, the odd 404/500)",
         r'"GET /(?:|index\.html|products|login|account|cart|checkout|about|contact|blog/\S*|docs/\S*|search\S*'
         r'|products/\S*) HTTP/1\.1"'),
    Kind("asset", 58.9, "the page's assets, same client, the page as referrer (200 or 304)",
         r'"GET /(?:static/\S+|favicon\.ico) HTTP/1\.1"'),
    Kind("api", 8.5, "API calls of scripts and services (200, 201, 401, 429, 5xx)",
         r' /api/v\d/'),
    Kind("probe", 2.9, "scanners and bots probing for admin pages and leaks (404, 403)",
         r' /(?:wp-login\.php|\.env|admin/config\.php|phpmyadmin/|\.git/config|cgi-bin/|actuator/|vendor/phpunit/)'),
)
WEB_FIELDS = ("clientip", "ident", "auth", "timestamp", "verb", "request", "httpversion", "response", "bytes",
              "referrer", "agent")


# --- squid --------------------------------------------------------------------------------------------

SQUID_KINDS = (
    Kind("CONNECT", 62, "an HTTPS tunnel (TCP_TUNNEL/200, bytes both ways, seconds to minutes)", r" TCP_TUNNEL/"),
    Kind("MISS", 24, "a plain HTTP fetch from the origin (TCP_MISS)", r" TCP_MISS/"),
    Kind("HIT", 9, "served from the cache (TCP_HIT, TCP_MEM_HIT, TCP_REFRESH_UNMODIFIED)",
         r" TCP_(?:HIT|MEM_HIT|REFRESH_UNMODIFIED)/"),
    Kind("DENIED", 5, "refused by the proxy's ACLs (TCP_DENIED/403)", r" TCP_DENIED/"),
)
CONTENT_TYPES = (("text/html", 30), ("application/json", 25), ("image/jpeg", 10), ("application/javascript", 10),
                 ("text/css", 5), ("image/png", 10), ("application/octet-stream", 10))


def squid_identity(rng: random.Random) -> Identity:
    return Identity(hosts=tuple(f"proxy{i:02d}" for i in range(1, rng.randint(2, 4) + 1)),
                    extra={"pids": tuple(str(rng.randint(900, 40000)) for _ in range(4))})


def squid_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    users = ("-", "-", "alice", "bob", "carol", "dave", "erin")
    for _ in range(count):
        i = rng.randrange(len(ident.hosts))
        host, pid = ident.hosts[i], ident.extra["pids"][i]
        client = netplan.internal_client(rng)
        domain = netplan.domain(rng)
        peer = netplan.external(rng)
        r = rng.random()
        user = rng.choice(users)
        if r < 0.62:
            elapsed, size, method = rng.randint(80, 600_000), rng.randint(3_000, 4_000_000), "CONNECT"
            url = f"{domain}:443"
            code, hier, ctype = "TCP_TUNNEL/200", f"HIER_DIRECT/{peer}", "-"
        elif r < 0.86:
            elapsed, size = rng.randint(20, 4_000), rng.randint(300, 900_000)
            method = rng.choice(("GET", "GET", "POST"))
            url = f"http://{domain}/{rng.choice(('', 'index.html', 'api/v1/status', 'update/manifest.json'))}"
            code, hier, ctype = "TCP_MISS/200", f"HIER_DIRECT/{peer}", pick(rng, CONTENT_TYPES)
        elif r < 0.95:
            elapsed, size, method = rng.randint(0, 12), rng.randint(300, 200_000), "GET"
            url = f"http://{domain}/static/{rng.randint(1, 999)}.js"
            code = rng.choice(("TCP_HIT/200", "TCP_MEM_HIT/200", "TCP_REFRESH_UNMODIFIED/304"))
            hier, ctype = "HIER_NONE/-", "application/javascript"
        else:
            elapsed, size, method = rng.randint(0, 3), rng.randint(3_500, 4_200), rng.choice(("CONNECT", "GET"))
            url = f"{domain}:443" if method == "CONNECT" else f"http://{domain}/"
            code, hier, ctype = "TCP_DENIED/403", "HIER_NONE/-", "text/html"
        yield (*syslog3164(SQUID_PRI, host, f"squid[{pid}]"), EPOCH,
               f".{rng.randint(0, 999):03d} {elapsed:6d} {client} {code} {size} {method} {url} {user} {hier} {ctype}"
               " loggen_stream=", STREAM, " loggen_seq=", SEQ)


SOURCES = (
    Source(name="apache", vendor="Apache", product="Apache HTTP Server", version="2.4 combined log format",
           kinds=WEB_KINDS,
           forms=(Form("native", "combined access log through rsyslog imfile (RFC 3164, tag apache-access)",
                       WEB_PROOF),),
           fields=WEB_FIELDS, parser="syslog-ng apache-accesslog-parser()",
           reference="Apache HTTP Server 2.4, mod_log_config (combined); syslog-ng scl/apache",
           identity=identity, generate=_web_generate(APACHE_PRI, "apache-access", False)),
    Source(name="nginx", vendor="F5", product="nginx", version="1.2x combined log format",
           kinds=WEB_KINDS,
           forms=(Form("native", "combined access log through nginx's access_log syslog: (RFC 3164, tag nginx)",
                       WEB_PROOF),),
           fields=WEB_FIELDS, parser="syslog-ng apache-accesslog-parser()",
           reference="nginx ngx_http_log_module (combined, syslog:); syslog-ng scl/apache",
           identity=identity, generate=_web_generate(NGINX_PRI, "nginx", True)),
    Source(name="squid", vendor="Squid", product="Squid Web Proxy", version="Squid 5/6 native access.log",
           kinds=SQUID_KINDS,
           forms=(Form("native", "the native access.log line through access_log syslog: (RFC 3164, local4.info)",
                       SQUID_PROOF),),
           fields=("timestamp", "elapsed", "client", "result_code", "status", "bytes", "method", "url", "user",
                   "hierarchy", "peer", "content_type"),
           parser="none: no syslog-ng scl parser for Squid; tested against Squid's native logformat fields",
           reference="Squid wiki, 'SquidFaq/SquidLogs' (native access.log) and logformat directive",
           identity=squid_identity, generate=squid_generate),
)
