"""Fetch the data-docs assets GX links from CDNs, from the npm registry, at install time.

    python quality/docs_assets/vendor.py [DEST]     # make install does this

Reads ``assets.json`` next to this file; each asset is one file of an npm package
(``npm pack <package>@<version>``), kept at ``DEST/<host>/<path of its URL>`` (``.js``
added to an extensionless URL) so the CSS files' relative references (Font Awesome's
``../webfonts/``) resolve. Files with an ``integrity`` hash in GX's templates are checked
against it. Nothing is fetched at run time. A plain script (standard library, npm): it
runs before the project's packages are importable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DEST = Path(sys.prefix) / "share" / "customer720" / "gx-docs-assets"


def local_name(url: str) -> str:
    """``https://host/a/b.css`` → ``host/a/b.css``; an extensionless URL gets ``.js``."""
    name = url.split("://", 1)[1]
    return name if Path(name).suffix in (".css", ".js") else name + ".js"


def assets() -> list[dict]:
    return json.loads((HERE / "assets.json").read_text())["assets"]


def _unpack(spec: str, work: Path) -> Path:
    out = work / spec.replace("/", "_").replace("@", "_")
    if out.is_dir():
        return out / "package"
    packed = subprocess.run(
        ["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = work / json.loads(packed.stdout)[0]["filename"]
    with tarfile.open(tarball) as tar:
        tar.extractall(out, filter="data")
    return out / "package"


def vendor(dest: Path = DEFAULT_DEST) -> list[Path]:
    if shutil.which("npm") is None:
        raise SystemExit("vendor.py: npm is needed once, to fetch the data-docs assets")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for asset in assets():
            package = _unpack(asset["npm"], Path(tmp))
            target = partial / local_name(asset["url"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package / asset["file"], target)
            if "sha384" in asset:
                digest = base64.b64encode(hashlib.sha384(target.read_bytes()).digest()).decode()
                if digest != asset["sha384"]:
                    raise SystemExit(f"vendor.py: {asset['url']} from npm differs from the CDN's")
            if "with" in asset:  # a folder the file refers to, beside the file's own folder
                shutil.copytree(
                    package / asset["with"],
                    target.parent.parent / asset["with"],
                    dirs_exist_ok=True,
                )
            written.append(target)
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return [dest / p.relative_to(partial) for p in written]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEST
    print(f"data-docs assets: {len(vendor(target))} files (and Font Awesome's fonts) in {target}")
