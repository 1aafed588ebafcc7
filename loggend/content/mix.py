"""The mix: which sources a run sends, in which shares, and its rendering into the run's corpus.

Three ways to say it, all ending in ``(name, share)`` pairs (``MessageSpec.sources``):

* ``sources: {cisco-asa: 50, paloalto: 30, windows-security: 20}`` or ``--sources
  cisco-asa=50,paloalto=30,windows-security=20``: a weight is a share of the events;
* ``--sources preset:enterprise``: a named mix (``PRESETS``, documented in docs/sources/README.md);
* ``estate: {cisco-asa: 4, windows-dc: 6, linux: 300}``: the user's devices, turned into shares by
  the events per second a device of each kind sends (``DEVICES``), and into a rate when none is given.

``corpus`` renders the mix before the workers fork: the corpus is cut in blocks of the pool
size (each worker's window is one block), each block holds every source's exact share, drawn from
its generator in logging order and interleaved at random, and every message keeps its
conversation (``model.Conversation``) so the pool sends a conversation in order.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import islice

from loggend.content import registry
from loggend.content.drafts import Renderer, conversation
from loggend.content.model import Conversation, Draft, Source
from loggend.engine.formats import FORMATS, Rendered, make_format
from loggend.engine.render import CORPUS_SIZE, NO_THREAD, PHASES, STREAM_ROOM, Corpus, CorpusBuild, fit, render_events
from loggend.engine.spec import MessageSpec
from loggend.engine.tokens import UserTemplate
from loggend.errors import ConfigError

PRESET_PREFIX = "preset:"
MAX_LENGTH = 8192               # a mix's default max_length: rsyslog's default maxMessageSize (8 KiB), so vendor
                                # messages go whole (an SRX close is ~1,100 bytes, a CloudTrail record more)
MAX_WEIGHT = 1e9
MAX_DEVICES = 10_000_000
STRATUM = 200                   # places of a block in which every source holds its share (to one message)
MIN_SHARE = 1e-4                # a --sources weight below this share of the total (0.01 %) is refused: it sends nothing
DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")      # a weight: ASCII decimal digits
WHOLE = re.compile(r"[0-9]+")                              # a count of devices
NONE = "none"                   # sources: none, estate: none (the defaults): no mix, the catalogue
NATIVE = "native"
# A mid-size company's SIEM feed: perimeter firewalls and the web proxy dominate, then the domain
# controllers, IDS, cloud and the servers (docs/sources/README.md says where the shares come from).
PRESETS: dict[str, tuple[tuple[str, float], ...]] = {
    "enterprise": (("paloalto", 20), ("cisco-asa", 12), ("fortigate", 8), ("windows-security", 18),
                   ("squid", 6), ("netskope", 4), ("suricata", 6), ("zeek", 4), ("aws-cloudtrail", 3),
                   ("aws-vpc-flow", 5), ("linux", 8), ("linux-audit", 3), ("sudo", 1), ("nginx", 2)),
}


@dataclass(frozen=True)
class Device:
    """One kind of device of an estate: the source it logs as and its events/s (and whose figure)."""

    source: str
    eps: float
    basis: str


GUIDE = "mobs-bd.org, 'SIEM sizing calculation for a 7,000-seat enterprise'"
ASSUMED = "loggen's assumption (no public figure found): replace it with your own"
DEVICES: dict[str, Device] = {
    "windows-dc": Device("windows-security", 400, f"{GUIDE}: a domain controller 300-500 EPS"),
    "windows-workstation": Device("windows-security", 2, f"{GUIDE}: an endpoint 2 EPS"),
    "windows-server": Device("windows-security", 10, ASSUMED),
    "cisco-ios": Device("cisco-ios", 300, f"{GUIDE}: a core router 300 EPS"),
    "cisco-asa": Device("cisco-asa", 500, ASSUMED),
    "paloalto": Device("paloalto", 500, ASSUMED),
    "fortigate": Device("fortigate", 500, ASSUMED),
    "checkpoint": Device("checkpoint", 500, ASSUMED),
    "juniper-srx": Device("juniper-srx", 500, ASSUMED),
    "websense": Device("websense", 200, f"{GUIDE}: a load balancer 200 EPS (a proxy sees the same requests)"),
    "netskope": Device("netskope", 200, f"{GUIDE}: a load balancer 200 EPS (a proxy sees the same requests)"),
    "squid": Device("squid", 200, f"{GUIDE}: a load balancer 200 EPS (a proxy sees the same requests)"),
    "apache": Device("apache", 20, ASSUMED),
    "nginx": Device("nginx", 20, ASSUMED),
    "suricata": Device("suricata", 300, ASSUMED),
    "zeek": Device("zeek", 300, ASSUMED),
    "aws-cloudtrail": Device("aws-cloudtrail", 50, ASSUMED),
    "aws-vpc-flow": Device("aws-vpc-flow", 500, ASSUMED),
    "linux": Device("linux", 2, f"{GUIDE}: an endpoint 2 EPS"),
    "iptables": Device("iptables", 2, f"{GUIDE}: an endpoint 2 EPS"),
    "sudo": Device("sudo", 0.1, ASSUMED),
    "linux-audit": Device("linux-audit", 5, ASSUMED),
}


def identity_seed(seed: int, name: str) -> str:
    """What seeds the identity of source ``name`` in a run: its mix and its templates speak for the same devices."""
    return f"identity:{seed}:{name}"


def _known(label: str, value: object, name: str) -> Source:
    source = registry.get(name)
    if source is None:
        raise ConfigError(label, value, "source names: " + ", ".join(registry.names()))
    return source


def _number(label: str, part: str, text: str, pattern: re.Pattern[str], limit: float, allowed: str) -> float:
    """``text`` as a number if ``pattern`` (ASCII digits only: not ``1_000``, ``1e3`` or other scripts'
    digits, which ``float`` takes) matches it and it is above 0 and up to ``limit``."""
    n = float(text) if pattern.fullmatch(text) else -1.0
    if not 0 < n <= limit:
        raise ConfigError(label, part, allowed)
    return n


def _weight(label: str, part: str, text: str) -> float:
    return _number(label, part, text, DECIMAL, MAX_WEIGHT,
                   f"NAME=WEIGHT with a weight above 0 and up to {MAX_WEIGHT:g}, in decimal digits (50, 2.5)")


def _count(label: str, part: str, text: str) -> float:
    return _number(label, part, text, WHOLE, MAX_DEVICES,
                   f"NAME=COUNT with a whole number of devices from 1 to {MAX_DEVICES:,}")


def _empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, Mapping)) and not value)


def given(value: object) -> bool:
    """Whether a ``sources``/``estate`` value says something (``none``, the default, does not)."""
    return value != NONE


def _once(label: str, value: object, names: list[str]) -> None:
    """Each name given once: a name given twice is a mistake (which of its weights was meant?)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(label, value, f"each name once ({name} is given twice)")
        seen.add(name)


