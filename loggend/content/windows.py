"""windows-security: the Security log of a Windows domain (domain controllers, servers, workstations).

Events follow Microsoft's security auditing schemas (event data names, versions, task categories
and message texts of Windows Server 2016-2022): logons (4624, 4625, 4634, 4648, 4672), process
creation (4688), account management (4720, 4728, 4732, 4740) and domain authentication (4768, 4769,
4776). Conversations hold: a logon's Kerberos or NTLM authentication on a DC comes first, then its
4624 (and 4672 for an administrator) on the host, process creations under its logon id, and later
the 4634 with the same logon id; failed logons lock an account out (4740) after the threshold; a
created account (4720) is then added to a group (4728, or 4732 for a builtin local one).

Wire forms:

* ``native``: as the Snare agent forwards it over syslog: ``<PRI>Dec  6 21:04:05 HOST
  MSWinEventLog<TAB>criticality<TAB>Security<TAB>snare counter<TAB>Sun Dec 06 21:04:05 2026<TAB>
  event id<TAB>source<TAB>user<TAB>SID type<TAB>audit type<TAB>computer<TAB>category<TAB>data<TAB>
  message (flattened)<TAB>event record number`` then Snare's optional fields, where the proof goes
  (``loggen_stream=ID`` and ``loggen_seq=N``, tab separated).
* ``json``: as NXLog forwards it (im_msvistalog, ``to_json()`` then ``to_syslog_bsd()``): a syslog
  header, then one JSON object with the event's system fields, its message and its event data
  flattened, as NXLog names them; the proof as two members of its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache, partial

from loggend.content import netplan
from loggend.content.hostkit import (
    JSON_PROOF,
    JSON_PROOF_PARTS,
    NXLOG,
    RFC3164,
    SNARE,
    Episode,
    Later,
    hex_id,
    interleave,
)
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

PROVIDER = "Microsoft-Windows-Security-Auditing"
PROVIDER_GUID = "{54849625-5478-4994-A5BA-3E3B0328C30D}"
DOMAIN = "CORP"
REALM = netplan.COMPANY_DOMAIN.upper()
SYSTEM_SID = "S-1-5-18"
SYSTEM_LOGON = "0x3e7"
NULL_SID = "S-1-0-0"
LOCKOUT_THRESHOLD = 5          # failed logons before the account is locked out (domain policy)
KEYWORD_SUCCESS = -9214364837600034816      # 0x8020000000000000 as NXLog prints it
KEYWORD_FAILURE = -9218868437227405312      # 0x8010000000000000
PRI_SUCCESS = 14               # user.info
PRI_FAILURE = 12               # user.warning
SNARE_PROOF = Proof("\tloggen_stream=", "\t", "loggen_seq=", "")

# event id: (version, task, category, title)
EVENTS: dict[int, tuple[int, int, str, str]] = {
    4624: (2, 12544, "Logon", "An account was successfully logged on."),
    4625: (0, 12544, "Logon", "An account failed to log on."),
    4634: (0, 12545, "Logoff", "An account was logged off."),
    4648: (0, 12544, "Logon", "A logon was attempted using explicit credentials."),
    4672: (0, 12548, "Special Logon", "Special privileges assigned to new logon."),
    4688: (2, 13312, "Process Creation", "A new process has been created."),
    4720: (0, 13824, "User Account Management", "A user account was created."),
    4728: (0, 13826, "Security Group Management", "A member was added to a security-enabled global group."),
    4732: (0, 13826, "Security Group Management", "A member was added to a security-enabled local group."),
    4740: (0, 13824, "User Account Management", "A user account was locked out."),
    4768: (0, 14339, "Kerberos Authentication Service", "A Kerberos authentication ticket (TGT) was requested."),
    4769: (0, 14337, "Kerberos Service Ticket Operations", "A Kerberos service ticket was requested."),
    4776: (0, 14336, "Credential Validation",
           "The computer attempted to validate the credentials for an account."),
}

# The message text of each event: (section title or "", ((label, event data name or =literal), ...)).
S = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
SUBJECT = ("Subject:", (("Security ID", "SubjectUserSid"), ("Account Name", "SubjectUserName"),
                        ("Account Domain", "SubjectDomainName"), ("Logon ID", "SubjectLogonId")))
TEXTS: dict[int, S] = {
    4624: (SUBJECT, ("Logon Information:", (("Logon Type", "LogonType"),
                                            ("Restricted Admin Mode", "RestrictedAdminMode"),
                                            ("Virtual Account", "VirtualAccount"),
                                            ("Elevated Token", "ElevatedToken"))),
           ("Impersonation Level:", (("", "ImpersonationLevel"),)),
           ("New Logon:", (("Security ID", "TargetUserSid"), ("Account Name", "TargetUserName"),
                           ("Account Domain", "TargetDomainName"), ("Logon ID", "TargetLogonId"),
                           ("Linked Logon ID", "=0x0"), ("Logon GUID", "LogonGuid"))),
           ("Process Information:", (("Process ID", "ProcessId"), ("Process Name", "ProcessName"))),
           ("Network Information:", (("Workstation Name", "WorkstationName"),
                                     ("Source Network Address", "IpAddress"), ("Source Port", "IpPort"))),
           ("Detailed Authentication Information:", (("Logon Process", "LogonProcessName"),
                                                     ("Authentication Package", "AuthenticationPackageName"),
                                                     ("Transited Services", "TransmittedServices"),
                                                     ("Package Name (NTLM only)", "LmPackageName"),
                                                     ("Key Length", "KeyLength")))),
    4625: (SUBJECT, ("Logon Type:", (("", "LogonType"),)),
           ("Account For Which Logon Failed:", (("Security ID", "TargetUserSid"), ("Account Name", "TargetUserName"),
                                                ("Account Domain", "TargetDomainName"))),
           ("Failure Information:", (("Failure Reason", "=Unknown user name or bad password."),
                                     ("Status", "Status"), ("Sub Status", "SubStatus"))),
           ("Process Information:", (("Caller Process ID", "ProcessId"), ("Caller Process Name", "ProcessName"))),
           ("Network Information:", (("Workstation Name", "WorkstationName"),
                                     ("Source Network Address", "IpAddress"), ("Source Port", "IpPort"))),
           ("Detailed Authentication Information:", (("Logon Process", "LogonProcessName"),
                                                     ("Authentication Package", "AuthenticationPackageName"),
                                                     ("Transited Services", "TransmittedServices"),
                                                     ("Package Name (NTLM only)", "LmPackageName"),
                                                     ("Key Length", "KeyLength")))),
    4634: (("Subject:", (("Security ID", "TargetUserSid"), ("Account Name", "TargetUserName"),
                         ("Account Domain", "TargetDomainName"), ("Logon ID", "TargetLogonId"))),
           ("Logon Type:", (("", "LogonType"),))),
    4648: (("Subject:", SUBJECT[1] + (("Logon GUID", "LogonGuid"),)),
           ("Account Whose Credentials Were Used:", (("Account Name", "TargetUserName"),
                                                     ("Account Domain", "TargetDomainName"),
                                                     ("Logon GUID", "TargetLogonGuid"))),
           ("Target Server:", (("Target Server Name", "TargetServerName"),
                               ("Additional Information", "TargetInfo"))),
           ("Process Information:", (("Process ID", "ProcessId"), ("Process Name", "ProcessName"))),
           ("Network Information:", (("Network Address", "IpAddress"), ("Port", "IpPort")))),
    4672: (SUBJECT, ("", (("Privileges", "PrivilegeList"),))),
    4688: (SUBJECT, ("Target Subject:", (("Security ID", "TargetUserSid"), ("Account Name", "TargetUserName"),
                                         ("Account Domain", "TargetDomainName"), ("Logon ID", "TargetLogonId"))),
           ("Process Information:", (("New Process ID", "NewProcessId"), ("New Process Name", "NewProcessName"),
                                     ("Token Elevation Type", "TokenElevationType"),
                                     ("Mandatory Label", "MandatoryLabel"),
                                     ("Creator Process ID", "ProcessId"),
                                     ("Creator Process Name", "ParentProcessName"),
                                     ("Process Command Line", "CommandLine")))),
    4720: (SUBJECT, ("New Account:", (("Security ID", "TargetSid"), ("Account Name", "TargetUserName"),
                                      ("Account Domain", "TargetDomainName"))),
           ("Attributes:", (("SAM Account Name", "SamAccountName"), ("Display Name", "DisplayName"),
                            ("User Principal Name", "UserPrincipalName"),
                            ("Primary Group ID", "PrimaryGroupId"),
                            ("New UAC Value", "NewUacValue"))),
           ("Additional Information:", (("Privileges", "PrivilegeList"),))),
    4728: (SUBJECT, ("Member:", (("Security ID", "MemberSid"), ("Account Name", "MemberName"))),
           ("Group:", (("Security ID", "TargetSid"), ("Group Name", "TargetUserName"),
                       ("Group Domain", "TargetDomainName"))),
           ("Additional Information:", (("Privileges", "PrivilegeList"),))),
    4732: (SUBJECT, ("Member:", (("Security ID", "MemberSid"), ("Account Name", "MemberName"))),
           ("Group:", (("Security ID", "TargetSid"), ("Group Name", "TargetUserName"),
                       ("Group Domain", "TargetDomainName"))),
           ("Additional Information:", (("Privileges", "PrivilegeList"),))),
    4740: (SUBJECT, ("Account That Was Locked Out:", (("Security ID", "TargetSid"),
                                                      ("Account Name", "TargetUserName"))),
           ("Additional Information:", (("Caller Computer Name", "TargetDomainName"),))),
    4768: (("Account Information:", (("Account Name", "TargetUserName"), ("Supplied Realm Name", "TargetDomainName"),
                                     ("User ID", "TargetSid"))),
           ("Service Information:", (("Service Name", "ServiceName"), ("Service ID", "ServiceSid"))),
           ("Network Information:", (("Client Address", "IpAddress"), ("Client Port", "IpPort"))),
           ("Additional Information:", (("Ticket Options", "TicketOptions"), ("Result Code", "Status"),
                                        ("Ticket Encryption Type", "TicketEncryptionType"),
                                        ("Pre-Authentication Type", "PreAuthType")))),
    4769: (("Account Information:", (("Account Name", "TargetUserName"), ("Account Domain", "TargetDomainName"),
                                     ("Logon GUID", "LogonGuid"))),
           ("Service Information:", (("Service Name", "ServiceName"), ("Service ID", "ServiceSid"))),
           ("Network Information:", (("Client Address", "IpAddress"), ("Client Port", "IpPort"))),
           ("Additional Information:", (("Ticket Options", "TicketOptions"),
                                        ("Ticket Encryption Type", "TicketEncryptionType"),
                                        ("Failure Code", "Status"), ("Transited Services", "TransmittedServices")))),
    4776: (("", (("Authentication Package", "PackageName"), ("Logon Account", "TargetUserName"),
                 ("Source Workstation", "Workstation"), ("Error Code", "Status"))),),
}

KINDS = (  # shares of the events generated (a logon brings its authentication, processes and logoff)
    Kind("4624", 23.5, "an account was successfully logged on", r"\t4624\t"),
    Kind("4634", 23.5, "an account was logged off (same logon id as its 4624)", r"\t4634\t"),
    Kind("4769", 18.2, "a Kerberos service ticket was requested (DC)", r"\t4769\t"),
    Kind("4688", 16.5, "a new process has been created (under a logon's id)", r"\t4688\t"),
    Kind("4768", 7.2, "a Kerberos TGT was requested (DC)", r"\t4768\t"),
    Kind("4776", 3.9, "NTLM credential validation (DC)", r"\t4776\t"),
    Kind("4672", 3.0, "special privileges assigned to a new logon (administrators)", r"\t4672\t"),
    Kind("4625", 2.7, "an account failed to log on", r"\t4625\t"),
    Kind("4648", 1.3, "a logon was attempted using explicit credentials", r"\t4648\t"),
    Kind("4740", 0.02, "a user account was locked out (DC, after repeated 4625)", r"\t4740\t"),
    Kind("4720", 0.02, "a user account was created (DC)", r"\t4720\t"),
    Kind("4728", 0.01, "a member was added to a security-enabled global group (after its 4720)", r"\t4728\t"),
    Kind("4732", 0.01, "a member was added to a security-enabled local group (a builtin one, after its 4720)",
         r"\t4732\t"),
)
FORMS = (
    Form("native", "Snare over syslog (MSWinEventLog, tab separated), as the Snare agent forwards it",
         SNARE_PROOF),
    Form("json", "NXLog im_msvistalog to_json() in a BSD syslog message, as NXLog forwards it", JSON_PROOF),
)
FIRST_NAMES = ("anna", "ben", "carla", "david", "eva", "felix", "grace", "hugo", "ines", "jonas", "kira", "liam",
               "mia", "noah", "olga", "paul", "rosa", "sami", "tina", "viktor", "wendy", "yusuf", "zoe", "omar")
LAST_NAMES = ("smith", "mueller", "garcia", "rossi", "dubois", "kowalski", "novak", "silva", "jensen", "tanaka",
              "okafor", "larsen", "meyer", "costa", "weber", "fischer")
SERVERS = ("FS01", "FS02", "APP01", "APP02", "SQL01", "EXCH01", "WEB01", "PRINT01", "CA01", "BACKUP01")
SERVICES = ("cifs", "host", "ldap", "HTTP", "MSSQLSvc", "exchangeMDB")
PROCESSES = (  # (new process, parent, command line)
    ("C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\explorer.exe", "\"C:\\Windows\\system32\\cmd.exe\""),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "C:\\Windows\\explorer.exe",
     "powershell.exe -NoProfile"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "C:\\Windows\\explorer.exe",
     "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\""),
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "C:\\Windows\\explorer.exe",
     "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\""),
    ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\services.exe",
     "C:\\Windows\\system32\\svchost.exe -k netsvcs -p"),
    ("C:\\Windows\\System32\\conhost.exe", "C:\\Windows\\System32\\cmd.exe",
     "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1"),
    ("C:\\Windows\\System32\\net.exe", "C:\\Windows\\System32\\cmd.exe", "net use Z: \\\\FS01\\share"),
    ("C:\\Windows\\System32\\taskhostw.exe", "C:\\Windows\\System32\\svchost.exe", "taskhostw.exe"),
    ("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\cmd.exe", "whoami /groups"),
)
ADMIN_PRIVILEGES = ("SeSecurityPrivilege  SeBackupPrivilege  SeRestorePrivilege  SeTakeOwnershipPrivilege  "
                    "SeDebugPrivilege  SeSystemEnvironmentPrivilege  SeLoadDriverPrivilege  "
                    "SeImpersonatePrivilege  SeDelegateSessionUserImpersonatePrivilege")
# Builtin local groups of the domain (4732 on a DC): new accounts that need RDP or remote management.
LOCAL_GROUPS = (("Remote Desktop Users", 555), ("Remote Management Users", 580))
LOCAL_GROUP_SHARE = 0.5        # new accounts added to one of those rather than a global group
GROUPS = (("Domain Admins", 512), ("VPN Users", 1113), ("Finance", 1114), ("Helpdesk", 1115), ("Developers", 1116))
# How the message text renders the event data's insertion strings.
INSERTS = {"%%1833": "Impersonation", "%%1842": "Yes", "%%1843": "No", "%%1936": "TokenElevationTypeDefault (1)",
           "%%1937": "TokenElevationTypeFull (2)", "%%1938": "TokenElevationTypeLimited (3)"}
NUMERIC_DATA = frozenset(("LogonType", "KeyLength", "IpPort"))      # NXLog writes these as JSON numbers
# Logon types: 2 interactive, 3 network, 10 remote interactive, 7 unlock, 5 service, 11 cached (weights).
LOGON_TYPES = ((3, 60), (2, 12), (10, 6), (7, 8), (5, 6), (11, 3))
# Who logs on how (Microsoft, event 4624 "Logon Type" and "Logon Process"): people at a console, over
# RDP, unlocking or cached through winlogon's User32; network logons through NtLmSsp (NTLM) or
# Kerberos; services, started by the service control manager under their own accounts, through Advapi.
PEOPLE_LOGONS = frozenset((2, 7, 10, 11))
SERVICE_LOGON = 5
SERVICE_ACCOUNTS = ("svc-backup", "svc-sql", "svc-iis", "svc-sccm", "svc-veeam")
WINLOGON = "C:\\Windows\\System32\\winlogon.exe"
SERVICES_EXE = "C:\\Windows\\System32\\services.exe"


def identity(rng: random.Random) -> Identity:
    sid = f"S-1-5-21-{rng.randint(10**9, 4 * 10**9)}-{rng.randint(10**9, 4 * 10**9)}-{rng.randint(10**9, 4 * 10**9)}"
    users = tuple(f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}" for _ in range(60))
    dcs = tuple(f"DC0{i}" for i in range(1, rng.randint(2, 3) + 1))
    servers = tuple(rng.sample(SERVERS, 6))
    workstations = tuple(f"WKS-{rng.randint(1000, 9999)}" for _ in range(40))
    return Identity(
        hosts=tuple(f"{h}.{netplan.COMPANY_DOMAIN}" for h in dcs + servers + workstations),
        extra={"domain_sid": (sid,), "dcs": dcs, "servers": servers, "workstations": workstations,
               "users": tuple(dict.fromkeys(users)), "admins": ("Administrator", *users[:3]),
               "service_accounts": SERVICE_ACCOUNTS})


class _Estate:
    """The domain a generator logs for: its hosts, accounts and counters (record numbers, pids)."""

    def __init__(self, ident: Identity, rng: random.Random, form: str) -> None:
        self.rng = rng
        self.json = form == "json"
        self.sid = ident.extra["domain_sid"][0]
        self.dcs = ident.extra["dcs"]
        self.servers = ident.extra["servers"]
        self.workstations = ident.extra["workstations"]
        self.users = ident.extra["users"]
        self.admins = ident.extra["admins"]
        self.rid = {u: 1100 + i for i, u in enumerate(self.users)}
        self.rid["Administrator"] = 500
        self.service_accounts = ident.extra["service_accounts"]
        self.rid.update({a: 1100 + len(self.users) + i for i, a in enumerate(self.service_accounts)})
        self.record = {h: rng.randint(10**6, 10**8) for h in self.dcs + self.servers + self.workstations}
        self.snare = {h: rng.randint(1, 10**6) for h in self.record}
        self.next_rid = 1100 + len(self.rid) + rng.randint(100, 900)
        self.failures: dict[str, int] = {}
        self.lsass = {h: 4 * rng.randint(120, 400) for h in self.record}

    def lsass_pid(self, host: str) -> int:
        return self.lsass[host]

    def user_sid(self, user: str) -> str:
        return f"{self.sid}-{self.rid.get(user, 1100)}"

    def event(self, host: str, eid: int, data: dict[str, str], success: bool = True) -> Draft:
        self.record[host] += 1
        self.snare[host] += 1
        version, task, category, _ = EVENTS[eid]
        fqdn = f"{host}.{netplan.COMPANY_DOMAIN}"
        if self.json:
            return _nxlog(self, fqdn, eid, data, success, version, task, category)
        return _snare(self, fqdn, eid, data, success, category)


@cache
def _template(eid: int, json: bool) -> str:
    """The event's message text with ``{EventDataName}`` fields: flat for Snare, JSON-escaped for NXLog."""
    section_sep, line_sep, gap = ("\r\n\r\n", "\r\n\t", "\t\t") if json else ("   ", "  ", "  ")
    parts = [EVENTS[eid][3]]
    for section, lines in TEXTS[eid]:
        values = (v[1:] if v.startswith("=") else f"{{{v}}}" for _, v in lines)
        body = line_sep.join(f"{label}:{gap}{value}" if label else value
                             for (label, _), value in zip(lines, values, strict=True))
        parts.append(f"{section}{line_sep}{body}" if section else body)
    text = section_sep.join(parts)
    return _esc(text) if json else text


