"""The package's declaration in setup.cfg, read by setuptools itself: every folder of the code is
a package and every file the app reads at run time is package data. A folder that is neither
made `pip install` print, per folder, that it "is absent from the packages configuration"
(hundreds of lines), and a file left undeclared is missing from a wheel."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("clientpay_connect", "adapters")
# Kept for translators and the build, never read by the running app.
NOT_RUN_TIME = (".pot",)


def configuration() -> dict:
    return read_configuration(str(ROOT / "setup.cfg"))["options"]


def code_folders() -> list[Path]:
    folders = []
    for top in TOP_LEVEL:
        folders.append(ROOT / top)
        folders.extend(p for p in (ROOT / top).rglob("*") if p.is_dir())
    return [f for f in folders if "__pycache__" not in f.parts]


def data_files() -> list[Path]:
    return [
        path
        for folder in code_folders()
        for path in folder.iterdir()
        if path.is_file() and path.suffix not in (".py", ".pyc", *NOT_RUN_TIME)
    ]


def dotted(folder: Path) -> str:
    return ".".join(folder.relative_to(ROOT).parts)


def matches(relative: PurePosixPath, pattern: str) -> bool:
    """A package_data glob as setuptools applies it: * never crosses a folder."""
    parts = PurePosixPath(pattern).parts
    return len(parts) == len(relative.parts) and all(
        fnmatchcase(part, glob) for part, glob in zip(relative.parts, parts, strict=True)
    )


def declared(path: Path, package_data: dict[str, list[str]]) -> bool:
    for package, patterns in package_data.items():
        folder = ROOT.joinpath(*package.split("."))
        if folder in path.parents:
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            if any(matches(relative, pattern) for pattern in patterns):
                return True
    return False


def test_every_folder_of_the_code_is_a_declared_package():
    packages = set(configuration()["packages"])
    missing = sorted(dotted(f) for f in code_folders() if dotted(f) not in packages)
    assert missing == []
    assert not any("__pycache__" in package for package in packages)


def test_every_file_the_app_reads_is_package_data():
    package_data = configuration()["package_data"]
    files = data_files()
    assert {".jinja2", ".yaml", ".css", ".js", ".po"} <= {f.suffix for f in files}
    missing = sorted(str(f.relative_to(ROOT)) for f in files if not declared(f, package_data))
    assert missing == []