def shares(pairs: list[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """One weight per source (an estate's device kinds of one source add up). Weights stay in the
    user's units (a --sources weight, an estate's events/s), in which the templates' weights count too."""
    total: dict[str, float] = {}
    for name, w in pairs:
        total[name] = total.get(name, 0.0) + w
    return tuple(total.items())


def _noticeable(label: str, items: list[tuple[str, str]], pairs: list[tuple[str, float]], estate: bool = False) -> None:
    """A weight (an estate: a device count's events) so small against the others that its share rounds to
    nothing is a mistake."""
    whole = sum(w for _, w in pairs)
    for (name, weight), (_, w) in zip(items, pairs):
        if w / whole < MIN_SHARE:
            what = (f"devices whose events are at least {MIN_SHARE:.2%} of the estate's {whole:,.0f} ev/s" if estate
                    else f"a weight of at least {MIN_SHARE:.2%} of the total {whole:g}")
            raise ConfigError(label, f"{name}={weight}", f"{what} (this one is {100 * w / whole:.2g} %: the source "
                              "would send nothing)")


def parse_sources(label: str, value: object) -> tuple[tuple[str, float], ...]:
    """``cisco-asa=50,paloalto=30``, ``preset:enterprise``, a mapping or a list of names; () for ``none``."""
    if value == NONE:
        return ()
    if _empty(value):
        raise ConfigError(label, value, "NAME[=WEIGHT],..., a mapping of names to weights or preset:NAME "
                          "(none: the catalogue; an empty mix is refused)")
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(v), "1") for v in value]
    else:
        text = str(value).strip()
        if PRESET_PREFIX in text and "," in text.strip(", "):
            raise ConfigError(label, value, "a preset alone (preset:NAME), or the sources with their weights "
                              "(NAME=WEIGHT,...): a preset is a whole mix")
        if text.startswith(PRESET_PREFIX):
            preset = text.strip(", ")[len(PRESET_PREFIX):]
            if preset not in PRESETS:
                raise ConfigError(label, value, "presets: " + ", ".join(PRESET_PREFIX + p for p in PRESETS))
            return preset_shares(label, value, preset)
        items = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, weight = part.partition("=")
            items.append((name.strip(), weight.strip() or "1"))
    if not isinstance(value, (Mapping, list)) and 0 < sum("=" in p for p in str(value).split(",")) < len(items):
        bare = next(n for p, (n, _) in zip(filter(None, (p.strip() for p in str(value).split(","))), items)
                    if "=" not in p)
        raise ConfigError(label, value, f"a weight for every source once one has one ({bare} has none: "
                          f"{bare}=WEIGHT)")
    pairs = []
    for name, weight in items:
        if not name:
            raise ConfigError(label, f"={weight}", "a source name before each = (NAME=WEIGHT)")
        _known(label, name, name)
        pairs.append((name, _weight(label, f"{name}={weight}", weight)))
    if not pairs:
        raise ConfigError(label, value, "NAME[=WEIGHT],... or preset:NAME")
    _once(label, value, [n for n, _ in items])
    _noticeable(label, items, pairs)
    return shares(pairs)


