"""Identity from the wire for the console and the JSON report: a device's stated attributes
with their proving frames, a one-line summary per device (model, firmware, serial), its CPE
names, and the imported advisories whose vendor, product and version range it falls in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from plantwatch.core.inventory.cpe import cpe_names, product_of, vendor_of
from plantwatch.core.inventory.versions import affected
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import has_table, sites

# Which source speaks for an attribute several protocols state: the device's own ICS identity
# services first, then discovery (PROFINET DCP), then what hosts of any kind send (DHCP, TLS, HTTP).
_PRIORITY = {s: i for i, s in enumerate(("s7comm", "enip", "modbus", "bacnet", "dnp3", "opcua", "profinet", "dhcp", "tls",
                                                 "http"))}


@dataclass(frozen=True, slots=True)
class IdentityAttr:
    component: str          # "" the device itself; else the module behind it
    attribute: str
    value: str              # from the wire
    source: str
    first_ts: int
    last_ts: int
    first_ref: int          # packet refs (capture_id << 32 | frame) proving it
    last_ref: int
    seen: int


@dataclass(frozen=True, slots=True)
class IdentitySummary:
    model: str = ""
    firmware: str = ""
    serial: str = ""
    vulns: int = 0          # distinct CVEs matched on the device or its components


@dataclass(frozen=True, slots=True)
class VulnMatch:
    component: str
    cve: str
    advisory_id: str
    cvss: float | None
    vendor: str
    product: str            # as the advisory names it
    versions: str           # the affected ranges, in words
    firmware: str           # the version the device stated ("" when the range is every version)
    title: str
    url: str


def _rows(store: Store, device: str | None) -> list[tuple]:
    if not has_table(store, "device_identity"):
        return []
    sql = ("SELECT device, component, attribute, value, source, first_ts, last_ts, first_ref, last_ref, seen"
           " FROM device_identity WHERE site = ?")
    rows = store.execute(sql + (" AND device = ?" if device else ""),
                         (store.site, device) if device else (store.site,)).fetchall()
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], _PRIORITY.get(r[4], len(_PRIORITY)), r[4]))


def device_identity(store: Store, device: str) -> tuple[IdentityAttr, ...]:
    return tuple(IdentityAttr(*r[1:]) for r in _rows(store, device))


def _grouped(store: Store, device: str | None) -> dict[tuple[str, str], dict[str, str]]:
    """Attributes per (device, component); where sources differ, the first by _PRIORITY wins."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for r in _rows(store, device):
        out.setdefault((r[0], r[1]), {}).setdefault(r[2], r[3] or "")
    return out


def _tokens(text: str) -> list[str]:
    return [t for t in re.sub(r"[^a-z0-9]+", " ", text.lower().replace("\\", "")).split() if t != "firmware"]


def _contains(big: list[str], small: list[str]) -> bool:
    n = len(small)
    return any(big[i : i + n] == small for i in range(len(big) - n + 1))


def names_match(advisory_product: str, attrs: dict[str, str]) -> bool:
    """The advisory's product names this device: one of the device's names (product, module
    type, model) appears whole in the advisory's, or the advisory's whole in it. The shorter name
    must hold a digit and two words, so "CPU" alone never matches."""
    adv = _tokens(advisory_product)
    for key in ("product", "module", "model"):
        dev = _tokens(attrs.get(key, ""))
        short, long_ = (dev, adv) if len(dev) <= len(adv) else (adv, dev)
        if len(short) >= 2 and any(c.isdigit() for c in "".join(short)) and _contains(long_, short):
            return True
    return False


def _range_text(ranges: list[dict[str, str]]) -> str:
    if not ranges:
        return "all versions"
    words = {"version": "= {}", "from": ">= {}", "from_excl": "> {}", "to": "<= {}", "to_excl": "< {}"}
    return " or ".join(" ".join(words[k].format(v) for k, v in r.items()) for r in ranges)


def vulnerabilities(store: Store, device: str | None = None) -> dict[str, list[VulnMatch]]:
    """Advisories matching each identified device (all devices when `device` is None)."""
    if not has_table(store, "vuln_products"):
        return {}
    idents = _grouped(store, device)
    vendors = {vendor_of(a) for a in idents.values()} - {""}
    if not vendors:
        return {}
    marks = ",".join("?" * len(vendors))
    products = store.execute(
        "SELECT p.vendor, p.product, p.versions, p.cve, p.advisory_id, p.cvss, a.title, a.url FROM vuln_products p"
        f" LEFT JOIN vuln_advisories a USING (advisory_id) WHERE p.vendor IN ({marks})"
        " ORDER BY p.cvss DESC, p.cve", tuple(sorted(vendors))).fetchall()
    out: dict[str, list[VulnMatch]] = {}
    for (dev, comp), attrs in sorted(idents.items()):
        vendor = vendor_of(attrs)
        fw = attrs.get("firmware", "")
        seen: set[tuple[str, str]] = set()
        for pv, product, versions, cve, adv, cvss, title, url in products:
            if pv != vendor or (cve, comp) in seen or not names_match(product, attrs):
                continue
            ranges = json.loads(versions)
            if ranges and (not fw or not affected(fw, ranges)):
                continue
            seen.add((cve, comp))
            out.setdefault(dev, []).append(VulnMatch(
                component=comp, cve=cve, advisory_id=adv, cvss=cvss, vendor=vendor, product=product,
                versions=_range_text(ranges), firmware=fw if ranges else "", title=title or "", url=url or ""))
    return out


def summaries(store: Store) -> dict[tuple[str, str], IdentitySummary]:
    """Per (site, device): model, firmware and serial of the device itself, else of its first
    component that states them; and how many CVEs match it."""
    return {(at, dev): summary for at in sites(store)
            for dev, summary in _site_summaries(store.for_site(at)).items()}


def _site_summaries(store: Store) -> dict[str, IdentitySummary]:
    idents = _grouped(store, None)
    vulns = vulnerabilities(store) if idents else {}
    out: dict[str, IdentitySummary] = {}
    for (dev, _comp), attrs in sorted(idents.items(), key=lambda kv: (kv[0][0], kv[0][1] != "", kv[0][1])):
        if dev in out:
            continue
        out[dev] = IdentitySummary(model=attrs.get("model") or product_of(attrs), firmware=attrs.get("firmware", ""),
                                   serial=attrs.get("serial", ""),
                                   vulns=len({v.cve for v in vulns.get(dev, [])}))
    return out


def cpes(store: Store, device: str) -> dict[str, list[str]]:
    """CPE 2.3 names of the device and of each component, keyed by component."""
    return {comp: names for (_, comp), attrs in _grouped(store, device).items() if (names := cpe_names(attrs))}
