"""Packaging glue only: the design card keeps core/, tui/ and demo_data/ at the repository root,
and the wheel installs them as plantwatch.core, plantwatch.tui and plantwatch.demo_data under the
one top-level package `plantwatch` (whose own files are in plantwatch/). Metadata is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {"plantwatch": "plantwatch", "plantwatch.core": "core", "plantwatch.tui": "tui",
         "plantwatch.demo_data": "demo_data"}

package_dir = dict(ROOTS)
for name, folder in ROOTS.items():
    if name == "plantwatch":
        continue
    # namespace discovery also finds data-only folders (core/data), which ship as package data
    for sub in find_namespace_packages(folder, exclude=["*__pycache__*"]):
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(package_dir=package_dir, packages=sorted(package_dir))