def _text(eid: int, data: dict[str, str], json: bool) -> str:
    """The message text (``data`` already JSON-escaped for the NXLog form)."""
    return _template(eid, json).format_map({k: INSERTS.get(v, v) for k, v in data.items()})


@cache
def _members(names: tuple[str, ...]) -> str:
    """The event data as NXLog's JSON members, ``{Name}`` where each value goes (numbers unquoted)."""
    return ",".join(f'"{k}":{{{k}}}' if k in NUMERIC_DATA else f'"{k}":"{{{k}}}"' for k in names)


def _snare(est: _Estate, fqdn: str, eid: int, data: dict[str, str], success: bool, category: str) -> Draft:
    text = _text(eid, data, False)
    user = data.get("TargetUserName", "-").split("@", 1)[0]
    domain = data.get("TargetDomainName", DOMAIN)
    if user == "-":
        user, domain = data.get("SubjectUserName", "-"), data.get("SubjectDomainName", DOMAIN)
    audit = "Success Audit" if success else "Failure Audit"
    host = fqdn.split(".", 1)[0]
    return (f"<{PRI_SUCCESS if success else PRI_FAILURE}>", RFC3164,
            f" {fqdn} MSWinEventLog\t{1 if success else 2}\tSecurity\t{est.snare[host]}\t", SNARE,
            f"\t{eid}\t{PROVIDER}\t{domain}\\{user}\tN/A\t{audit}\t{fqdn}\t{category}\t\t{text}\t{est.record[host]}"
            "\tloggen_stream=", STREAM, "\tloggen_seq=", SEQ)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\r\n", "\\r\\n")


