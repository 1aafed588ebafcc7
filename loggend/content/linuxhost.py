"""sudo and linux-audit: what Linux servers log about who ran what, through syslog.

* ``sudo``: sudo's own syslog line (``user : TTY=... ; PWD=... ; USER=... ; COMMAND=...``), as
  rsyslog forwards it (RFC 3164, ``authpriv``), for commands run, refused and mistyped passwords.
  The proof goes in as two more of sudo's ``KEY=value`` pairs before ``COMMAND``, where sudo itself
  puts its optional ones (``TSID``, ``ENV``), so ``COMMAND`` stays last, as parsers expect.
* ``linux-audit``: auditd records as the audisp-syslog plugin forwards them
  (``audisp-syslog: type=SYSCALL msg=audit(1796591045.123:4711): ...``): an execve is its
  SYSCALL, EXECVE, CWD, PATH and PROCTITLE records under one serial; an SSH login its USER_AUTH,
  USER_ACCT, CRED_ACQ, LOGIN, USER_START and USER_LOGIN, and later its USER_END and CRED_DISP with
  the same session id; sudo its USER_CMD. Serial numbers rise per host; the proof is two more
  fields at the end of the record.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import partial

from loggend.content import netplan
from loggend.content.hostkit import EPOCH, Episode, Later, interleave, syslog3164
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

SUDO_PRI = 85                  # authpriv.notice: commands
SUDO_ALERT_PRI = 81            # authpriv.alert: refused commands, wrong passwords
AUDIT_PRI = 14                 # user.info, audisp-syslog's default
SUDO_PROOF = Proof("loggen_stream=", " ; ", "loggen_seq=", " ; COMMAND=")
AUDIT_PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")
UNSET = 4294967295             # auid/ses of processes no login started
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "deploy", "ansible", "backup", "oracle", "jenkins")
HOST_ROLES = ("web", "app", "db", "build", "bastion", "k8s-node", "mon")
# (command line, weight): what admins run through sudo
SUDO_COMMANDS = (
    ("/usr/bin/systemctl restart nginx", 8), ("/usr/bin/systemctl status postgresql", 6),
    ("/usr/bin/journalctl -u sshd --since today", 5), ("/usr/bin/apt-get update", 4),
    ("/usr/bin/apt-get install -y htop", 2), ("/usr/bin/tail -n 200 /var/log/syslog", 6),
    ("/usr/bin/docker ps", 5), ("/usr/bin/kubectl get pods -A", 3), ("/usr/bin/cat /etc/shadow", 1),
    ("/usr/sbin/iptables -L -n", 2), ("/usr/bin/vim /etc/hosts", 3), ("/bin/bash", 4),
    ("/usr/bin/crontab -l -u www-data", 1), ("/usr/sbin/reboot", 1), ("/usr/bin/rsync -a /srv/ /backup/", 2),
)
# execve'd programs: (exe, comm, argv)
PROGRAMS = (
    ("/usr/bin/ls", "ls", ("ls", "-la")), ("/usr/bin/cat", "cat", ("cat", "/etc/passwd")),
    ("/usr/bin/curl", "curl", ("curl", "-s", "https://api.github.com")), ("/usr/bin/ps", "ps", ("ps", "aux")),
    ("/usr/bin/grep", "grep", ("grep", "-r", "error", "/var/log/nginx")), ("/usr/bin/id", "id", ("id",)),
    ("/usr/bin/python3.11", "python3", ("python3", "/opt/app/manage.py", "migrate")),
    ("/usr/bin/systemctl", "systemctl", ("systemctl", "status", "nginx")),
    ("/usr/bin/ssh", "ssh", ("ssh", "deploy@10.1.0.20")), ("/usr/bin/tar", "tar", ("tar", "czf", "/tmp/b.tgz", "/srv")),
)
UNITS = ("nginx", "postgresql", "sshd", "cron", "docker", "systemd-tmpfiles-clean", "logrotate", "certbot")


def identity(rng: random.Random) -> Identity:
    hosts = tuple(dict.fromkeys(f"{rng.choice(HOST_ROLES)}-{rng.randint(1, 40):02d}" for _ in range(30)))
    return Identity(hosts=hosts, extra={"users": USERS, "addresses": tuple(netplan.internal_server(rng)
                                                                         for _ in hosts)})


# --- sudo ---------------------------------------------------------------------------------------------

SUDO_KINDS = (
    Kind("command", 92, "a command run as another user",
         r"^(?!.*(?:command not allowed|incorrect password attempt)).*; COMMAND="),
    Kind("incorrect-password", 5, "N incorrect password attempts, then the command it was for",
         r"incorrect password attempt"),
    Kind("not-allowed", 3, "command not allowed by the sudoers policy", r"command not allowed"),
)


def sudo_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    commands = [c for c, _ in SUDO_COMMANDS]
    weights = [w for _, w in SUDO_COMMANDS]
    for _ in range(count):
        host, user = rng.choice(ident.hosts), rng.choice(USERS[:8])
        pwd = f"/home/{user}" if rng.random() < 0.8 else rng.choice(("/srv/app", "/etc/nginx", "/var/log", "/tmp"))
        tty = f"pts/{rng.randint(0, 6)}"
        command = rng.choices(commands, weights)[0]
        kind = rng.random()
        pri, reason = SUDO_PRI, ""
        if kind > 0.97:
            pri, reason = SUDO_ALERT_PRI, "command not allowed ; "
        elif kind > 0.92:
            tries = rng.randint(1, 3)
            pri, reason = SUDO_ALERT_PRI, f"{tries} incorrect password attempt{'s' * (tries > 1)} ; "
        yield (*syslog3164(pri, host, "sudo"),
               f"{user:>8} : {reason}TTY={tty} ; PWD={pwd} ; USER=root ; loggen_stream=", STREAM, " ; loggen_seq=", SEQ,
               f" ; COMMAND={command}")


# --- linux-audit --------------------------------------------------------------------------------------

AUDIT_KINDS = (
    Kind("SYSCALL", 16, "an audited system call (execve) with its process credentials", r"type=SYSCALL "),
    Kind("EXECVE", 16, "the arguments of the execve (same serial)", r"type=EXECVE "),
    Kind("CWD", 16, "the working directory of the execve (same serial)", r"type=CWD "),
    Kind("PATH", 32, "the paths the execve touched (items 0 and 1, same serial)", r"type=PATH "),
    Kind("PROCTITLE", 16, "the process title, hex encoded (same serial)", r"type=PROCTITLE "),
    Kind("USER_AUTH", 0.5, "PAM authentication of an SSH login", r"type=USER_AUTH "),
    Kind("USER_ACCT", 0.5, "PAM account check of the login", r"type=USER_ACCT "),
    Kind("CRED_ACQ", 0.5, "credentials acquired", r"type=CRED_ACQ "),
    Kind("LOGIN", 0.5, "login uid and session id set", r"type=LOGIN "),
    Kind("USER_START", 0.5, "PAM session opened", r"type=USER_START "),
    Kind("USER_LOGIN", 0.5, "the login, with its address", r"type=USER_LOGIN "),
    Kind("USER_END", 0.5, "PAM session closed (same session id)", r"type=USER_END "),
    Kind("CRED_DISP", 0.5, "credentials disposed", r"type=CRED_DISP "),
    Kind("USER_CMD", 1, "a command run through sudo", r"type=USER_CMD "),
    Kind("SERVICE_START", 1, "systemd started a unit", r"type=SERVICE_START "),
    Kind("SERVICE_STOP", 1, "systemd stopped a unit", r"type=SERVICE_STOP "),
)


class _Audit:
    """One estate's auditd: serial numbers per host, sessions and pids."""

    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.rng = rng
        self.hosts = ident.hosts
        self.serial = {h: rng.randint(10_000, 9_000_000) for h in self.hosts}
        self.session = {h: rng.randint(1, 5000) for h in self.hosts}
        self.uid = {u: 1000 + i for i, u in enumerate(USERS)}

    def record(self, host: str, rtype: str, body: str, event: str) -> Draft:
        """One record of the event ``event`` (``millis:serial``, shared by the event's records)."""
        return (*syslog3164(AUDIT_PRI, host, "audisp-syslog"), f"type={rtype} msg=audit(", EPOCH,
                f".{event}): {body} loggen_stream=", STREAM, " loggen_seq=", SEQ)

    def next_serial(self, host: str) -> str:
        """The next event's ``millis:serial``: serials rise per host."""
        self.serial[host] += self.rng.randint(1, 30)
        return f"{self.rng.randint(0, 999):03d}:{self.serial[host]}"

    def episode(self) -> Episode:
        r = self.rng.random()
        if r < 0.86:
            return self.execve(), []
        if r < 0.9:
            return self.login()
        if r < 0.95:
            return [self.user_cmd()], []
        return [self.service()], []

    def execve(self) -> list[Draft]:
        rng, host = self.rng, self.rng.choice(self.hosts)
        user = rng.choice(USERS)
        uid = self.uid[user]
        exe, comm, argv = rng.choice(PROGRAMS)
        serial, pid = self.next_serial(host), rng.randint(1000, 4_000_000)
        ses = self.session[host]
        cwd = f"/home/{user}"
        inode = rng.randint(10_000, 9_000_000)
        args = " ".join(f'a{i}="{a}"' for i, a in enumerate(argv))
        return [
            self.record(host, "SYSCALL", f"arch=c000003e syscall=59 success=yes exit=0 a0={rng.getrandbits(44):x} "
                        f"a1={rng.getrandbits(44):x} a2={rng.getrandbits(44):x} a3=0 items=2 "
                        f"ppid={pid - rng.randint(1, 90)} "
                        f"pid={pid} auid={uid} uid={uid} gid={uid} euid={uid} suid={uid} fsuid={uid} egid={uid} "
                        f'sgid={uid} fsgid={uid} tty=pts{rng.randint(0, 5)} ses={ses} comm="{comm}" exe="{exe}" '
                        'subj=unconfined key="exec"', serial),
            self.record(host, "EXECVE", f"argc={len(argv)} {args}", serial),
            self.record(host, "CWD", f'cwd="{cwd}"', serial),
            self.record(host, "PATH", f'item=0 name="{exe}" inode={inode} dev=fd:00 mode=0100755 ouid=0 ogid=0 '
                        "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0", serial),
            self.record(host, "PATH", f'item=1 name="/lib64/ld-linux-x86-64.so.2" inode={inode + 4711} dev=fd:00 '
                        "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
                        "cap_frootid=0", serial),
            self.record(host, "PROCTITLE", f"proctitle={_untrusted(chr(0).join(argv))}", serial),
        ]

    def _pam(self, host: str, rtype: str, pid: int, auid: int, ses: int, op: str, user: str, addr: str) -> Draft:
        body = (f"pid={pid} uid=0 auid={auid} ses={ses} subj=unconfined msg='op={op} acct=\"{user}\" "
                f'exe="/usr/sbin/sshd" hostname={addr} addr={addr} terminal=ssh res=success\'')
        return self.record(host, rtype, body, self.next_serial(host))

    def login(self) -> Episode:
        rng, host = self.rng, self.rng.choice(self.hosts)
        user = rng.choice(USERS)
        uid, pid = self.uid[user], rng.randint(1000, 4_000_000)
        addr = netplan.internal_client(rng) if rng.random() < 0.9 else netplan.vpn_address(rng)
        self.session[host] += 1
        ses = self.session[host]
        opening = [self._pam(host, "USER_AUTH", pid, UNSET, UNSET, "PAM:authentication grantors=pam_unix", user, addr),
                   self._pam(host, "USER_ACCT", pid, UNSET, UNSET, "PAM:accounting grantors=pam_unix", user, addr),
                   self._pam(host, "CRED_ACQ", pid, UNSET, UNSET, "PAM:setcred grantors=pam_unix", user, addr),
                   self.record(host, "LOGIN", f"pid={pid} uid=0 subj=unconfined old-auid={UNSET} auid={uid} tty=(none) "
                               f"old-ses={UNSET} ses={ses} res=1", self.next_serial(host)),
                   self._pam(host, "USER_START", pid, uid, ses, "PAM:session_open grantors=pam_unix", user, addr),
                   self.record(host, "USER_LOGIN", f"pid={pid} uid=0 auid={uid} ses={ses} subj=unconfined "
                               f"msg='op=login id={uid} exe=\"/usr/sbin/sshd\" hostname={addr} addr={addr} "
                               f"terminal=/dev/pts/{rng.randint(0, 6)} res=success'", self.next_serial(host))]
        closing: list[Later] = [
            partial(self._pam, host, "USER_END", pid, uid, ses, "PAM:session_close grantors=pam_unix", user, addr),
            partial(self._pam, host, "CRED_DISP", pid, uid, ses, "PAM:setcred grantors=pam_unix", user, addr)]
        return opening, closing

    def user_cmd(self) -> Draft:
        rng, host = self.rng, self.rng.choice(self.hosts)
        user = rng.choice(USERS[:8])
        uid = self.uid[user]
        command = rng.choice(SUDO_COMMANDS)[0]
        return self.record(host, "USER_CMD", f"pid={rng.randint(1000, 4_000_000)} uid={uid} auid={uid} "
                           f"ses={self.session[host]} subj=unconfined msg='cwd=\"/home/{user}\" "
                           f"cmd={_untrusted(command)} exe=\"/usr/bin/sudo\" terminal=pts/{rng.randint(0, 6)} "
                           "res=success'", self.next_serial(host))

    def service(self) -> Draft:
        rng, host = self.rng, self.rng.choice(self.hosts)
        rtype = rng.choice(("SERVICE_START", "SERVICE_STOP"))
        return self.record(host, rtype, f"pid=1 uid=0 auid={UNSET} ses={UNSET} subj=unconfined "
                           f"msg='unit={rng.choice(UNITS)} comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" "
                           "hostname=? addr=? terminal=? res=success'", self.next_serial(host))


