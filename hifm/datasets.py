"""Discovery of paired images in a data set folder.

Three layouts are understood.

**Modality folders** (the usual one): a data set root holds one folder per modality,
and the two images of a pair have the same file stem (name without extension) in the
two folders::

    <root>/ir/01.png   <root>/vi/01.png
    <root>/ir/02.png   <root>/vi/02.jpg     (extensions may differ)

Other folder names: ``a_dir``/``b_dir`` (``--ir-dir``/``--vis-dir``) name the two
folders, relative to the root or absolute.

**Flat**: one folder whose file stems end with a modality suffix after ``_``, ``-``
or ``.``: ``01_ir.png`` + ``01_vi.png`` (pair ``01``). Suffixes, any case: source A
``ir``, ``infrared``, ``lwir``, ``thermal``, ``tir``, ``mri``; source B ``vi``,
``vis``, ``visible``, ``rgb``, ``ct``, ``pet``, ``spect``.

**Nested** (``recursive=True``): the files of the two modality folders are paired by
their path below them (``ir/day/01.png`` + ``vi/day/01.png`` is pair ``day/01``);
and when the root itself has no modality folders, every folder below it that has
them (or a flat layout) adds its pairs, named by their path from the root
(``scene3/ir/01.png`` + ``scene3/vi/01.png`` is pair ``scene3/01``). Batch outputs
keep these relative paths.

Folder names are matched case-insensitively against these aliases:

=========================  ==============================================================
role A ("infrared")        ``ir``, ``infrared``, ``lwir``, ``cropinfrared``, ``mri``
role B ("visible")         ``vi``, ``vis``, ``visible``, ``crop_lr_visible``;
                           with ``mri``: ``ct``, ``pet`` or ``spect``
=========================  ==============================================================

Medical pairs: the MRI plays role A of the model (the "infrared", anatomical source,
stored in :attr:`Pair.ir_path`) and the CT/PET/SPECT image plays role B (stored in
:attr:`Pair.vis_path`); when one source is colour (PET/SPECT pseudo-colour) it
supplies the chroma of the fused image (docs/model.md).

Known layouts (point ``root`` at the folder shown):

* **TNO** (CDDFuse test set): ``TNO/{ir,vi}/NN.png``.
* **RoadScene**: CDDFuse test set ``RoadScene/{ir,vi}/FLIR_*.jpg``; original
  repository ``RoadScene/{cropinfrared,crop_LR_visible}`` (``crop_HR_visible`` is not
  pixel-aligned and is not an alias).
* **MSRS**: ``MSRS/train/{ir,vi}``, ``MSRS/test/{ir,vi}`` (root = the split folder).
* **M3FD**: ``M3FD_Fusion/{Ir,Vis}``.
* **LLVIP**: ``LLVIP/{infrared,visible}/{train,test}``: root ``LLVIP`` with
  ``split="train"`` or ``"test"``.
* **Harvard medical** (Whole Brain Atlas, CDDFuse test set):
  ``MRI_CT/{MRI,CT}``, ``MRI_PET/{MRI,PET}``, ``MRI_SPECT/{MRI,SPECT}``.

Without ``recursive`` only the two modality folders are listed, one level deep;
with it, folders are walked without following symbolic links (no loops). Hidden files and ``Thumbs.db``/``desktop.ini``
are ignored; other files are paired, or reported in :attr:`PairSet.unpaired` with
the reason; a stem present with several extensions in one folder (``a.png`` and
``a.jpg``) is reported in :attr:`PairSet.duplicates` and not paired (no guessing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PairingError

__all__ = ["Pair", "PairSet", "find_pairs", "IVF_A_NAMES", "IVF_B_NAMES", "MEDICAL_B_NAMES", "FLAT_A_TAGS",
           "FLAT_B_TAGS"]

IVF_A_NAMES: tuple[str, ...] = ("ir", "infrared", "lwir", "cropinfrared", "thermal")
"""Folder names (lower case) of the infrared source."""
IVF_B_NAMES: tuple[str, ...] = ("vi", "vis", "visible", "crop_lr_visible")
"""Folder names (lower case) of the visible source."""
MEDICAL_A_NAMES: tuple[str, ...] = ("mri",)
"""Folder names (lower case) of the anatomical (MRI) source."""
MEDICAL_B_NAMES: tuple[str, ...] = ("ct", "pet", "spect")
"""Folder names (lower case) of the functional/structural partner of the MRI."""

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
FLAT_A_TAGS: tuple[str, ...] = ("ir", "infrared", "lwir", "thermal", "tir", "mri")
"""Stem suffixes (lower case) of source A in a flat folder (``01_ir.png``)."""
FLAT_B_TAGS: tuple[str, ...] = ("vi", "vis", "visible", "rgb", "ct", "pet", "spect")
"""Stem suffixes (lower case) of source B in a flat folder (``01_vi.png``)."""
_FLAT_TAG = re.compile(r"^(?P<name>.+?)[_.\-](?P<tag>[A-Za-z]+)$")
_IGNORED_FILES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Pair:
    """Two co-registered images of one scene.

    Attributes:
        name: the shared file stem.
        ir_path: source A: the infrared image, or the MRI for medical pairs.
        vis_path: source B: the visible image, or the CT/PET/SPECT image.
    """

    name: str
    ir_path: Path
    vis_path: Path


@dataclass
class PairSet:
    """The result of :func:`find_pairs`.

    Attributes:
        root: the folder searched.
        layout: the modality folders used, as ``"<A folder>/<B folder>"`` (e.g.
            ``"ir/vi"``, ``"MRI/CT"``), prefixed by the split when one was given.
        kind: ``"ivf"`` (infrared–visible) or ``"medical"``.
        pairs: the pairs, sorted by name (numbers in names compare as numbers).
        unpaired: ``(path, reason)`` for each file that could not be paired.
        duplicates: ``(stem, paths)`` for each stem found with several extensions in
            one folder; such stems are not paired.
    """

    root: Path
    layout: str
    kind: str
    pairs: list[Pair] = field(default_factory=list)
    unpaired: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[str, tuple[Path, ...]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def __getitem__(self, index: int) -> Pair:
        return self.pairs[index]

    @property
    def names(self) -> list[str]:
        """The pair names, in order."""
        return [pair.name for pair in self.pairs]

    @property
    def complete(self) -> bool:
        """True when every file was paired (no unpaired file, no duplicate)."""
        return not self.unpaired and not self.duplicates

    def require_complete(self) -> PairSet:
        """Return ``self``, or raise :class:`PairingError` naming the problem files."""
        if self.complete:
            return self
        problems = [f"{_rel(path, self.root)} ({reason})" for path, reason in self.unpaired]
        problems += [
            f"{stem!r} has several files: {', '.join(_rel(p, self.root) for p in paths)}"
            for stem, paths in self.duplicates
        ]
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        raise PairingError(f"{len(problems)} problem(s) pairing '{self.root}': {shown}")


def find_pairs(
    root: str | os.PathLike[str],
    *,
    a_names: Sequence[str] | None = None,
    b_names: Sequence[str] | None = None,
    split: str | None = None,
    a_dir: str | os.PathLike[str] | None = None,
    b_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
) -> PairSet:
    """Find the image pairs of a data set root (the layouts are in the module docstring).

    Args:
        root: the folder that holds the two modality folders (or the flat files, or,
            with ``recursive``, data sets below it).
        a_names: folder names accepted for source A (case-insensitive); default
            the infrared aliases and ``mri``.
        b_names: folder names accepted for source B (case-insensitive); default
            the visible aliases, and ``ct``/``pet``/``spect`` next to ``mri``.
        split: a sub-folder inside each modality folder to use instead (LLVIP's
            ``infrared/train`` and ``visible/train``: ``split="train"``).
        a_dir, b_dir: the two modality folders themselves (relative to ``root`` or
            absolute); both or neither.
        recursive: pair files below the modality folders by relative path, or collect
            the data sets found in the folders below ``root``.

    Returns:
        A :class:`PairSet` (see its attributes for unpaired files and duplicates).

    Raises:
        PairingError: ``root`` is missing or not a folder; no recognizable pair of
            modality folders (the message lists the folders found), or an
            ambiguous one (e.g. ``ct`` and ``pet`` next to ``mri``: pass
            ``b_names``); the split folder is missing; no pair at all.
    """
    base = Path(root)
    if not base.is_dir():
        what = "does not exist" if not base.exists() else "is not a folder"
        raise PairingError(f"data set root '{base}' {what}")
    if (a_dir is None) != (b_dir is None):
        raise PairingError("give both folders (--ir-dir and --vis-dir) or neither")
    if a_dir is not None:
        folder_a, folder_b = (_given_folder(base, d, role) for d, role in ((a_dir, "A"), (b_dir, "B")))
        kind = "medical" if folder_a.name.lower() in MEDICAL_A_NAMES or folder_b.name.lower() in MEDICAL_B_NAMES else "ivf"
        result = _in_folders(base, folder_a, folder_b, kind, split, recursive)
    else:
        try:
            folder_a, folder_b, kind = _modality_folders(base, a_names, b_names)
        except PairingError as no_folders:
            result = _flat_pairs(base)
            if not result.pairs and recursive:
                result = _nested_pairs(base, a_names, b_names)
            if not result.pairs and not result.unpaired:
                hint = "" if recursive else "; pass --recursive for data sets in sub-folders, or --ir-dir/--vis-dir"
                raise PairingError(f"{no_folders}{hint}") from None
        else:
            result = _in_folders(base, folder_a, folder_b, kind, split, recursive)
    result.root = base
    if not result.pairs:
        raise PairingError(
            f"no image pairs in '{base}' ({result.layout or 'no layout'}): {len(result.unpaired)} unpaired file(s), "
            f"{len(result.duplicates)} duplicate stem(s)"
        )
    return result


def _given_folder(base: Path, folder: str | os.PathLike[str], role: str) -> Path:
    path = Path(folder) if Path(folder).is_absolute() else base / folder
    if not path.is_dir():
        raise PairingError(f"folder of source {role} '{path}' " + ("does not exist" if not path.exists() else "is not a folder"))
    return path


def _in_folders(base: Path, folder_a: Path, folder_b: Path, kind: str, split: str | None, recursive: bool) -> PairSet:
    """The pairs of two modality folders (optionally a split below each, optionally walked)."""
    layout = f"{_rel(folder_a, base)}/{_rel(folder_b, base)}"
    if split is not None:
        folder_a, folder_b = _split_folder(folder_a, split), _split_folder(folder_b, split)
        layout = f"{layout} ({split})"
    result = _pair_folders(folder_a, folder_b, recursive)
    result.layout, result.kind = layout + (" (recursive)" if recursive else ""), kind
    return result


def _flat_pairs(folder: Path, prefix: str = "") -> PairSet:
    """Pairs of one folder by modality suffix (``01_ir.png`` + ``01_vi.png``); empty when no file has one."""
    result = PairSet(root=folder, layout="", kind="")
    groups: dict[str, dict[str, list[Path]]] = {}
    tags: set[str] = set()
    untagged: list[Path] = []
    for path in _listed_files(folder, result):
        match = _FLAT_TAG.match(path.stem)
        tag = match.group("tag").lower() if match else ""
        role = "a" if tag in FLAT_A_TAGS else "b" if tag in FLAT_B_TAGS else None
        if role is None:
            untagged.append(path)
            continue
        tags.add(tag)
        groups.setdefault(prefix + match.group("name"), {}).setdefault(role, []).append(path)
    if not groups:
        result.unpaired.clear()  # not a flat folder at all: nothing to report
        return result
    for path in untagged:
        result.unpaired.append((path, "no modality suffix (e.g. _ir, _vi) in its name"))
    for name in sorted(groups, key=_natural_key):
        files_a, files_b = groups[name].get("a", []), groups[name].get("b", [])
        if len(files_a) == 1 and len(files_b) == 1:
            result.pairs.append(Pair(name, files_a[0], files_b[0]))
        elif len(files_a) > 1 or len(files_b) > 1:
            result.duplicates.append((name, tuple(files_a + files_b)))
        else:
            missing = "B (_vi, _ct, ...)" if files_a else "A (_ir, _mri, ...)"
            result.unpaired.append(((files_a or files_b)[0], f"no partner with a source {missing} suffix"))
    result.kind = "medical" if "mri" in tags else "ivf"
    result.layout = "flat *_" + "/*_".join(sorted(tags))
    return result


def _nested_pairs(base: Path, a_names: Sequence[str] | None, b_names: Sequence[str] | None) -> PairSet:
    """The union of the data sets (modality folders or flat) found below ``base``; names carry their path."""
    result = PairSet(root=base, layout="", kind="")
    layouts: list[str] = []
    kinds: set[str] = set()
    for dirpath, dirnames, _ in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        if here == base:
            continue
        prefix = _rel(here, base) + "/"
        try:
            folder_a, folder_b, kind = _modality_folders(here, a_names, b_names)
        except PairingError:
            found = _flat_pairs(here, prefix)
            if not found.pairs:
                continue
        else:
            found = _pair_folders(folder_a, folder_b, False, prefix)
            found.kind, found.layout = kind, f"{folder_a.name}/{folder_b.name}"
            dirnames[:] = [d for d in dirnames if d not in (folder_a.name, folder_b.name)]
        result.pairs += found.pairs
        result.unpaired += found.unpaired
        result.duplicates += found.duplicates
        layouts.append(f"{prefix}{found.layout}")
        kinds.add(found.kind)
    result.kind = kinds.pop() if len(kinds) == 1 else "mixed" if kinds else ""
    result.layout = f"{len(layouts)} data set(s): " + ", ".join(layouts) if layouts else ""
    return result


def _modality_folders(
    base: Path, a_names: Sequence[str] | None, b_names: Sequence[str] | None
) -> tuple[Path, Path, str]:
    """Pick the A and B folders of ``base`` and tell whether the set is medical."""
    folders = _subfolders(base)
    a_found = _matching(folders, a_names or IVF_A_NAMES + MEDICAL_A_NAMES)
    if len(a_found) != 1:
        _raise_folder_problem(base, folders, "A (infrared/MRI)", a_found)
    folder_a = a_found[0]
    medical = folder_a.name.lower() in MEDICAL_A_NAMES
    default_b = MEDICAL_B_NAMES if medical else IVF_B_NAMES
    b_found = [p for p in _matching(folders, b_names or default_b) if p != folder_a]
    if len(b_found) != 1:
        _raise_folder_problem(base, folders, "B (visible/CT/PET/SPECT)", b_found)
    return folder_a, b_found[0], "medical" if medical else "ivf"


def _subfolders(base: Path) -> list[Path]:
    """The folders directly inside ``base`` (symbolic links to folders included)."""
    try:
        with os.scandir(base) as entries:
            return sorted(Path(e.path) for e in entries if _is_dir(e) and not e.name.startswith("."))
    except OSError as exc:
        raise PairingError(f"cannot list data set root '{base}': {exc.strerror or exc}") from exc


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # e.g. a symbolic-link loop
        return False


def _matching(folders: list[Path], names: Sequence[str]) -> list[Path]:
    wanted = [name.lower() for name in ([names] if isinstance(names, str) else names)]
    return sorted(
        (p for p in folders if p.name.lower() in wanted), key=lambda p: wanted.index(p.name.lower())
    )


def _raise_folder_problem(base: Path, folders: list[Path], role: str, found: list[Path]) -> None:
    listing = ", ".join(p.name for p in folders) or "none"
    if found:
        names = ", ".join(p.name for p in found)
        raise PairingError(
            f"ambiguous modality folders in '{base}': {names} all match source {role}; "
            f"pass a_names/b_names to choose"
        )
    raise PairingError(
        f"no folder for source {role} in '{base}' (folders found: {listing}); expected "
        f"ir/vi, infrared/visible, vis, lwir, or mri with ct/pet/spect (any case)"
    )


def _split_folder(folder: Path, split: str) -> Path:
    matches = [p for p in _subfolders(folder) if p.name.lower() == split.lower()]
    if not matches:
        found = ", ".join(p.name for p in _subfolders(folder)) or "none"
        raise PairingError(f"no split folder '{split}' in '{folder}' (folders found: {found})")
    return matches[0]


def _pair_folders(folder_a: Path, folder_b: Path, recursive: bool = False, prefix: str = "") -> PairSet:
    """Match the files of two folders by stem (``recursive``: by path below them, without extension)."""
    result = PairSet(root=folder_a.parent, layout="", kind="")
    stems_a = _files_by_stem(folder_a, result, recursive)
    stems_b = _files_by_stem(folder_b, result, recursive)
    for stem in sorted(set(stems_a) | set(stems_b), key=_natural_key):
        files_a, files_b = stems_a.get(stem, []), stems_b.get(stem, [])
        if len(files_a) == 1 and len(files_b) == 1:
            result.pairs.append(Pair(prefix + stem, files_a[0], files_b[0]))
            continue
        _report(prefix + stem, files_a, files_b, folder_a, folder_b, result)
    return result


def _report(
    stem: str, files_a: list[Path], files_b: list[Path], folder_a: Path, folder_b: Path, result: PairSet
) -> None:
    """Record why the files of ``stem`` are not paired."""
    for files, other, other_folder in ((files_a, files_b, folder_b), (files_b, files_a, folder_a)):
        if len(files) > 1:
            result.duplicates.append((stem, tuple(files)))
        elif len(files) == 1 and not other:
            result.unpaired.append((files[0], f"no file with stem {stem!r} in {other_folder.name}/"))
        elif len(files) == 1:
            result.unpaired.append(
                (files[0], f"its partner {stem!r} in {other_folder.name}/ has several files")
            )


def _files_by_stem(folder: Path, result: PairSet, recursive: bool = False) -> dict[str, list[Path]]:
    """Image files of ``folder`` grouped by stem (``recursive``: by relative path without extension,
    ``/``-separated); other files go to ``unpaired``."""
    groups: dict[str, list[Path]] = {}
    folders = [folder]
    while folders:
        current = folders.pop(0)
        for path in _listed_files(current, result, folders if recursive else None):
            key = path.relative_to(folder).with_suffix("").as_posix()
            groups.setdefault(key, []).append(path)
    return groups


def _listed_files(folder: Path, result: PairSet, subfolders: list[Path] | None = None) -> list[Path]:
    """The image files directly in ``folder``, sorted; non-images go to ``result.unpaired``.

    Sub-folders are appended to ``subfolders`` when it is given (symbolic links to folders are not).
    """
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        raise PairingError(f"cannot list folder '{folder}': {exc.strerror or exc}") from exc
    files = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower() in _IGNORED_FILES:
            continue
        if _is_dir(entry):
            if subfolders is not None and not entry.is_symlink():
                subfolders.append(Path(entry.path))
            continue
        path = Path(entry.path)
        reason = _not_an_image(entry, path)
        if reason:
            result.unpaired.append((path, reason))
        else:
            files.append(path)
    return files


def _not_an_image(entry: os.DirEntry[str], path: Path) -> str | None:
    """Why ``entry`` cannot be an image, or None."""
    try:
        is_file = entry.is_file()
    except OSError:
        is_file = False
    if not is_file:
        return "not a regular file (broken symbolic link?)"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (extension {path.suffix or 'none'!r})"
    return None


def _natural_key(name: str) -> list[object]:
    """Sort key in which digit runs compare as numbers ("2" < "10")."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
