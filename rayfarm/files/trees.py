"""Copying a folder tree as it is: hard links stay links (a user's ``input`` files are links to the content
kept once in ``cas``), symbolic links are copied as links (never followed), modes and times are kept."""

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Copied:
    files: int = 0  # regular files (a hard link counts once per name)
    bytes: int = 0  # their content, each inode once


def copy_tree(source: Path, target: Path) -> Copied:
    """Copy ``source`` into ``target`` (made if needed, owner-only); what was copied. Nothing is followed
    out of ``source``: links are copied as links."""
    done = Copied()
    if not source.is_dir():
        return done
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    seen: dict[tuple[int, int], Path] = {}  # (device, inode) -> where that content was copied first
    for folder, dirs, names in os.walk(source):
        here = Path(folder)
        there = target / here.relative_to(source)
        for name in dirs:
            made = there / name
            if (here / name).is_symlink():
                os.symlink(os.readlink(here / name), made)
                continue
            made.mkdir(exist_ok=True)
            shutil.copystat(here / name, made)
        for name in names:
            path, copy = here / name, there / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(path), copy)
            elif stat.S_ISREG(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in seen:
                    os.link(seen[key], copy)
                else:
                    shutil.copy2(path, copy, follow_symlinks=False)
                    seen[key] = copy
                    done.bytes += info.st_size
                done.files += 1
        shutil.copystat(here, there)
    return done


def holds_files(folder: Path) -> bool:
    """Whether ``folder`` holds any file (empty folders do not count)."""
    return folder.is_dir() and any(names for _, _, names in os.walk(folder))
