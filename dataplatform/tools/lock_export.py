"""Pipfile.lock sections -> a hash-pinned requirements file, for `uv pip sync|install`.

pipenv stays the tool that *resolves* (`make lock`); uv only *installs*, from exactly the
versions and hashes pipenv locked, so both read the same lock and cannot drift:

    python3 -m dataplatform.tools.lock_export Pipfile.lock default            # what synth needs
    python3 -m dataplatform.tools.lock_export Pipfile.lock default develop    # + tests, scans, bench

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def requirements(lock_path: Path, sections: list[str]) -> list[str]:
    lock = json.loads(Path(lock_path).read_text())
    missing = [s for s in sections if s not in lock]
    if missing:
        raise SystemExit(f"{lock_path}: no section(s) {', '.join(missing)} (has: {', '.join(k for k in lock if k != '_meta')})")
    pins: dict[str, str] = {}
    for section in sections:
        for name, spec in lock[section].items():
            if "version" not in spec or not spec.get("hashes"):
                raise SystemExit(f"{lock_path}: {section}.{name} is not a hash-pinned index package; uv installs only those")
            extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
            marker = f"; {spec['markers']}" if spec.get("markers") else ""
            line = f"{name}{extras}{spec['version']}{marker} " + " ".join(f"--hash={h}" for h in spec["hashes"])
            if pins.setdefault(name, line) != line and spec["version"] not in pins[name]:
                raise SystemExit(f"{lock_path}: {name} is locked at two versions across {', '.join(sections)}")
    return [pins[name] for name in sorted(pins)]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(requirements(Path(argv[0]), argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
