"""Migration V9: one store, many sites. Keys name their site (the script is frozen here as released).

V8 put `site` on every row but left the keys as they were, so two sites with the same private
addresses (10.0.0.5 at plant-a and at plant-b) shared one devices row, one baseline row, and the
same deterministic session, breach and incident ids. V9 adds `site` as the last column of every
key that names a device, a session, a breach, an incident, a baseline or a capture (a capture is
known per site by its fingerprint: the same file analysed for two sites is two captures). Ids stay
the hashes they were (a store of one site keeps its ids); the site goes into the key only. Site
last, so a lookup by id or device alone still finds its rows through the key's index.

SQLite cannot change a table's key in place: each table is made anew with the same columns in the
same order, its rows copied, the old one dropped and the new one renamed, its indexes made again
(`_rebuilt`, from each table's columns, new key and indexes as written out below, frozen),
except V8's sessions_site (site, first_ts): with reads now saying `site = ?`, SQLite (no
statistics) took it for every connection query, also one on a port, which sessions_port answers
in time order without reading the site's other sessions. PostgreSQL runs the same script through
core/store/engine/dialect.py.
"""

from __future__ import annotations

# (table, its columns and key at V9, its indexes at V9)
_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("captures",
     "capture_id INTEGER PRIMARY KEY, path TEXT NOT NULL, fingerprint TEXT NOT NULL,\n"
     "size INTEGER NOT NULL, packets INTEGER NOT NULL, first_ts INTEGER, last_ts INTEGER,\n"
     "status TEXT NOT NULL, warnings TEXT, head_digest TEXT, stream_end INTEGER,\n"
     "stream_digest TEXT, records INTEGER, resumes INTEGER, first_frame INTEGER,\n"
     "site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "UNIQUE (fingerprint, site)",
     ("captures_head ON captures (head_digest)",)),
    ("sessions",
     "session_id INTEGER, proto INTEGER, state TEXT, app INTEGER, client_hi INTEGER,\n"
     "client_lo INTEGER, client_port INTEGER, server_hi INTEGER, server_lo INTEGER,\n"
     "server_port INTEGER, client_mac INTEGER, server_mac INTEGER, vlan INTEGER, first_ts INTEGER,\n"
     "last_ts INTEGER, pkts_c2s INTEGER, pkts_s2c INTEGER, bytes_c2s INTEGER, bytes_s2c INTEGER,\n"
     "payload_c2s INTEGER, payload_s2c INTEGER, first_file INTEGER, first_frame INTEGER,\n"
     "last_file INTEGER, last_frame INTEGER, syn_count INTEGER, handshake INTEGER,\n"
     "midstream INTEGER, rst_client INTEGER, rst_server INTEGER, icmp_errors INTEGER,\n"
     "to_group INTEGER, ev_syn INTEGER, ev_synack INTEGER, ev_rst INTEGER, ev_fin INTEGER,\n"
     "ev_unreach INTEGER, ev_dr INTEGER, ev_op INTEGER, ev_tls INTEGER, ev_rdp INTEGER,\n"
     "tls_sni TEXT, tls_no_sni INTEGER, tls_ja3_hash TEXT, tls_version INTEGER, cert_subject TEXT,\n"
     "cert_issuer TEXT, cert_self_signed INTEGER, rdp_cookie TEXT, n_ops INTEGER,\n"
     "site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (session_id, site)",
     ("sessions_app ON sessions (app, first_ts)",
      "sessions_client ON sessions (client_hi, client_lo, first_ts)",
      "sessions_client_port ON sessions (client_hi, client_lo, server_port)",
      "sessions_first_ts ON sessions (first_ts)",
      "sessions_last_ts ON sessions (last_ts)",
      "sessions_port ON sessions (server_port, first_ts)",
      "sessions_server ON sessions (server_hi, server_lo, first_ts)",
      "sessions_server_port ON sessions (server_hi, server_lo, server_port)",
      "sessions_state ON sessions (state)")),
    ("session_ops",
     "session_id INTEGER, client_hi INTEGER, client_lo INTEGER, server_hi INTEGER,\n"
     "server_lo INTEGER, server_port INTEGER, src_hi INTEGER, src_lo INTEGER, dst_hi INTEGER,\n"
     "dst_lo INTEGER, app INTEGER, code INTEGER, cls INTEGER, name TEXT, from_client INTEGER,\n"
     "requests INTEGER, count INTEGER, exceptions INTEGER, first_file INTEGER,\n"
     "first_frame INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (session_id, app, code, cls, name, from_client, requests, site)",
     ("session_ops_cls ON session_ops (cls, app, code)",
      "session_ops_dst ON session_ops (dst_hi, dst_lo)",
      "session_ops_src ON session_ops (src_hi, src_lo)")),
    ("devices",
     "device TEXT, hi INTEGER, lo INTEGER, ip TEXT, mac INTEGER, vendor TEXT, name TEXT,\n"
     "name_source TEXT, names TEXT, zone TEXT, zone_kind TEXT, vlan INTEGER, role TEXT,\n"
     "role_reasons TEXT, first_ts INTEGER, last_ts INTEGER, pkts_sent INTEGER, pkts_recv INTEGER,\n"
     "bytes_sent INTEGER, bytes_recv INTEGER, sessions_client INTEGER, sessions_server INTEGER,\n"
     "failed_client INTEGER, peers INTEGER, clients INTEGER, servers INTEGER, ics_used TEXT,\n"
     "ics_served TEXT, ics_clients INTEGER, ics_servers_read INTEGER, read_ops INTEGER,\n"
     "discover_ops INTEGER, action_ops INTEGER, reprogram_ops INTEGER, server_clients INTEGER,\n"
     "is_router INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (device, site)",
     ("devices_addr ON devices (hi, lo)",
      "devices_role ON devices (role)",
      "devices_site ON devices (site, hi, lo)",
      "devices_zone ON devices (zone)")),
    ("baseline_devices",
     "device TEXT, hi INTEGER, lo INTEGER, maturity TEXT, reasons TEXT, first_ts INTEGER,\n"
     "last_ts INTEGER, sessions INTEGER, peers INTEGER, ports_used TEXT, ports_served TEXT,\n"
     "ics_ops INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (device, site)",
     ()),
    ("baseline_meta",
     "name TEXT, value TEXT, site TEXT NOT NULL DEFAULT 'default',\n"
     "sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (name, site)",
     ()),
    ("breaches",
     "breach_id INTEGER, model TEXT NOT NULL, category TEXT, severity TEXT, phase TEXT,\n"
     "attack_ids TEXT, device TEXT, devices TEXT, first_ts INTEGER, last_ts INTEGER, score REAL,\n"
     "importance REAL, explanation TEXT, sessions TEXT, refs TEXT, details TEXT,\n"
     "incident_id INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (breach_id, site)",
     ("breaches_device ON breaches (device, first_ts)",
      "breaches_incident ON breaches (incident_id)",
      "breaches_model ON breaches (model, first_ts)",
      "breaches_score ON breaches (score)",
      "breaches_site ON breaches (site, first_ts)",
      "breaches_time ON breaches (first_ts)")),
    ("breach_sessions",
     "breach_id INTEGER, session_id INTEGER, site TEXT NOT NULL DEFAULT 'default',\n"
     "sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (breach_id, session_id, site)",
     ("breach_sessions_session ON breach_sessions (session_id)",)),
    ("incidents",
     "incident_id INTEGER, title TEXT, device TEXT, devices TEXT, first_ts INTEGER,\n"
     "last_ts INTEGER, score REAL, phases TEXT, attack_ids TEXT, narrative TEXT, timeline TEXT,\n"
     "breaches INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (incident_id, site)",
     ("incidents_device ON incidents (device)",
      "incidents_time ON incidents (first_ts)")),
    ("device_scores",
     "device TEXT, ts INTEGER, score REAL, breaches INTEGER, site TEXT NOT NULL DEFAULT 'default',\n"
     "sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (device, ts, site)",
     ("device_scores_ts ON device_scores (ts)",)),
    ("breach_detected",
     "breach_id INTEGER, score REAL, incident_id INTEGER, site TEXT NOT NULL DEFAULT 'default',\n"
     "sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (breach_id, site)",
     ()),
    ("incidents_detected",
     "incident_id INTEGER, title TEXT, device TEXT, devices TEXT, first_ts INTEGER,\n"
     "last_ts INTEGER, score REAL, phases TEXT, attack_ids TEXT, narrative TEXT, timeline TEXT,\n"
     "breaches INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (incident_id, site)",
     ()),
    ("device_scores_detected",
     "device TEXT, ts INTEGER, score REAL, breaches INTEGER, site TEXT NOT NULL DEFAULT 'default',\n"
     "sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (device, ts, site)",
     ()),
    ("breach_triage",
     "breach_id INTEGER, disposition TEXT NOT NULL, ref INTEGER NOT NULL, label TEXT NOT NULL,\n"
     "site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (breach_id, site)",
     ()),
    ("incident_triage",
     "incident_id INTEGER, fate TEXT NOT NULL, note TEXT NOT NULL,\n"
     "site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (incident_id, site)",
     ()),
    ("device_identity",
     "device TEXT NOT NULL, component TEXT NOT NULL, attribute TEXT NOT NULL, value TEXT,\n"
     "source TEXT, first_ts INTEGER, last_ts INTEGER, first_ref INTEGER, last_ref INTEGER,\n"
     "seen INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (device, component, source, attribute, site)",
     ()),
    ("identity_changes",
     "device TEXT NOT NULL, component TEXT NOT NULL, attribute TEXT NOT NULL, source TEXT,\n"
     "old_value TEXT, new_value TEXT, old_ts INTEGER, new_ts INTEGER, old_ref INTEGER,\n"
     "new_ref INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',\n"
     "PRIMARY KEY (device, component, source, attribute, new_ref, site)",
     ()),
)


def _rebuilt(table: str, columns: str, indexes: tuple[str, ...]) -> str:
    """`table` made anew with `columns`: rows copied, the old table dropped, the new one renamed,
    `indexes` made again."""
    body = "\n".join("    " + line for line in columns.split("\n"))
    return (f"CREATE TABLE {table}_v9 (\n{body}\n);\n"
            f"INSERT INTO {table}_v9 SELECT * FROM {table};\nDROP TABLE {table};\n"
            f"ALTER TABLE {table}_v9 RENAME TO {table};\n" + "".join(f"CREATE INDEX {i};\n" for i in indexes))


V9 = "\n" + "".join(_rebuilt(*t) for t in _TABLES)
