"""Rebuild plots/offline.html, the page template that makes `dvc plots show/diff` HTML open offline.

DVC's default page loads Vega, Vega-Lite and vega-embed from a CDN, so its charts stay blank without the network.
This template carries the three minified scripts inline (no path to resolve, wherever `-o` puts the page) and
has no `{scripts}` placeholder, so DVC's CDN tags are never written. The versions are pinned in
plots/package.json and plots/package-lock.json (with their sha512 integrity hashes); npm installs them into a
temporary folder, nothing is kept but the template and plots/THIRD_PARTY_LICENSES.txt.

    python plots/build_offline_template.py          # needs npm and the registry; run when changing a version
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "offline.html"
LICENSES = HERE / "THIRD_PARTY_LICENSES.txt"
# The browser bundles DVC's pages need, in load order (vega-lite and vega-embed expect the globals before them).
BUNDLES = (("vega", "build/vega.min.js"), ("vega-lite", "build/vega-lite.min.js"),
           ("vega-embed", "build/vega-embed.min.js"))
# Type declarations and native build helpers that npm installs but no bundle contains.
NOT_BUNDLED_PREFIXES = ("@types/", "@rollup/")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots</title>
<!-- {versions}: inlined so that this page needs no network (licenses: plots/THIRD_PARTY_LICENSES.txt
     in the project). Built by plots/build_offline_template.py; do not edit by hand. -->
{scripts}
<script>
// A plot whose files none of the revisions has (a list of nets, sizes or seeds other than the plot definitions
// name) reaches the page as an empty spec: say so in its place instead of an empty box.
(function () {{
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (selector, spec, options) {{
    if (spec && Object.keys(spec).length) {{ return embed(selector, spec, options); }}
    var div = document.querySelector(selector);
    if (div) {{
      div.className += " no-data";
      div.textContent = selector.slice(1).replace(/_/g, " ") + ": no data in these revisions";
    }}
    return Promise.resolve(null);
  }};
}})();
</script>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; margin: 1rem 2rem; }}
table {{ border-spacing: 15px; }}
img {{ max-width: 48vw; height: auto; }}
.no-data {{ color: #666; font-style: italic; margin: .5rem 0; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def _script(name: str, version: str, license_name: str, code: str) -> str:
    for bad in ("</script", "<!--", "{plot_divs}", "{refresh_tag}", "{scripts}"):
        if bad in code:   # it would end the inline script early, or DVC would substitute into it
            raise SystemExit(f"{name} {version}: its bundle contains {bad!r}; it cannot be inlined")
    banner = f"/*! {name} {version} | {license_name} | see THIRD_PARTY_LICENSES.txt */"
    return f"<script>{banner}\n{code}\n</script>"


def _license_text(folder: Path) -> str | None:
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name.lower().startswith(("license", "licence", "copying")):
            return f.read_text(errors="replace").strip()
    return None


def _third_party(modules: Path) -> str:
    """Every package npm installed for the three (their dependency trees), each with its license text."""
    packages = []
    for pj in sorted(modules.glob("*/package.json")) + sorted(modules.glob("@*/*/package.json")):
        meta = json.loads(pj.read_text())
        name = meta["name"]
        if name.startswith(NOT_BUNDLED_PREFIXES):
            continue
        packages.append((name, meta["version"], str(meta.get("license")), _license_text(pj.parent)))
    vega_text = next(text for name, _, _, text in packages if name == "vega-lite")
    parts = ["Third-party software inlined into plots/offline.html",
             "",
             "plots/offline.html contains the minified browser builds of vega, vega-lite and vega-embed, which",
             "bundle code from their dependencies. Listed below is every package npm installs for the three",
             "(some, such as yargs, serve only their command-line tools and are not in the browser builds).",
             "All are under permissive licenses (BSD-3-Clause, ISC, MIT, 0BSD, Unlicense) that allow",
             "redistribution with these notices.", ""]
    parts += [f"- {name} {version} ({lic})" for name, version, lic, _ in packages]
    for name, version, lic, text in packages:
        if text is None and name.startswith("vega") and lic == "BSD-3-Clause":
            # Parts of the Vega project published without their own copy of the project's license.
            text = f"(The package ships no license file; it is part of the Vega project:)\n{vega_text}"
        elif text is None:
            text = f"(The package ships no license file; its package.json declares the {lic} license.)"
        parts += ["", "=" * 100, f"{name} {version} -- {lic}", "=" * 100, text]
    return "\n".join(parts) + "\n"


def main() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js (Debian: apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(HERE / "package.json", work)
        lock = HERE / "package-lock.json"
        if lock.exists():
            shutil.copy(lock, work)
            cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        else:
            cmd = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"]
        subprocess.run(cmd, cwd=work, check=True)
        if not lock.exists():
            shutil.copy(work / "package-lock.json", lock)
        modules = work / "node_modules"
        scripts, versions = [], []
        for name, rel in BUNDLES:
            meta = json.loads((modules / name / "package.json").read_text())
            versions.append(f"{name} {meta['version']}")
            scripts.append(_script(name, meta["version"], meta["license"], (modules / name / rel).read_text()))
        TEMPLATE.write_text(PAGE.format(versions=", ".join(versions), scripts="\n".join(scripts)))
        LICENSES.write_text(_third_party(modules))
    print(f"wrote {TEMPLATE.relative_to(HERE.parent)} ({TEMPLATE.stat().st_size // 1024} KiB) and "
          f"{LICENSES.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
