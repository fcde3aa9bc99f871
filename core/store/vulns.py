"""Imports vulnerability advisories the user downloaded: CISA ICS advisories in CSAF 2.0 JSON
and NVD CVE JSON 2.0 feeds (a file, or a directory of them). Nothing is fetched.

CSAF: the product tree's branches give vendor -> product name -> version (product_version, exact)
or version range (product_version_range: "vers:intdot/<4.2.3", "<=V2.011", "All versions"...);
each vulnerability's known_affected product ids give the rows, with the CVSS v3 (else v2) base
score. NVD: each CVE's configurations give cpeMatch entries (vulnerable ones only) with the CPE's
vendor, product and version or versionStart/End bounds (including/excluding).
Rows land in vuln_advisories / vuln_products (schema V7), replacing an advisory imported before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from plantwatch.core.inventory.vendors import canonical
from plantwatch.core.inventory.versions import parse_range
from plantwatch.core.store.database import Store


class AdvisoryError(ValueError):
    """A file that is not a CSAF 2.0 document or an NVD CVE 2.0 feed. str() names the file."""


@dataclass
class ImportResult:
    files: int = 0
    advisories: int = 0
    products: int = 0
    skipped: list[str] = field(default_factory=list)  # one line per product range not understood


def _walk(branches: list, path: dict, out: dict[str, dict]) -> None:
    for b in branches or []:
        here = dict(path)
        cat, name = b.get("category"), str(b.get("name", ""))
        if cat == "vendor":
            here["vendor"] = name
        elif cat == "product_name" or (cat == "product_family" and "product" not in here):
            here["product"] = name
        elif cat == "product_version":
            here["range"] = {"version": name}
        elif cat == "product_version_range":
            here["range_text"] = name
        prod = b.get("product")
        if prod and prod.get("product_id"):
            cpe = (prod.get("product_identification_helper") or {}).get("cpe", "")
            out[prod["product_id"]] = {**here, "cpe": cpe, "full": prod.get("name", "")}
        _walk(b.get("branches", []), here, out)


def _csaf(doc: dict, src: str, res: ImportResult) -> tuple[dict, list[dict]]:
    d = doc["document"]
    tracking = d.get("tracking", {})
    adv_id = tracking.get("id") or src
    url = next((r.get("url", "") for r in d.get("references", []) if r.get("category") == "self"), "")
    adv = {"advisory_id": adv_id, "source": "csaf", "title": d.get("title", ""),
           "published": tracking.get("initial_release_date", ""), "url": url, "imported_from": src}
    products: dict[str, dict] = {}
    _walk(doc.get("product_tree", {}).get("branches", []), {}, products)
    rows = []
    for v in doc.get("vulnerabilities", []):
        cve = v.get("cve") or v.get("ids", [{}])[0].get("text", "")
        score = None
        for s in v.get("scores", []):
            for k in ("cvss_v3", "cvss_v2"):
                if k in s and s[k].get("baseScore") is not None:
                    score = float(s[k]["baseScore"]) if score is None or k == "cvss_v3" else score
        for pid in v.get("product_status", {}).get("known_affected", []):
            p = products.get(pid)
            if p is None or not p.get("vendor") or not p.get("product"):
                continue
            rng = p.get("range")
            if rng is None:
                rng = parse_range(p["range_text"]) if "range_text" in p else {}
            if rng is None:
                res.skipped.append(f"{src}: {adv_id} {p['product']}: version range {p['range_text']!r} not understood")
                continue
            rows.append({"advisory_id": adv_id, "cve": cve or adv_id, "vendor": canonical(p["vendor"]),
                         "product": p["product"], "versions": json.dumps([rng] if rng else []),
                         "cvss": score, "cpe": p.get("cpe", "")})
    return adv, rows


_NVD_BOUNDS = {"versionStartIncluding": "from", "versionStartExcluding": "from_excl",
               "versionEndIncluding": "to", "versionEndExcluding": "to_excl"}


def _nvd(doc: dict, src: str) -> tuple[list[dict], list[dict]]:
    advs, rows = [], []
    for item in doc.get("vulnerabilities", []):
        cve = item.get("cve", {})
        cid = cve.get("id", "")
        if not cid:
            continue
        desc = next((x.get("value", "") for x in cve.get("descriptions", []) if x.get("lang") == "en"), "")
        advs.append({"advisory_id": cid, "source": "nvd", "title": desc[:200],
                     "published": cve.get("published", ""), "url": f"https://nvd.nist.gov/vuln/detail/{cid}",
                     "imported_from": src})
        score = None
        metrics = cve.get("metrics", {})
        for k in ("cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
            if metrics.get(k):
                score = float(metrics[k][0]["cvssData"]["baseScore"])
                break
        for conf in cve.get("configurations", []):
            for node in conf.get("nodes", []):
                for m in node.get("cpeMatch", []):
                    parts = m.get("criteria", "").split(":")
                    if not m.get("vulnerable") or len(parts) < 6:
                        continue
                    rng = {v: m[k] for k, v in _NVD_BOUNDS.items() if m.get(k)}
                    if parts[5] not in ("*", "-"):
                        rng = {"version": parts[5].replace("\\", "")}
                    rows.append({"advisory_id": cid, "cve": cid, "vendor": canonical(parts[3].replace("\\", "")),
                                 "product": parts[4].replace("\\", ""), "versions": json.dumps([rng] if rng else []),
                                 "cvss": score, "cpe": m["criteria"]})
    return advs, rows


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.json") if p.is_file())
    return [path]


def import_path(store: Store, path: str | Path) -> ImportResult:
    """Import every advisory under `path` in one transaction; an unreadable file raises
    AdvisoryError before anything is written."""
    p = Path(path)
    if not p.exists():
        raise AdvisoryError(f"{p}: no such file or directory")
    res = ImportResult()
    advs: list[dict] = []
    rows: list[dict] = []
    for f in _files(p):
        try:
            doc = json.loads(f.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AdvisoryError(f"{f}: not readable JSON ({e})") from None
        if isinstance(doc, dict) and isinstance(doc.get("document"), dict) and \
                str(doc["document"].get("csaf_version", "")).startswith("2."):
            adv, r = _csaf(doc, str(f), res)
            advs.append(adv)
            rows += r
        elif isinstance(doc, dict) and isinstance(doc.get("vulnerabilities"), list) and \
                str(doc.get("format", "")).upper().startswith("NVD_CVE"):
            a, r = _nvd(doc, str(f))
            advs += a
            rows += r
        else:
            raise AdvisoryError(f"{f}: neither a CSAF 2.0 document nor an NVD CVE JSON 2.0 feed")
        res.files += 1
    ids = sorted({a["advisory_id"] for a in advs})
    with store.transaction():
        for i in ids:
            store.execute("DELETE FROM vuln_products WHERE advisory_id = ?", (i,))
        if advs:
            store.upsert("vuln_advisories", pl.DataFrame(advs).unique("advisory_id", keep="last"))
        if rows:
            store.upsert("vuln_products", pl.DataFrame(rows, schema_overrides={"cvss": pl.Float64})
                         .unique(["advisory_id", "cve", "vendor", "product", "versions"], keep="last"))
    res.advisories, res.products = len(ids), len(rows)
    return res
