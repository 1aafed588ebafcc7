"""aws-cloudtrail and aws-vpc-flow: the company's AWS accounts, as a log forwarder hands them to syslog.

* ``aws-cloudtrail``: one CloudTrail record (eventVersion 1.09) per message, as forwarders
  (a Lambda, Splunk's or Elastic's S3 readers) split the ``Records`` array: console sign-ins,
  role assumptions followed by the calls made with the session's temporary key (same
  ``accessKeyId`` and role session), S3 data events, EC2, IAM and KMS calls, the odd AccessDenied.
  ``eventTime`` is UTC, as AWS writes it. The proof is two JSON members of its own.
* ``aws-vpc-flow``: version 2 flow log records (``version account-id interface-id srcaddr dstaddr
  srcport dstport protocol packets bytes start end action log-status``), both directions of an
  accepted connection, rejected probes from outside, NODATA windows. The record is fourteen
  fixed fields that parsers split on spaces, with no room for more: the forwarder's RFC 5424
  header carries the proof in an SD element, and the record is the message, untouched.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from loggend.content import netplan
from loggend.content.hostkit import (
    EPOCH,
    ISO_UTC,
    JSON_PROOF,
    JSON_PROOF_PARTS,
    RFC3339,
    Episode,
    Later,
    ago_step,
    epoch_ago,
    interleave,
    syslog3164,
)
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Part, Proof, Source

CLOUDTRAIL_PRI = 134            # local0.info
VPC_PRI = 134
EVENT_VERSION = "1.09"
ENTERPRISE = 32473              # the SD-ID's enterprise number, as the engine's RFC 5424 default
VPC_PROOF = Proof(f'[loggen@{ENTERPRISE} stream="', '"', ' seq="', '"]')
CAPTURE_WINDOW = 60             # seconds a flow log record aggregates at most (1-minute interval)
REGIONS = (("us-east-1", 60), ("eu-west-1", 30), ("eu-central-1", 10))
ROLES = ("Admin", "ReadOnly", "Developer", "DataEngineer", "BreakGlass")
SERVICE_ROLES = ("lambda-ingest", "ecs-tasks-api", "ec2-ssm-managed", "glue-etl")
USERS = ("anna.smith", "ben.mueller", "carla.garcia", "david.rossi", "eva.dubois", "felix.novak")
CLI_AGENTS = ("aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 "
              "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#s3.cp",
              "Boto3/1.35.76 md/Botocore#1.35.76 ua/2.0 os/linux#5.10.228 md/arch#x86_64 lang/python#3.12.7 "
              "md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.35.76",
              "terraform-provider-aws/5.80.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
              "aws-sdk-go-v2/1.32.6 ua/2.1 os/linux lang/go#1.23.3 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.196.0")
CONSOLE_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                 "Safari/537.36")
# (source, name, read only, management, weight)
CALLS = (
    ("s3.amazonaws.com", "GetObject", True, False, 30), ("s3.amazonaws.com", "PutObject", False, False, 12),
    ("ec2.amazonaws.com", "DescribeInstances", True, True, 12),
    ("sts.amazonaws.com", "GetCallerIdentity", True, True, 6),
    ("kms.amazonaws.com", "Decrypt", True, True, 14), ("s3.amazonaws.com", "ListBuckets", True, True, 4),
    ("iam.amazonaws.com", "ListRoles", True, True, 3), ("ec2.amazonaws.com", "RunInstances", False, True, 1),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False, True, 1),
    ("logs.amazonaws.com", "PutLogEvents", False, False, 10), ("ssm.amazonaws.com", "GetParameter", True, True, 7),
)
BUCKETS = ("corp-data-lake-raw", "corp-backups", "corp-app-assets", "corp-audit-archive")


def identity(rng: random.Random) -> Identity:
    accounts = tuple(str(rng.randint(10**11, 10**12 - 1)) for _ in range(rng.randint(2, 4)))
    return Identity(hosts=("cloudtrail-fwd01",), extra={
        "accounts": accounts,
        "role_ids": tuple(f"AROA{_upper(rng, 17)}" for _ in ROLES + SERVICE_ROLES),
        "enis": tuple(f"eni-{rng.getrandbits(68):017x}" for _ in range(40)),
        "eni_addresses": tuple(netplan.cloud_address(rng) for _ in range(40))})


def _upper(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=n))


# --- aws-cloudtrail -------------------------------------------------------------------------------------

# Shares of what the sessions make (an assumed role brings its calls): measured, held by
# tests/unit/test_source_kinds.py.
CLOUDTRAIL_KINDS = (
    Kind("AwsApiCall", 84.4, "an API call made with a role session's key (S3, EC2, KMS, IAM, SSM, Logs)",
         r'^(?=.*"eventType":"AwsApiCall")(?!.*"eventName":"AssumeRole)(?!.*"errorCode":"AccessDenied")'),
    Kind("AssumeRole", 10.2, "a role assumed by a user or a service (sts)",
         r'^(?=.*"eventName":"AssumeRole)(?!.*"errorCode":"AccessDenied")'),
    Kind("ConsoleLogin", 2.4, "a console sign-in (AwsConsoleSignIn)", r'"eventName":"ConsoleLogin"'),
    Kind("AccessDenied", 2.9, "an API call refused (errorCode AccessDenied)", r'"errorCode":"AccessDenied"'),
)


class _Trail:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.rng = rng
        self.host = ident.hosts[0]
        self.accounts = ident.extra["accounts"]
        self.role_ids = dict(zip(ROLES + SERVICE_ROLES, ident.extra["role_ids"], strict=True))
        self.calls = [c[:4] for c in CALLS]
        self.weights = [c[4] for c in CALLS]

    def record(self, *body: Part) -> Draft:
        return (*syslog3164(CLOUDTRAIL_PRI, self.host, "aws-cloudtrail"), f'{{"eventVersion":"{EVENT_VERSION}",',
                *body, ',"eventTime":"', ISO_UTC, '"', *JSON_PROOF_PARTS)

    def _tail(self, region: str, account: str, ip: str, agent: str, event_type: str, read_only: bool,
              management: bool) -> str:
        rng = self.rng
        return (f'"awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}",'
                f'"requestID":"{_upper(rng, 16) if management else uuid.UUID(int=rng.getrandbits(128))}",'
                f'"eventID":"{uuid.UUID(int=rng.getrandbits(128))}","readOnly":{"true" if read_only else "false"},'
                f'"eventType":"{event_type}","managementEvent":{"true" if management else "false"},'
                f'"recipientAccountId":"{account}","eventCategory":"{"Management" if management else "Data"}"')

    def episode(self) -> Episode:
        rng = self.rng
        account = rng.choice(self.accounts)
        region = rng.choice([r for r, _ in REGIONS]) if rng.random() < 0.2 else REGIONS[0][0]
        human = rng.random() < 0.6
        role = rng.choice(ROLES) if human else rng.choice(SERVICE_ROLES)
        session = rng.choice(USERS) if human else f"{role}-{rng.randint(10**9, 10**10 - 1)}"
        ip = netplan.nat_address(rng) if human else f"{role.split('-')[0]}.amazonaws.com"
        if human:
            agent = CONSOLE_AGENT if rng.random() < 0.4 else rng.choice((CLI_AGENTS[0], CLI_AGENTS[2]))
        else:
            agent = CLI_AGENTS[1]
        key = f"ASIA{_upper(rng, 16)}"
        role_arn = f"arn:aws:iam::{account}:role/{role}"
        principal = f"{self.role_ids[role]}:{session}"
        opening = []
        if human and agent == CONSOLE_AGENT:
            opening.append(self.record(
                f'"userIdentity":{{"type":"IAMUser","principalId":"AIDA{_upper(rng, 17)}",'
                f'"arn":"arn:aws:iam::{account}:user/{session}","accountId":"{account}","userName":"{session}"}},'
                '"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","requestParameters":null,'
                '"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":'
                '"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"Yes"},'
                + self._tail("us-east-1", account, ip, agent, "AwsConsoleSignIn", False, True)))
        caller = (f'{{"type":"IAMUser","principalId":"AIDA{_upper(rng, 17)}","arn":"arn:aws:iam::{account}:user/'
                  f'{session}","accountId":"{account}","userName":"{session}"}}' if human else
                  f'{{"type":"AWSService","invokedBy":"{ip}"}}')
        opening.append(self.record(
            f'"userIdentity":{caller},"eventSource":"sts.amazonaws.com","eventName":"AssumeRole",'
            f'"requestParameters":{{"roleArn":"{role_arn}","roleSessionName":"{session}","durationSeconds":3600}},'
            f'"responseElements":{{"credentials":{{"accessKeyId":"{key}","sessionToken":"IQoJb3JpZ2luX2VjE'
            f'{_upper(rng, 24)}"}},"assumedRoleUser":{{"assumedRoleId":"{principal}",'
            f'"arn":"arn:aws:sts::{account}:assumed-role/{role}/{session}"}}}},'
            + self._tail(region, account, ip, agent, "AwsApiCall", False, True)))
        # the session was created by the AssumeRole just logged: its creation date is a stamp like eventTime
        identity = (f'{{"type":"AssumedRole","principalId":"{principal}","arn":"arn:aws:sts::{account}:assumed-role/'
                    f'{role}/{session}","accountId":"{account}","accessKeyId":"{key}","sessionContext":'
                    f'{{"sessionIssuer":{{"type":"Role","principalId":"{self.role_ids[role]}","arn":"{role_arn}",'
                    f'"accountId":"{account}","userName":"{role}"}},"attributes":{{"creationDate":"', ISO_UTC,
                    f'","mfaAuthenticated":"{"true" if human else "false"}"}}}}}}')
        calls = rng.randint(3, 14)
        closing: list[Later] = [self._call(identity, region, account, ip, agent, role) for _ in range(calls)]
        return opening, closing

    def _call(self, identity: tuple[Part, ...], region: str, account: str, ip: str, agent: str, role: str) -> Draft:
        rng = self.rng
        source, name, read_only, management = rng.choices(self.calls, self.weights)[0]
        denied = role == "ReadOnly" and not read_only or rng.random() < 0.005
        bucket = rng.choice(BUCKETS)
        params = {
            "GetObject": f'{{"bucketName":"{bucket}","key":"{rng.choice(("2026/12/", "exports/", "app/"))}'
                         f'part-{rng.randint(0, 9999):05d}.parquet"}}',
            "PutObject": f'{{"bucketName":"{bucket}","key":"ingest/{uuid.UUID(int=rng.getrandbits(128))}.json.gz"}}',
            "Decrypt": '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}',
            "GetParameter": f'{{"name":"/prod/{rng.choice(("db", "api", "queue"))}/endpoint","withDecryption":true}}',
            "RunInstances": '{"instanceType":"t3.medium","minCount":1,"maxCount":1}',
            "AuthorizeSecurityGroupIngress": f'{{"groupId":"sg-{rng.getrandbits(68):017x}","ipPermissions":'
                                             '{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443}]}}',
            "PutLogEvents": f'{{"logGroupName":"/aws/lambda/{role}","logStreamName":"2026/12/06/[$LATEST]"}}',
        }.get(name, "null")
        error = (',"errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this action"'
                 if denied else "")
        return self.record('"userIdentity":', *identity, f',"eventSource":"{source}","eventName":"{name}",'
                           f'"requestParameters":{params},"responseElements":null{error},'
                           + self._tail(region, account, ip, agent, "AwsApiCall", read_only, management))


def cloudtrail_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    return interleave(rng, count, _Trail(ident, rng).episode, "aws-cloudtrail")


# --- aws-vpc-flow -------------------------------------------------------------------------------------

VPC_KINDS = (
    Kind("ACCEPT", 91, "an accepted flow, one record each direction, packets and bytes that agree"),
    Kind("REJECT", 8, "a probe from outside refused by a security group or network ACL"),
    Kind("NODATA", 1, "a capture window with no traffic on the interface"),
)
PROBE_PORTS = (22, 23, 3389, 445, 1433, 5900, 8080, 6379)
SMALL_FLOW_PORTS = (53, 123, 514)      # request/response services: a few packets a flow


def vpc_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    account = ident.extra["accounts"][0]
    enis, addresses = ident.extra["enis"], ident.extra["eni_addresses"]
    made = 0
    while made < count:
        i = rng.randrange(len(enis))
        eni, local = enis[i], addresses[i]
        step = ago_step(rng.randint(1, CAPTURE_WINDOW))
        head = (f"<{VPC_PRI}>1 ", RFC3339, f" vpc-flow-fwd aws-vpc-flow - - {VPC_PROOF.stream_before}", STREAM,
                f'"{VPC_PROOF.seq_before}', SEQ, f'"] 2 {account} {eni} ')
        r = rng.random()
        if r < 0.02:
            yield (*head, "- - - - - - - ", epoch_ago(step), " ", EPOCH, " - NODATA")
            made += 1
        elif r < 0.16:
            packets = rng.randint(1, 3)
            yield (*head, f"{netplan.external(rng)} {local} {netplan.ephemeral_port(rng)} {rng.choice(PROBE_PORTS)} 6 "
                          f"{packets} {packets * 40} ", epoch_ago(step), " ", EPOCH, " REJECT OK")
            made += 1
        else:
            svc = netplan.service(rng)
            proto = 6 if svc.protocol == "tcp" else 17
            peer = netplan.external(rng) if rng.random() < 0.7 else netplan.cloud_address(rng)
            sport = netplan.ephemeral_port(rng)
            small = svc.port in SMALL_FLOW_PORTS
            out_pkts, in_pkts = (rng.randint(1, 4), rng.randint(1, 4)) if small else (rng.randint(3, 900),
                                                                                      rng.randint(2, 1500))
            out_bytes = out_pkts * rng.randint(52, 600)
            in_bytes = in_pkts * rng.randint(52, 1448)
            yield (*head, f"{local} {peer} {sport} {svc.port} {proto} {out_pkts} {out_bytes} ", epoch_ago(step), " ",
                   EPOCH, " ACCEPT OK")
            yield (*head, f"{peer} {local} {svc.port} {sport} {proto} {in_pkts} {in_bytes} ", epoch_ago(step), " ",
                   EPOCH, " ACCEPT OK")
            made += 2


SOURCES = (
    Source(name="aws-cloudtrail", vendor="Amazon Web Services", product="AWS CloudTrail",
           version=f"CloudTrail record eventVersion {EVENT_VERSION}", kinds=CLOUDTRAIL_KINDS,
           forms=(Form("native", "one CloudTrail record per message, JSON, behind a forwarder's BSD syslog header",
                       JSON_PROOF),),
           fields=("eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
                   "userIdentity.type", "userIdentity.arn", "userIdentity.accessKeyId", "errorCode", "readOnly",
                   "eventType", "recipientAccountId", "requestParameters"),
           parser="none: no syslog-ng scl parser for CloudTrail; JSON checked with Python's json (rsyslog "
                  "mmjsonparse where present) against the CloudTrail record contents reference",
           reference="AWS CloudTrail User Guide, 'CloudTrail record contents' and 'CloudTrail userIdentity element'",
           identity=identity, generate=cloudtrail_generate),
    Source(name="aws-vpc-flow", vendor="Amazon Web Services", product="Amazon VPC Flow Logs",
           version="flow log record version 2 (default format)", kinds=VPC_KINDS,
           forms=(Form("native", "a version 2 flow log record as the message of a forwarder's RFC 5424 line, the "
                       "proof in its SD element", VPC_PROOF),),
           fields=("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
                   "packets", "bytes", "start", "end", "action", "log-status"),
           parser="none: no syslog-ng scl parser for VPC flow logs; tested against the default format's 14 fields",
           reference="Amazon VPC User Guide, 'Flow log records' (default format, version 2)",
           identity=identity, generate=vpc_generate),
)