def preset_shares(label: str, value: object, preset: str) -> tuple[tuple[str, float], ...]:
    """A preset's shares over the sources this build has (all of them once every family is in)."""
    have = [(n, w) for n, w in PRESETS[preset] if registry.get(n) is not None]
    if not have:
        raise ConfigError(label, value, "a preset whose sources this build has")
    return shares(have)


def parse_estate(label: str, value: object) -> tuple[tuple[tuple[str, float], ...], float]:
    """``{cisco-asa: 4, windows-dc: 6, linux: 300}`` -> (shares, events/s of the whole estate); none: ()."""
    if value == NONE:
        return (), 0.0
    if _empty(value):
        raise ConfigError(label, value, "a mapping of device kinds to counts, e.g. {cisco-asa: 4, windows-dc: 6} "
                          "(none: no estate; an empty one is refused)")
    if isinstance(value, str):                     # a flag or LOGGEN_ESTATE: cisco-asa=4,windows-dc=6
        text = value
        parts = [p.strip().partition("=")[::2] for p in value.split(",") if p.strip()]
        _once(label, value, [k.strip() for k, _ in parts])
        value = {k.strip(): v.strip() for k, v in parts}
        if not value:                              # only commas: as empty as ""
            raise ConfigError(label, text, "KIND=COUNT,... (none: no estate; an empty one is refused)")
    if not isinstance(value, Mapping):
        raise ConfigError(label, value, "a mapping of device kinds to counts, e.g. {cisco-asa: 4, windows-dc: 6}")
    pairs = []
    for name, count in value.items():
        if not str(name).strip():
            raise ConfigError(label, f"={count}", "a device kind before each = (KIND=COUNT)")
        device = DEVICES.get(str(name))
        if device is None:
            raise ConfigError(label, name, "device kinds: " + ", ".join(DEVICES))
        _known(label, name, device.source)
        n = _count(label, f"{name}={count}", str(count))
        pairs.append((device.source, n * device.eps))
    _noticeable(label, [(str(k), str(v)) for k, v in value.items()], pairs, estate=True)
    return shares(pairs), sum(w for _, w in pairs)


def check_form(label: str, value: object, sources: tuple[tuple[str, float], ...]) -> str:
    """The form every source of the mix is sent in: ``native`` (each its own) or one they all have."""
    form = str(value)
    if form == NATIVE:
        return ""
    lacking = []
    for name, _ in sources:
        source = _known(label, value, name)
        if source.form(form) is None:
            lacking.append(f"{name} ({', '.join(f.name for f in source.forms)})")
    if lacking:
        raise ConfigError(label, value, f"native, or a form every source of the mix has; {', '.join(lacking)} "
                          f"{'has' if len(lacking) == 1 else 'have'} no {form} form")
    return form


def form_of(source: Source, form: str) -> str:
    return form or source.forms[0].name


def unproven(spec: MessageSpec) -> list[str]:
    """The mix's sources whose form carries no proof of delivery, each with why."""
    out = []
    for name, _ in spec.sources:
        source = registry.get(name)
        form = source.form(form_of(source, spec.form)) if source is not None else None
        if form is not None and form.proof is None:
            out.append(f"{name} ({form.no_proof or 'its ' + form.name + ' form has no room for one'})")
    return out