def _json_text(value: str) -> str:
    """``value`` as JSON string content (most values need no escaping: only look)."""
    return _esc(value) if "\\" in value or '"' in value else value


def _nxlog(est: _Estate, fqdn: str, eid: int, data: dict[str, str], success: bool, version: int, task: int,
           category: str) -> Draft:
    host = fqdn.split(".", 1)[0]
    escaped = {k: _json_text(v) for k, v in data.items()}
    text = _text(eid, escaped, True)
    for name in NUMERIC_DATA.intersection(escaped):
        if not escaped[name].isdigit():
            escaped[name] = f'"{escaped[name]}"'
    members = _members(tuple(data)).format_map(escaped)
    keywords = KEYWORD_SUCCESS if success else KEYWORD_FAILURE
    etype, sev, sev_value = ("AUDIT_SUCCESS", "INFO", 2) if success else ("AUDIT_FAILURE", "ERROR", 4)
    return ("<14>" if success else "<12>", RFC3164, f" {host} {PROVIDER}[{est.lsass_pid(host)}]: "
            '{"EventTime":"', NXLOG,
            f'","Hostname":"{fqdn}","Keywords":{keywords},"EventType":"{etype}","SeverityValue":{sev_value},'
            f'"Severity":"{sev}","EventID":{eid},"SourceName":"{PROVIDER}","ProviderGuid":"{PROVIDER_GUID}",'
            f'"Version":{version},"Task":{task},"OpcodeValue":0,"RecordNumber":{est.record[host]},'
            f'"ProcessID":{est.lsass_pid(host)},"ThreadID":{est.rng.randint(600, 9000)},"Channel":"Security",'
            f'"Message":"{text}","Category":"{category}","Opcode":"Info",{members},"EventReceivedTime":"', NXLOG,
            '","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"', *JSON_PROOF_PARTS)


