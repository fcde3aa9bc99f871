"""CPE 2.3 names (formatted strings) for identified devices: a hardware name for the product and
an operating-system name for its firmware with the stated version.

The vendor is canonical (core/inventory/vendors.py); when the device states no vendor, an S7 order
number (6ES7..., 6AG1...) or the S7 copyright string "Original Siemens Equipment" names Siemens.
The product is the most specific name stated: product name, else module type, else model.
"""

from __future__ import annotations

import re

from plantwatch.core.inventory.vendors import canonical

_SPECIAL = re.compile(r"([!\"#$%&'()*+,/:;<=>@\[\]^`{|}~\\?])")


def component_text(value: str) -> str:
    """A CPE 2.3 formatted-string component: lower case, blanks as '_', specials escaped."""
    v = re.sub(r"\s+", "_", value.strip().lower())
    return _SPECIAL.sub(r"\\\1", v) or "-"


def vendor_of(attrs: dict[str, str]) -> str:
    if attrs.get("vendor"):
        return canonical(attrs["vendor"])
    model = attrs.get("model", "").upper()
    if model.startswith(("6ES7", "6AG1", "6ES5")) or "siemens" in attrs.get("copyright", "").lower():
        return "siemens"
    return ""


def product_of(attrs: dict[str, str]) -> str:
    return attrs.get("product") or attrs.get("module") or attrs.get("model") or ""


def cpe_names(attrs: dict[str, str]) -> list[str]:
    """CPE 2.3 names of one device (or component) from its identity attributes; [] when the
    vendor or the product is unknown."""
    vendor, product = vendor_of(attrs), product_of(attrs)
    if not vendor or not product:
        return []
    v, p = component_text(vendor), component_text(product)
    fw = component_text(attrs["firmware"]) if attrs.get("firmware") else "-"
    return [f"cpe:2.3:h:{v}:{p}:-:*:*:*:*:*:*:*", f"cpe:2.3:o:{v}:{p}_firmware:{fw}:*:*:*:*:*:*:*"]
