"""Strict, offline schema check of rendered Kubernetes manifests (run in the venv of tests/support/k8s.py).

    kubectl kustomize deploy/k8s/overlays/timed | python k8s_validate.py -k 1.32 -

* core kinds: kubernetes-validate's bundled JSON schemas, strict (an unknown field is an error),
  every error listed (kubernetes_validate.validate() stops at the first one);
* monitoring.coreos.com/v1 (PodMonitor, ServiceMonitor, PrometheusRule): the local subset schema
  in k8s-schemas/monitoring.coreos.com-v1.json;
* any other kind: an error (nothing passes unchecked).

Prints one line per object (``valid`` / ``INVALID`` and its errors); exit status 0 when every
object is valid, 1 otherwise. Needs kubernetes-validate 1.37 (it brings jsonschema and PyYAML).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

CRD_SCHEMAS = {"monitoring.coreos.com/v1": Path(__file__).resolve().parent / "k8s-schemas"
               / "monitoring.coreos.com-v1.json"}


def where(error: jsonschema.ValidationError) -> str:
    return ".".join(map(str, error.absolute_path)) or "<root>"


def crd_errors(doc: dict[str, Any]) -> list[str] | None:
    """Errors of a CRD object we have a local schema for; None when we have none."""
    path = CRD_SCHEMAS.get(doc.get("apiVersion", ""))
    if path is None:
        return None
    bundle = json.loads(path.read_text())
    schema = bundle["kinds"].get(doc.get("kind"))
    if schema is None:
        return None
    validator = jsonschema.Draft202012Validator(dict(schema, **{"$defs": bundle["$defs"]}))
    return [f"{where(e)}: {e.message}" for e in sorted(validator.iter_errors(doc), key=where)]


def core_errors(doc: dict[str, Any], version: str) -> list[str] | None:
    """Every schema error of a core object; None when kubernetes-validate has no schema for its kind."""
    want = kv.major_minor(version)
    have = [v for v in kv.all_versions() if kv.major_minor(v) <= want][-1]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
    folder = f"v{have}-local-strict"
    try:
        schema = kv.schema_contents(f"kubernetes-json-schema/{folder}/{doc['kind'].lower()}-{group}.json", version)
    except FileNotFoundError:
        return None
    definitions = kv.schema_contents(f"kubernetes-json-schema/{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"{where(e)}: {e.message}" for e in sorted(validator.iter_errors(doc), key=where)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="multi-document YAML files, - for stdin")
    ap.add_argument("-k", "--kubernetes-version", default="1.32")
    a = ap.parse_args(argv)
    docs: list[dict[str, Any]] = []
    for name in a.files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        docs += [d for d in yaml.safe_load_all(text) if d]
    invalid = 0
    for d in docs:
        what = f"{d.get('kind')}/{d.get('metadata', {}).get('name')} ({d.get('apiVersion')})"
        errors = crd_errors(d)
        if errors is None:
            errors = core_errors(d, a.kubernetes_version)
        if errors is None:
            errors = ["no schema for this kind"]
        print(f"{'INVALID' if errors else 'valid'} {what}")
        for e in errors:
            print(f"    {e}")
        invalid += bool(errors)
    print(f"schema check (kubernetes-validate {kubernetes_validate.__version__}, Kubernetes {a.kubernetes_version}):"
          f" {len(docs) - invalid} of {len(docs)} objects valid")
    return 1 if invalid or not docs else 0


if __name__ == "__main__":
    sys.exit(main())
