"""Files that ship inside the package, each checked against the sha256 in its folder's manifest.

Every shipped file (the scene networks' weights, the superposition sweeps)
loads through here, so a missing file, an altered one or a hand-edited
manifest is refused the same way: with the caller's own error type and a
hint that says how to get the file back. Files are safetensors (plain
tensors, never pickle); this module only finds and checks them.

    table = manifest(folder, error=WeightsError, hint=hint, table="models")
    path, entry = verified(folder, table, "autoencoder", error=WeightsError, hint=hint)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Union

__all__ = ["MANIFEST", "manifest", "sha256", "verified"]

MANIFEST = "manifest.json"
PathLike = Union[str, Path]


def sha256(path: PathLike) -> str:
    """The file's sha256, hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path, *, error: type[Exception], hint: str, table: str | None = None) -> dict:
    """``folder``'s manifest as a dict (``table`` picks a table inside it), or ``error`` saying what is wrong."""
    path = folder / MANIFEST
    if not path.is_file():
        raise error(f"no {MANIFEST} in {folder}. {hint}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path} is not valid JSON ({err}). {hint}") from None
    if not isinstance(data, dict) or (table is not None and not isinstance(data.get(table), dict)):
        what = f'no "{table}" table' if table else "not a table of names"
        raise error(f"{path} is not a manifest of shipped files ({what}). {hint}")
    return data if table is None else data[table]


def verified(folder: Path, entries: dict, name: str, *, error: type[Exception], hint: str,
             fields: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """(path, entry) of ``name``'s file once its sha256 matches the manifest; ``error`` otherwise.

    ``entries``: the manifest table of names (from :func:`manifest`); each entry needs
    ``file`` (a file name in ``folder``) and ``sha256``, and every one of ``fields``.
    """
    entry = entries.get(name)
    if entry is None:
        raise error(f"the manifest in {folder} lists no {name!r}. {hint}")
    problem = None
    if not isinstance(entry, dict):
        problem = f"is a {type(entry).__name__}, not a table"
    else:
        missing = [k for k in ("file", "sha256", *fields) if k not in entry]
        file = entry.get("file")
        if missing:
            problem = f"lacks {', '.join(missing)}"
        elif not isinstance(file, str) or not file or Path(file).name != file:
            problem = f"names the file {file!r}; it must be a file name in that folder, e.g. '{name}.safetensors'"
        elif not isinstance(entry["sha256"], str):
            problem = f"has sha256 {entry['sha256']!r}; it must be a hex string"
    if problem:
        raise error(f"the manifest entry for {name!r} in {folder} {problem}: the manifest was edited by hand or "
                    f"damaged. {hint}")
    path = folder / entry["file"]
    if not path.is_file():
        raise error(f"the file {path} is missing. {hint}")
    found = sha256(path)
    if found != entry["sha256"]:
        raise error(f"{path} is corrupt or altered: its sha256 is {found[:12]}..., the manifest expects "
                    f"{entry['sha256'][:12]}.... {hint}")
    return path, entry
