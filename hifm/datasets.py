"""Discovery of paired image folders (DESIGN §10).

A data set root holds one folder per modality, and the two images of a pair have
the same file stem (name without extension) in the two folders::

    <root>/ir/01.png   <root>/vi/01.png
    <root>/ir/02.png   <root>/vi/02.jpg     (extensions may differ)

Folder names are matched case-insensitively against these aliases:

=========================  ==============================================================
role A ("infrared")        ``ir``, ``infrared``, ``lwir``, ``cropinfrared``, ``mri``
role B ("visible")         ``vi``, ``vis``, ``visible``, ``crop_lr_visible``;
                           with ``mri``: ``ct``, ``pet`` or ``spect``
=========================  ==============================================================

Medical pairs: the MRI plays role A of DESIGN §2 (the "infrared", anatomical source,
stored in :attr:`Pair.ir_path`) and the CT/PET/SPECT image plays role B (stored in
:attr:`Pair.vis_path`); when one source is colour (PET/SPECT pseudo-colour) it
supplies the chroma of the fused image (DESIGN §5).

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

Only the two modality folders are listed, one level deep, so nested folders and
symbolic-link loops are never walked. Hidden files and ``Thumbs.db``/``desktop.ini``
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

__all__ = ["Pair", "PairSet", "find_pairs", "IVF_A_NAMES", "IVF_B_NAMES", "MEDICAL_B_NAMES"]

IVF_A_NAMES: tuple[str, ...] = ("ir", "infrared", "lwir", "cropinfrared")
"""Folder names (lower case) of the infrared source."""
IVF_B_NAMES: tuple[str, ...] = ("vi", "vis", "visible", "crop_lr_visible")
"""Folder names (lower case) of the visible source."""
MEDICAL_A_NAMES: tuple[str, ...] = ("mri",)
"""Folder names (lower case) of the anatomical (MRI) source."""
MEDICAL_B_NAMES: tuple[str, ...] = ("ct", "pet", "spect")
"""Folder names (lower case) of the functional/structural partner of the MRI."""

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
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
) -> PairSet:
    """Find the image pairs of a data set root.

    Args:
        root: the folder that holds the two modality folders.
        a_names: folder names accepted for source A (case-insensitive); default
            the infrared aliases and ``mri``.
        b_names: folder names accepted for source B (case-insensitive); default
            the visible aliases, and ``ct``/``pet``/``spect`` next to ``mri``.
        split: a sub-folder inside each modality folder to use instead (LLVIP's
            ``infrared/train`` and ``visible/train``: ``split="train"``).

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
    folder_a, folder_b, kind = _modality_folders(base, a_names, b_names)
    layout = f"{folder_a.name}/{folder_b.name}"
    if split is not None:
        folder_a, folder_b = _split_folder(folder_a, split), _split_folder(folder_b, split)
        layout = f"{layout} ({split})"
    result = _pair_folders(folder_a, folder_b)
    result.root, result.layout, result.kind = base, layout, kind
    if not result.pairs:
        raise PairingError(
            f"no image pairs in '{base}' ({layout}): {len(result.unpaired)} unpaired file(s), "
            f"{len(result.duplicates)} duplicate stem(s)"
        )
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


def _pair_folders(folder_a: Path, folder_b: Path) -> PairSet:
    """Match the files of two folders by stem."""
    result = PairSet(root=folder_a.parent, layout="", kind="")
    stems_a = _files_by_stem(folder_a, result)
    stems_b = _files_by_stem(folder_b, result)
    for stem in sorted(set(stems_a) | set(stems_b), key=_natural_key):
        files_a, files_b = stems_a.get(stem, []), stems_b.get(stem, [])
        if len(files_a) == 1 and len(files_b) == 1:
            result.pairs.append(Pair(stem, files_a[0], files_b[0]))
            continue
        _report(stem, files_a, files_b, folder_a, folder_b, result)
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


def _files_by_stem(folder: Path, result: PairSet) -> dict[str, list[Path]]:
    """Image files of ``folder`` grouped by stem; other files go to ``unpaired``."""
    groups: dict[str, list[Path]] = {}
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        raise PairingError(f"cannot list folder '{folder}': {exc.strerror or exc}") from exc
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower() in _IGNORED_FILES or _is_dir(entry):
            continue
        path = Path(entry.path)
        reason = _not_an_image(entry, path)
        if reason:
            result.unpaired.append((path, reason))
        else:
            groups.setdefault(path.stem, []).append(path)
    return groups


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
