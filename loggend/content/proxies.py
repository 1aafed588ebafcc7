"""websense and netskope: a secure web gateway and a cloud security broker, as their syslog exports send.

* ``websense``: Forcepoint (Websense) Web Security's SIEM integration: ``<PRI>Dec  6 21:04:05 UTC
  <gateway address> vendor=Websense product=Security product_version=... action=... ... url=...``,
  space-separated ``key=value`` pairs (spaces in values, as in the user agent, become ``_``), a
  zone name after the BSD time stamp. Actions and dispositions agree (permitted 1034 / blocked
  1025 with a 403 from the proxy); bytes_out is the request, bytes_in the response. The proof is
  two pairs of its own at the end.
* ``netskope``: Netskope's SIEM export: ``<134>`` and one JSON object, no syslog header (syslog-ng's
  netskope application matches exactly that and ``_insertion_epoch_timestamp``). Page events of
  cloud apps and web sites (bytes = client + server), application events (activities on a cloud
  app: upload, download, share, login), alerts (DLP, malware, policy) and admin audit logs, with
  ``timestamp`` in epoch seconds. The proof is two JSON members of its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from loggend.content import netplan
from loggend.content.hostkit import BSD_ZONE, EPOCH, JSON_PROOF, JSON_PROOF_PARTS, hex_id, pick
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

WEBSENSE_PRI = 159              # local3.debug, the SIEM integration's default
WEBSENSE_VERSION = "8.5.4"
WEBSENSE_PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")
NETSKOPE_PRI = 134              # local0.info, the only one Netskope's export writes
# (category number, share, allowed): Websense master database categories as numbers
CATEGORIES = ((153, 20, True), (76, 12, True), (141, 10, True), (90, 8, True), (2, 6, True), (14, 8, True),
              (107, 6, True), (166, 5, True), (67, 4, False), (65, 2, False), (128, 2, False), (156, 2, False),
              (19, 3, True), (101, 5, True), (150, 3, True), (68, 4, True))
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
          "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
          "Safari/605.1.15", "Microsoft-Delivery-Optimization/10.0", "Teams/24295.606.3238.6194")
USERS = ("anna.smith", "ben.mueller", "carla.garcia", "david.rossi", "eva.dubois", "felix.novak", "grace.silva",
         "hugo.jensen", "ines.tanaka", "jonas.okafor", "kira.larsen", "liam.meyer")
DEPARTMENTS = ("Finance", "Sales", "Engineering", "HR", "Marketing", "IT")


def identity(rng: random.Random) -> Identity:
    return Identity(hosts=tuple(netplan.internal_server(rng) for _ in range(rng.randint(2, 3))),
                    extra={"users": USERS})


# --- websense -----------------------------------------------------------------------------------------

WEBSENSE_KINDS = (
    Kind("permitted", 88, "a request allowed by policy (disposition 1034)"),
    Kind("blocked", 12, "a request blocked by category (disposition 1025, proxy status 403)"),
)


def websense_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    categories = [c for c in CATEGORIES]
    weights = [c[1] for c in CATEGORIES]
    for _ in range(count):
        gateway = rng.choice(ident.hosts)
        number, _, allowed = rng.choices(categories, weights)[0]
        allowed = allowed and rng.random() > 0.04
        user = rng.choice(USERS) if rng.random() < 0.85 else "-"
        user_field = f"LDAP://{netplan.COMPANY_DOMAIN}/{user}" if user != "-" else "-"
        host = netplan.domain(rng)
        https = rng.random() < 0.8
        method = "CONNECT" if https else rng.choice(("GET", "GET", "GET", "POST"))
        url = f"https://{host}" if https else f"http://{host}/{rng.choice(('', 'index.html', 'news', 'api/v2/items'))}"
        agent = rng.choice(AGENTS).replace(" ", "_")
        bytes_out = rng.randint(180, 2_400) if allowed else rng.randint(180, 900)
        bytes_in = rng.randint(300, 3_000_000) if allowed else 0
        status, proxy_status = (200, 200) if allowed else (0, 403)
        yield (f"<{WEBSENSE_PRI}>", BSD_ZONE,
               f" {gateway} vendor=Websense product=Security product_version={WEBSENSE_VERSION} "
               f"action={'permitted' if allowed else 'blocked'} severity={1 if allowed else 7} category={number} "
               f"user={user_field} src_host={netplan.internal_client(rng)} src_port={netplan.ephemeral_port(rng)} "
               f"dst_host={host} dst_ip={netplan.external(rng)} dst_port={443 if https else 80} bytes_out={bytes_out} "
               f"bytes_in={bytes_in} http_response={status} http_method={method} "
               f"http_content_type={'-' if https else 'text/html;_charset=UTF-8'} http_user_agent={agent} "
               f"http_proxy_status_code={proxy_status} reason=- disposition={1034 if allowed else 1025} "
               f"policy={'Super_Administrator**Default' if user == '-' else rng.choice(DEPARTMENTS)} role=8 "
               f"duration={rng.randint(0, 120) if allowed else 0} url={url} loggen_stream=", STREAM,
               " loggen_seq=", SEQ)


# --- netskope -----------------------------------------------------------------------------------------

NETSKOPE_KINDS = (
    Kind("page", 64, "a web or cloud app page session (bytes = client + server)",
         r'^(?=.*"type":"page")(?!.*"alert":"yes")'),
    Kind("application", 26, "an activity on a sanctioned cloud app (upload, download, share, login)",
         r'^(?=.*"type":"application")(?!.*"alert":"yes")'),
    Kind("alert", 8, "a DLP, malware or policy alert with the action taken", r'"alert":"yes"'),
    Kind("admin_audit_logs", 2, "a tenant administrator's action", r'"type":"admin_audit_logs"'),
)
# (app, category, cci, ccl, site host)
APPS = (("Microsoft Office 365 OneDrive for Business", "Cloud Storage", 92, "excellent", "onedrive.live.com"),
        ("Microsoft Office 365 Outlook.com", "Webmail", 90, "excellent", "outlook.office365.com"),
        ("Slack", "Collaboration", 81, "high", "app.slack.com"),
        ("Salesforce", "CRM", 88, "high", "login.salesforce.com"),
        ("Box", "Cloud Storage", 85, "high", "app.box.com"), ("Zoom", "Collaboration", 78, "high", "zoom.us"),
        ("GitHub", "Development Tools", 80, "high", "github.com"),
        ("WeTransfer", "Cloud Storage", 55, "low", "wetransfer.com"),
        ("Dropbox", "Cloud Storage", 77, "medium", "www.dropbox.com"))
ACTIVITIES = (("Login Successful", 20), ("View", 30), ("Download", 20), ("Upload", 15), ("Share", 5), ("Edit", 10))
ALERTS = (("DLP", "DLP-PCI", "block"), ("Malware", "Malware-Scan", "block"), ("policy", "Block-Unsanctioned-Storage",
                                                                                   "block"),
          ("policy", "Alert-Large-Upload", "alert"), ("DLP", "DLP-PII-Upload", "alert"))
AUDITS = ("Login Successful", "Edit Policy", "Apply Changes", "Logout", "Created new rule")
OSES = (("Windows 11", "Windows Device", "Chrome"), ("Windows 10", "Windows Device", "Edge"),
        ("Mac OS X 14.6", "Mac Device", "Safari"), ("iOS 18.1", "iPhone", "Native"))


def _netskope_common(rng: random.Random, kind: str, user: str) -> str:
    os_name, device, browser = rng.choice(OSES)
    return (f'"_id":"{hex_id(rng, 24)}","type":"{kind}","access_method":"Client","user":"{user}",'
            f'"ur_normalized":"{user}","organization_unit":"corp/{rng.choice(DEPARTMENTS)}",'
            f'"hostname":"WKS-{rng.randint(1000, 9999)}","os":"{os_name}","device":"{device}","browser":"{browser}",'
            f'"srcip":"{netplan.nat_address(rng)}","userip":"{netplan.internal_client(rng)}",'
            f'"dstip":"{netplan.external(rng)}","src_country":"US","count":1')


def netskope_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    for _ in range(count):
        user = f"{rng.choice(USERS)}@{netplan.COMPANY_DOMAIN}"
        app, category, cci, ccl, site = rng.choice(APPS)
        r = rng.random()
        if r < 0.64:
            client, server = rng.randint(400, 300_000), rng.randint(2_000, 6_000_000)
            if rng.random() < 0.4:
                host = netplan.domain(rng)
                app, category, cci, ccl, site = host, "Technology", 0, "unknown", host
                traffic = "Web"
            else:
                traffic = "CloudApp"
            body = (f'{_netskope_common(rng, "page", user)},"app":"{app}","appcategory":"{category}",'
                    f'"category":"{category}","cci":{cci},"ccl":"{ccl}","site":"{site}","page":"{site}/",'
                    f'"url":"{site}/","dstport":443,"traffic_type":"{traffic}",'
                    f'"client_bytes":{client},"server_bytes":{server},"numbytes":{client + server},'
                    f'"req_cnt":{rng.randint(1, 80)},"resp_cnt":{rng.randint(1, 80)},'
                    f'"conn_duration":{rng.randint(1, 900)}')
        elif r < 0.9:
            activity = pick(rng, ACTIVITIES)
            body = (f'{_netskope_common(rng, "application", user)},"app":"{app}","appcategory":"{category}",'
                    f'"category":"{category}","cci":{cci},"ccl":"{ccl}","site":"{site}","url":"{site}/",'
                    f'"traffic_type":"CloudApp","activity":"{activity}","instance_id":"corp.example.com",'
                    f'"object":"Q{rng.randint(1, 4)}-report-{rng.randint(100, 999)}.xlsx","object_type":"File",'
                    f'"file_size":{rng.randint(8_000, 40_000_000)},"alert":"no"')
        elif r < 0.98:
            alert_type, name, action = rng.choice(ALERTS)
            body = (f'{_netskope_common(rng, "nspolicy", user)},"app":"{app}","appcategory":"{category}",'
                    f'"category":"{category}","cci":{cci},"ccl":"{ccl}","site":"{site}","url":"{site}/",'
                    f'"traffic_type":"CloudApp","activity":"Upload","alert":"yes","alert_type":"{alert_type}",'
                    f'"alert_name":"{name}","action":"{action}",'
                    f'"object":"customers-{rng.randint(100, 999)}.csv","object_type":"File",'
                    f'"file_size":{rng.randint(8_000, 40_000_000)},"severity":"high"')
        else:
            admin = f"admin.{rng.choice(USERS)}@{netplan.COMPANY_DOMAIN}"
            body = (f'"_id":"{hex_id(rng, 24)}","type":"admin_audit_logs","user":"{admin}","ur_normalized":"{admin}",'
                    f'"audit_log_event":"{rng.choice(AUDITS)}","severity_level":2,"organization_unit":"",'
                    f'"supporting_data":{{"data_type":"user","data_values":["{netplan.nat_address(rng)}",'
                    f'"{admin}"]}},"ccl":"unknown","count":1,"category":null,"appcategory":null')
        yield (f'<{NETSKOPE_PRI}>{{"timestamp":', EPOCH, f",{body},\"_insertion_epoch_timestamp\":", EPOCH,
               *JSON_PROOF_PARTS)


SOURCES = (
    Source(name="websense", vendor="Forcepoint", product="Websense Web Security",
           version=f"{WEBSENSE_VERSION} SIEM integration (syslog key=value)", kinds=WEBSENSE_KINDS,
           forms=(Form("native", "the SIEM integration's syslog line: BSD stamp with zone, gateway address, "
                       "key=value pairs", WEBSENSE_PROOF),),
           fields=("action", "severity", "category", "user", "src_host", "src_port", "dst_host", "dst_ip", "dst_port",
                   "bytes_out", "bytes_in", "http_response", "http_method", "http_user_agent", "disposition",
                   "policy", "duration", "url"),
           parser="syslog-ng websense-parser()",
           reference="Forcepoint Web Security, 'SIEM integration: syslog/CEF and key-value formats'; syslog-ng "
                     "scl/websense", identity=identity, generate=websense_generate),
    Source(name="netskope", vendor="Netskope", product="Netskope Security Cloud", version="SIEM export (JSON)",
           kinds=NETSKOPE_KINDS,
           forms=(Form("native", "<134> and one JSON event, no syslog header, as Netskope's SIEM export sends",
                       JSON_PROOF),),
           fields=("type", "timestamp", "user", "srcip", "dstip", "app", "appcategory", "ccl", "site", "url",
                   "activity", "alert_type", "alert_name", "action", "client_bytes", "server_bytes", "numbytes"),
           parser="syslog-ng netskope-parser()",
           reference="Netskope REST API v1 events fields (page, application, alert, audit); syslog-ng scl/netskope",
           identity=identity, generate=netskope_generate),
)
