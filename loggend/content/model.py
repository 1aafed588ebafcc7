"""What a source is: one kind of device, its message kinds, its identity and its wire forms.

A *source* (``cisco-asa``, ``paloalto``, ``windows-security``...) is one module of this package
that defines one ``Source``. Its ``generate`` function writes *drafts* of whole messages exactly as
the device (or its usual forwarder) puts them on the wire, PRI and header included, transport
framing excluded. A draft is a tuple of parts:

* ``str``: literal text, already escaped for the form;
* ``Stamp``: a timestamp that the pool rewrites every second while it sends (the device's own
  format: ``Dec 06 2026 21:04:05`` for an ASA, ``2026/12/06 21:04:05`` for PAN-OS...). A stamp
  renders to a fixed width for a given time zone;
* ``STREAM`` and ``SEQ``: where the sender's stream id and the 12-digit sequence number go. A form
  that carries proof of delivery has both, ``STREAM`` before ``SEQ``, each between literal text
  that the form's ``Proof`` names so the sink can find them. A form with no room for them has
  neither and says why in ``Form.no_proof``.
* ``Conversation(key, phase=None)``: no bytes; says the draft belongs to conversation ``key`` (an
  ASA connection id, an SRX session, a Windows logon id, a Suricata flow id). Drafts of one
  conversation reach the wire in the order ``generate`` yields them, whatever the framing does
  (the pool groups messages of equal length into frames and shuffles the frames: without the
  key a Teardown could be sent before its Built). With ``phase`` (0, 1...), only the phases keep
  their order: drafts of one phase (an episode's opening lines) may be reordered among
  themselves, which lets the pool make longer frames. Drafts without one may be reordered freely.

Drafts are rendered once, before the workers fork (this package is never imported by the hot
path); the engine turns each into ``head + stream id + tail`` with its patch sites, as it does the
catalogue's messages. Everything here is a pure function of a ``random.Random`` seeded by the run.

Realism the generators keep (see each module): values agree within a message (bytes = sent +
received, NAT addresses from the device's pools, rules from its policy); conversations agree across
messages (an ASA Built and its Teardown share a connection id; an SRX create and its close; a
Windows 4624 and its 4634 share a logon id). ``generate`` yields messages in the order a device
would log them, so a conversation's opening precedes its closing in the list.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stamp:
    """A timestamp site: ``render(seconds, utc)`` gives the same width for every second of a zone."""

    style: str                                   # a unique name ('asa', 'panos', 'fortios-date'...)
    render: Callable[[float, bool], bytes]


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Conversation:
    """A draft's conversation (no bytes): drafts with the same key keep their order (of phases) on the wire."""

    key: str
    phase: int | None = None      # None: every draft its own phase, in the order generated


STREAM = _Marker("STREAM")      # the sender's stream id goes here (ASCII letters, digits, '.')
SEQ = _Marker("SEQ")            # the 12-digit sequence number goes here

Part = str | Stamp | _Marker | Conversation
Draft = tuple[Part, ...]


@dataclass(frozen=True)
class Proof:
    """How the sink finds the stream id and the sequence number in a form's messages.

    The literal text immediately around each: a message carries
    ``stream_before + <id> + stream_after`` and, later, ``seq_before + <12 digits> + seq_after``.
    ``stream_before`` and ``seq_before`` must not occur elsewhere in the message.
    """

    stream_before: str
    stream_after: str
    seq_before: str
    seq_after: str


@dataclass(frozen=True)
class Form:
    """One wire form of a source: ``native`` (the vendor's own, the default), ``cef``, ``leef``, ``json``..."""

    name: str
    description: str                             # one line: what it is and who sends it this way
    proof: Proof | None                          # None: the form has no room; no_proof says why
    no_proof: str = ""


@dataclass(frozen=True)
class Kind:
    """One kind of message of a source, with its share of the source's events."""

    name: str                                    # '302013', 'TRAFFIC', '4624', 'alert'...
    weight: float
    description: str                             # one line
    # A regular expression only this kind's messages (default form) match, for the docs' samples and
    # tests; "" = the name itself as literal text.
    marker: str = ""


@dataclass(frozen=True)
class Identity:
    """The devices a source speaks for, fixed by the seed: every worker speaks for the same estate."""

    hosts: tuple[str, ...]                       # device host names
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)   # serials, interfaces, zones...


@dataclass(frozen=True)
class Source:
    name: str                                    # the name users type: 'cisco-asa'
    vendor: str
    product: str
    version: str                                 # the format version followed ('PAN-OS 10.2/11.x')
    kinds: tuple[Kind, ...]
    forms: tuple[Form, ...]                      # forms[0] is the default (the vendor's own)
    fields: tuple[str, ...]                      # what a SIEM extracts from it
    parser: str                                  # the real parser tested against, or 'none: why'
    reference: str                               # where the format comes from (vendor document)
    identity: Callable[[random.Random], Identity]
    # (identity, rng, count, form name) -> drafts in logging order; count is a target, the generator
    # may return a few more to close the conversations it opened.
    generate: Callable[[Identity, random.Random, int, str], Iterator[Draft]]

    def form(self, name: str) -> Form | None:
        return next((f for f in self.forms if f.name == name), None)