def _untrusted(value: str) -> str:
    """As auditd logs a string it cannot trust: quoted, or hex when it holds spaces, quotes or controls."""
    if any(c in value for c in ' "') or any(ord(c) < 0x21 or ord(c) > 0x7e for c in value):
        return value.encode().hex().upper()
    return f'"{value}"'


def audit_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    return interleave(rng, count, _Audit(ident, rng).episode, "linux-audit")


SOURCES = (
    Source(name="sudo", vendor="sudo project", product="sudo", version="sudo 1.9 syslog format",
           kinds=SUDO_KINDS,
           forms=(Form("native", "sudo's syslog line as rsyslog forwards it (RFC 3164, authpriv)", SUDO_PROOF),),
           fields=("SUBJECT", "TTY", "PWD", "USER", "COMMAND"),
           parser="syslog-ng sudo-parser()", reference="sudoers(5) LOG FORMAT; syslog-ng scl/sudo",
           identity=identity, generate=sudo_generate),
    Source(name="linux-audit", vendor="Linux", product="auditd", version="audit 3.x raw records",
           kinds=AUDIT_KINDS,
           forms=(Form("native", "auditd records through the audisp-syslog plugin (RFC 3164, user.info)",
                       AUDIT_PROOF),),
           fields=("type", "msg (time:serial)", "syscall", "success", "pid", "ppid", "auid", "uid", "ses", "comm",
                   "exe", "key", "cwd", "name", "proctitle", "op", "acct", "addr", "res"),
           parser="syslog-ng linux-audit-parser()",
           reference="Red Hat Security Guide, 'Understanding Audit Log Files' and audit record types; "
                     "syslog-ng scl/linux-audit",
           identity=identity, generate=audit_generate),
)