# --- rendering -------------------------------------------------------------------------------------

def counts(mix: tuple[tuple[str, float], ...], total: int) -> list[int]:
    """``total`` messages split by the weights, exactly (largest remainders)."""
    whole = sum(w for _, w in mix)
    raw = [w / whole * total for _, w in mix]
    out = [int(r) for r in raw]
    for i in sorted(range(len(mix)), key=lambda i: raw[i] - out[i], reverse=True)[:total - sum(out)]:
        out[i] += 1
    return out


REFILLS = 12                    # more drafts asked for when some were too long, at most this often
FIT_SAMPLE = 400                # messages of a source rendered at load to see how many fit max_length
MIN_FIT = 1 / FIT_SAMPLE        # the smallest share of fitting messages a refill plans for


class Drafting:
    """One source of the mix: its identity, its generator's draws and how its drafts render."""

    def __init__(self, source: Source, spec: MessageSpec, renderer: Renderer, limit: int) -> None:
        self.source = source
        self.name = source.name
        self.form = form_of(source, spec.form)
        self.identity = source.identity(random.Random(identity_seed(spec.seed, source.name)))
        self.rng = random.Random(f"drafts:{spec.seed}:{source.name}")
        self.renderer = renderer
        self.limit = limit
        self.too_long = 0

    def _draw(self, count: int) -> list[Draft]:
        return list(islice(self.source.generate(self.identity, self.rng, count, self.form), count))

    def block(self, count: int) -> list[tuple[Rendered, Conversation | None]]:
        """``count`` messages in logging order, each with its conversation; a message longer than
        the limit is left out (and counted), and more are drawn in its place."""
        out: list[tuple[Rendered, Conversation | None]] = []
        drawn = 0
        want = count
        for _ in range(REFILLS + 1):
            for draft in self._draw(want):
                drawn += 1
                r = self.renderer.rendered(draft)
                if len(r.head) + len(r.tail) > self.limit:
                    self.too_long += 1
                    continue
                if len(out) < count:
                    out.append((r, conversation(draft)))
            if len(out) >= count:
                break
            fits = max(MIN_FIT, len(out) / drawn)          # draw as many more as the share that fits asks
            want = int((count - len(out)) / fits * 1.2) + 8
        return out


def length_limit(spec_max_length: int, sequence: bool) -> int:
    """The longest message a source may render: max_length less the stream id's room."""
    return spec_max_length - (STREAM_ROOM if sequence else 0)


@lru_cache(maxsize=256)
def fit_share(name: str, form: str, max_length: int, sequence: bool, seed: int) -> tuple[float, int]:
    """(the share of source ``name``'s messages longer than ``max_length``, its shortest message's
    length with the stream's room), from ``FIT_SAMPLE`` of them rendered as a run would."""
    source = registry.get(name)
    assert source is not None
    f = source.form(form_of(source, form))
    renderer = Renderer(0.0, True, sequence, f.proof if f else None)
    rng = random.Random(f"drafts:{seed}:{name}")
    identity = source.identity(random.Random(identity_seed(seed, name)))
    limit = length_limit(max_length, sequence)
    lengths = [len(r.head) + len(r.tail) for r in
               (renderer.rendered(d) for d in islice(source.generate(identity, rng, FIT_SAMPLE, form_of(source, form)),
                                                     FIT_SAMPLE))]
    return sum(n > limit for n in lengths) / max(1, len(lengths)), min(lengths) + max_length - limit


def check_lengths(label: str, value: object, sources: tuple[tuple[str, float], ...], form: str,
                  max_length: int, sequence: bool, seed: int) -> None:
    """Refuse a max_length that none of a source's messages fit in (its share could never be sent)."""
    for name, _ in sources:
        out, shortest = fit_share(name, form, max_length, sequence, seed)
        if out >= 1.0:
            raise ConfigError(label, value, f"at least {shortest:,} bytes: {name}'s shortest message is "
                              f"{shortest:,} bytes with its stream's room (or leave {name} out of the mix)")