def _guid(rng: random.Random) -> str:
    h = hex_id(rng, 32)
    return f"{{{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}}}"


def _logon_id(rng: random.Random) -> str:
    return f"0x{rng.randint(0x100000, 0x7FFFFFFF):x}"


class _Windows:
    """One domain's security logs, episode by episode."""

    def __init__(self, ident: Identity, rng: random.Random, form: str) -> None:
        self.est = _Estate(ident, rng, form)
        self.rng = rng
        self.episodes = ((self.logon, 72), (self.system_process, 12), (self.failed_logon, 8),
                         (self.explicit, 4), (self.lockout, 0.06), (self.new_account, 0.1))

    def episode(self) -> Episode:
        make = self.rng.choices([e for e, _ in self.episodes], [w for _, w in self.episodes])[0]
        return make()

    def _subject_system(self, host: str) -> dict[str, str]:
        return {"SubjectUserSid": SYSTEM_SID, "SubjectUserName": f"{host}$", "SubjectDomainName": DOMAIN,
                "SubjectLogonId": SYSTEM_LOGON}

    def _subject_user(self, user: str, logon_id: str) -> dict[str, str]:
        return {"SubjectUserSid": self.est.user_sid(user), "SubjectUserName": user, "SubjectDomainName": DOMAIN,
                "SubjectLogonId": logon_id}

    def _client(self, host: str) -> str:
        return netplan.internal_client(self.rng) if host.startswith("WKS") else netplan.internal_server(self.rng)

    def _kerberos(self, dc: str, user: str, ip: str, target: str, guid: str, tgt: bool) -> list[Draft]:
        rng, est = self.rng, self.est
        port = str(rng.randint(49152, 65535))
        drafts = []
        if tgt:
            drafts.append(est.event(dc, 4768, {
                "TargetUserName": user, "TargetDomainName": REALM, "TargetSid": est.user_sid(user),
                "ServiceName": "krbtgt", "ServiceSid": f"{est.sid}-502", "TicketOptions": "0x40810010",
                "Status": "0x0", "TicketEncryptionType": "0x12", "PreAuthType": "2", "IpAddress": f"::ffff:{ip}",
                "IpPort": port, "CertIssuerName": "", "CertSerialNumber": "", "CertThumbprint": ""}))
        spn = target in self.est.servers and rng.random() < 0.4
        service = f"{rng.choice(SERVICES)}/{target.lower()}.{netplan.COMPANY_DOMAIN}" if spn else f"{target}$"
        drafts.append(est.event(dc, 4769, {
            "TargetUserName": f"{user}@{REALM}", "TargetDomainName": REALM, "ServiceName": service,
            "ServiceSid": f"{est.sid}-{rng.randint(1000, 1099)}", "TicketOptions": "0x40810000",
            "TicketEncryptionType": "0x12", "IpAddress": f"::ffff:{ip}", "IpPort": port, "Status": "0x0",
            "LogonGuid": guid, "TransmittedServices": "-"}))
        return drafts

    def logon(self) -> Episode:
        rng, est = self.rng, self.est
        ltype = rng.choices([t for t, _ in LOGON_TYPES], [w for _, w in LOGON_TYPES])[0]
        if ltype == SERVICE_LOGON:
            user = rng.choice(est.service_accounts)
        else:
            user = rng.choice(est.users) if rng.random() > 0.08 else rng.choice(est.admins)
        host = rng.choice(est.servers) if ltype in (3, 10, 5) else rng.choice(est.workstations)
        dc = rng.choice(est.dcs)
        ip = self._client(rng.choice(est.workstations)) if ltype in (3, 10) else "127.0.0.1"
        logon_id, guid = _logon_id(rng), _guid(rng)
        ntlm = ltype == 3 and rng.random() < 0.25
        opening: list[Draft] = []
        if ntlm:
            opening.append(est.event(dc, 4776, {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                                "TargetUserName": user, "Workstation": rng.choice(est.workstations),
                                                "Status": "0x0"}))
            guid = "{00000000-0000-0000-0000-000000000000}"
        elif ltype != 5:
            opening += self._kerberos(dc, user, ip if ip != "127.0.0.1" else self._client(host), host, guid,
                                      rng.random() < 0.4)
        network = ltype == 3
        process, package = (("NtLmSsp ", "NTLM") if ntlm else ("Kerberos", "Kerberos") if network else
                            ("Advapi  ", "Negotiate") if ltype == SERVICE_LOGON else ("User32 ", "Negotiate"))
        program = "-" if network else SERVICES_EXE if ltype == SERVICE_LOGON else WINLOGON
        subject = self._subject_system(host) if not network else {
            "SubjectUserSid": NULL_SID, "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0"}
        target = {"TargetUserSid": est.user_sid(user), "TargetUserName": user, "TargetDomainName": DOMAIN,
                  "TargetLogonId": logon_id}
        opening.append(est.event(host, 4624, {
            **subject, **target, "LogonType": str(ltype),
            "LogonProcessName": process, "AuthenticationPackageName": package,
            "WorkstationName": rng.choice(est.workstations) if ntlm else "-", "LogonGuid": guid,
            "TransmittedServices": "-", "LmPackageName": "NTLM V2" if ntlm else "-",
            "KeyLength": "128" if ntlm else "0",
            "ProcessId": "0x0" if network else f"0x{est.lsass_pid(host):x}",
            "ProcessName": program, "IpAddress": "-" if ltype == SERVICE_LOGON else ip,
            "IpPort": str(rng.randint(49152, 65535)) if network or ltype == 10 else
            "-" if ltype == SERVICE_LOGON else "0",
            "ImpersonationLevel": "%%1833", "RestrictedAdminMode": "-", "TargetOutboundUserName": "-",
            "TargetOutboundDomainName": "-", "VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0",
            "ElevatedToken": "%%1842" if user in est.admins else "%%1843"}))
        if user in est.admins:
            opening.append(est.event(host, 4672, {**self._subject_user(user, logon_id),
                                                  "PrivilegeList": ADMIN_PRIVILEGES}))
        processes = rng.randint(1, 4) if ltype in (2, 10, 11) else 0
        closing: list[Later] = [partial(self._process, host, user, logon_id) for _ in range(processes)]
        closing.append(partial(est.event, host, 4634, {**target, "LogonType": str(ltype)}))
        return opening, closing

    def _process(self, host: str, user: str, logon_id: str) -> Draft:
        rng = self.rng
        new, parent, command = rng.choice(PROCESSES)
        system = user == f"{host}$"
        subject = self._subject_system(host) if system else self._subject_user(user, logon_id)
        return self.est.event(host, 4688, {
            **subject, "NewProcessId": f"0x{4 * rng.randint(100, 16000):x}", "NewProcessName": new,
            "TokenElevationType": "%%1936" if system else "%%1938",
            "ProcessId": f"0x{4 * rng.randint(100, 16000):x}", "CommandLine": command,
            "TargetUserSid": NULL_SID, "TargetUserName": "-", "TargetDomainName": "-", "TargetLogonId": "0x0",
            "ParentProcessName": parent,
            "MandatoryLabel": "S-1-16-16384" if system else "S-1-16-8192"})

    def system_process(self) -> Episode:
        host = self.rng.choice(self.est.servers + self.est.dcs)
        return [self._process(host, f"{host}$", SYSTEM_LOGON)], []

    def _failure(self, user: str, host: str, ip: str) -> Draft:
        rng, est = self.rng, self.est
        known = user in est.rid
        return est.event(host, 4625, {
            "SubjectUserSid": NULL_SID, "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0",
            "TargetUserSid": NULL_SID, "TargetUserName": user, "TargetDomainName": DOMAIN,
            "Status": "0xc000006d", "FailureReason": "%%2313", "SubStatus": "0xc000006a" if known else "0xc0000064",
            "LogonType": "3", "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM",
            "WorkstationName": rng.choice(est.workstations), "TransmittedServices": "-", "LmPackageName": "-",
            "KeyLength": "0", "ProcessId": "0x0", "ProcessName": "-", "IpAddress": ip,
            "IpPort": str(rng.randint(49152, 65535))}, success=False)

    def failed_logon(self) -> Episode:
        rng, est = self.rng, self.est
        user = rng.choice(est.users) if rng.random() < 0.8 else rng.choice(("admin", "test", "backup", "scanner"))
        host = rng.choice(est.servers)
        return [self._failure(user, host, self._client(rng.choice(est.workstations)))], []

    def lockout(self) -> Episode:
        rng, est = self.rng, self.est
        user, host = rng.choice(est.users), rng.choice(est.servers)
        ip = self._client(rng.choice(est.workstations))
        caller = rng.choice(est.workstations)
        opening = [self._failure(user, host, ip) for _ in range(LOCKOUT_THRESHOLD)]
        dc = rng.choice(est.dcs)
        opening.append(est.event(dc, 4740, {**self._subject_system(dc), "TargetSid": est.user_sid(user),
                                            "TargetUserName": user, "TargetDomainName": caller}))
        return opening, []

    def explicit(self) -> Episode:
        rng, est = self.rng, self.est
        user, admin = rng.choice(est.users), rng.choice(est.admins)
        ws, server = rng.choice(est.workstations), rng.choice(est.servers)
        return [est.event(ws, 4648, {
            **self._subject_user(user, _logon_id(rng)), "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
            "TargetUserName": admin, "TargetDomainName": DOMAIN, "TargetLogonGuid": _guid(rng),
            "TargetServerName": f"{server}.{netplan.COMPANY_DOMAIN}",
            "TargetInfo": f"{server}.{netplan.COMPANY_DOMAIN}",
            "ProcessId": f"0x{4 * rng.randint(100, 16000):x}",
            "ProcessName": "C:\\Windows\\System32\\runas.exe", "IpAddress": "-", "IpPort": "-"})], []

    def new_account(self) -> Episode:
        rng, est = self.rng, self.est
        admin, dc = rng.choice(est.admins), rng.choice(est.dcs)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first}.{last}{rng.randint(2, 99)}"
        est.next_rid += 1
        sid = f"{est.sid}-{est.next_rid}"
        subject = self._subject_user(admin, _logon_id(rng))
        privileges = "-"
        created = est.event(dc, 4720, {
            "TargetUserName": name, "TargetDomainName": DOMAIN, "TargetSid": sid, **subject,
            "PrivilegeList": privileges, "SamAccountName": name, "DisplayName": f"{first.title()} {last.title()}",
            "UserPrincipalName": f"{name}@{netplan.COMPANY_DOMAIN}", "HomeDirectory": "-", "HomePath": "-",
            "ScriptPath": "-", "ProfilePath": "-", "UserWorkstations": "-", "PasswordLastSet": "%%1794",
            "AccountExpires": "%%1794", "PrimaryGroupId": "513", "AllowedToDelegateTo": "-",
            "OldUacValue": "0x0", "NewUacValue": "0x15", "UserAccountControl": "%%2080 %%2082 %%2084",
            "UserParameters": "%%1793", "SidHistory": "-", "LogonHours": "%%1797"})
        local = rng.random() < LOCAL_GROUP_SHARE
        group, rid = rng.choice(LOCAL_GROUPS if local else GROUPS)
        added = partial(est.event, dc, 4732 if local else 4728, {
            "MemberName": f"CN={first.title()} {last.title()},OU=Users,DC=corp,DC=example,DC=com", "MemberSid": sid,
            "TargetUserName": group, "TargetDomainName": "Builtin" if local else DOMAIN,
            "TargetSid": f"S-1-5-32-{rid}" if local else f"{est.sid}-{rid}", **subject,
            "PrivilegeList": privileges})
        return [created], [added]


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    return interleave(rng, count, _Windows(ident, rng, form).episode, "windows-security")


SOURCES = (
    Source(name="windows-security", vendor="Microsoft", product="Windows Security event log",
           version="Windows Server 2016-2022 security auditing (event schema versions as logged)",
           kinds=KINDS, forms=FORMS,
           fields=("EventID", "Computer (NXLog json: Hostname)", "TargetUserName", "TargetDomainName", "TargetLogonId",
                   "LogonType", "IpAddress", "IpPort", "SubjectUserName", "SubjectLogonId", "NewProcessName",
                   "CommandLine", "ServiceName", "Status", "TicketEncryptionType"),
           parser="none: syslog-ng's windows-eventlog-parser() expects its own agent's multi-line text; tested "
                  "against Microsoft's event data names per event id and Snare's published field layout",
           reference="Microsoft Learn, 'Audit events' (4624...4776 event schemas); Snare Agent for Windows "
                     "User Guide, Appendix A (Windows Event Output Format); NXLog im_msvistalog fields",
           identity=identity, generate=generate),
)