class Templates:
    """One user template in a mix: the engine renders it (``render_events``) in the mix's engine
    format (RFC 3164, or the one ``--format`` names), with no conversation."""

    def __init__(self, template: UserTemplate, spec: MessageSpec, now: float) -> None:
        self.name = template.name
        self.spec = replace(spec, catalogue=False, templates=(template,), sources=())
        fmt = spec.form if spec.form in FORMATS else "rfc3164"
        self.format = make_format(fmt, spec.sequence, spec.timezone == "utc", spec.enterprise)
        self.rng = random.Random(f"template:{spec.seed}:{template.name}")
        self.now = now
        self.too_long = 0

    def block(self, count: int) -> list[tuple[Rendered, Conversation | None]]:
        return [(fit(self.format, e, self.now, self.spec.max_length), None)
                for e in render_events(self.spec, count, self.rng)]


def thread_value(threads: dict[tuple[int, int, str], list[int]], key: tuple[int, int, str],
                 phase: int | None) -> int:
    """The engine's number of a message's conversation and phase (``conversation * PHASES + phase``);
    without a phase, every draft of the conversation is a phase of its own, in order."""
    found = threads.get(key)
    if found is None:
        found = threads[key] = [len(threads), 0]
    drafts = found[1]
    found[1] += 1
    return found[0] * PHASES + min(PHASES - 1, drafts if phase is None else phase)


def rendered(spec: MessageSpec, now: float, size: int = CORPUS_SIZE,
             report: dict[str, int] | None = None) -> Iterator[tuple[Rendered, int, int]]:
    """The mix's messages for a corpus of ``size`` (at least a pool), with their conversations and
    their sources (the engine's groups: a worker's pool keeps each one's share in every stretch).

    A message longer than ``max_length`` (a CloudTrail record at the default 1,024 bytes) is
    left out and another drawn; ``report`` counts them by source, so the caller can say so."""
    total = max(size, spec.pool_size)
    block = min(spec.pool_size, total)
    utc = spec.timezone == "utc"
    limit = length_limit(spec.max_length, spec.sequence)
    drafting: list[Drafting | Templates] = []
    for name, _ in spec.sources:
        source = registry.get(name)
        assert source is not None
        form = source.form(form_of(source, spec.form))
        renderer = Renderer(now, utc, spec.sequence, form.proof if form else None)
        drafting.append(Drafting(source, spec, renderer, limit))
    drafting.extend(Templates(t, spec, now) for t in spec.templates)
    weights = (*spec.sources, *((t.name, t.weight) for t in spec.templates))
    rng = random.Random(f"mix:{spec.seed}")
    threads: dict[tuple[int, int, str], list[int]] = {}      # -> [its number, drafts so far]
    for number in range(0, total, block):
        per = counts(weights, block)
        messages = [iter(d.block(n)) for d, n in zip(drafting, per)]
        for i in stratified(per, rng):
            found = next(messages[i], None)
            if found is None:                      # a source whose messages are all too long
                continue
            r, conv = found
            yield r, NO_THREAD if conv is None else thread_value(threads, (number, i, conv.key), conv.phase), i
    if report is not None:
        report.update({d.name: d.too_long for d in drafting if d.too_long})


def stratified(per: list[int], rng: random.Random, stratum: int = STRATUM) -> list[int]:
    """The order in which sources take the places of a block: each run of ``stratum`` places holds
    every source's share to within one message (the largest remainders round up), shuffled inside
    the run. A shuffle of the whole block let a 100,000-message pool's first 10,000 stray by points
    from the shares."""
    total = sum(per)
    order: list[int] = []
    given = [0] * len(per)
    for end in range(min(stratum, total), total + stratum, stratum):
        end = min(end, total)
        want = [p * end // total for p in per]
        for i in sorted(range(len(per)), key=lambda k: -(per[k] * end % total))[:end - sum(want)]:
            want[i] += 1
        piece = [i for i in range(len(per)) for _ in range(max(0, want[i] - given[i]))]
        given = [max(g, w) for g, w in zip(given, want)]
        rng.shuffle(piece)
        order.extend(piece)
        if end == total:
            break
    return order


def corpus(spec: MessageSpec, now: float, size: int = CORPUS_SIZE,
           report: dict[str, int] | None = None) -> Corpus:
    """The run's corpus of the mix (``loggend.engine.render.Corpus`` of pre-rendered messages)."""
    return Corpus(spec, now, size, rendered(spec, now, size, report))


def corpus_build(spec: MessageSpec, now: float, size: int = CORPUS_SIZE,
                 report: dict[str, int] | None = None) -> CorpusBuild:
    """The same corpus, to be rendered a step at a time (``CorpusBuild.step``)."""
    return CorpusBuild(spec, now, size, rendered(spec, now, size, report))
