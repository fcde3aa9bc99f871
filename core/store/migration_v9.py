"""Migration V9: one store, many sites. Keys name their site (the script is frozen here as released).

V8 put `site` on every row but left the keys as they were, so two sites with the same private
addresses (10.0.0.5 at plant-a and at plant-b) shared one devices row, one baseline row, and the
same deterministic session, breach and incident ids. V9 adds `site` as the last column of every
key that names a device, a session, a breach, an incident, a baseline or a capture (a capture is
known per site by its fingerprint: the same file analysed for two sites is two captures). Ids stay
the hashes they were (a store of one site keeps its ids); the site goes into the key only. Site
last, so a lookup by id or device alone still finds its rows through the key's index.

SQLite cannot change a table's key in place: each table is made anew with the same columns in the
same order, its rows copied, the old one dropped and the new one renamed, its indexes made again,
except V8's sessions_site (site, first_ts): with reads now saying `site = ?`, SQLite (no
statistics) took it for every connection query, also one on a port, which sessions_port answers
in time order without reading the site's other sessions. PostgreSQL runs the same script through
core/store/engine/dialect.py.
"""

from __future__ import annotations

V9 = """
CREATE TABLE captures_v9 (
    capture_id INTEGER PRIMARY KEY, path TEXT NOT NULL, fingerprint TEXT NOT NULL,
    size INTEGER NOT NULL, packets INTEGER NOT NULL, first_ts INTEGER, last_ts INTEGER,
    status TEXT NOT NULL, warnings TEXT, head_digest TEXT, stream_end INTEGER,
    stream_digest TEXT, records INTEGER, resumes INTEGER, first_frame INTEGER,
    site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    UNIQUE (fingerprint, site)
);
INSERT INTO captures_v9 SELECT * FROM captures;
DROP TABLE captures;
ALTER TABLE captures_v9 RENAME TO captures;
CREATE INDEX captures_head ON captures (head_digest);
CREATE TABLE sessions_v9 (
    session_id INTEGER, proto INTEGER, state TEXT, app INTEGER, client_hi INTEGER,
    client_lo INTEGER, client_port INTEGER, server_hi INTEGER, server_lo INTEGER,
    server_port INTEGER, client_mac INTEGER, server_mac INTEGER, vlan INTEGER, first_ts INTEGER,
    last_ts INTEGER, pkts_c2s INTEGER, pkts_s2c INTEGER, bytes_c2s INTEGER, bytes_s2c INTEGER,
    payload_c2s INTEGER, payload_s2c INTEGER, first_file INTEGER, first_frame INTEGER,
    last_file INTEGER, last_frame INTEGER, syn_count INTEGER, handshake INTEGER,
    midstream INTEGER, rst_client INTEGER, rst_server INTEGER, icmp_errors INTEGER,
    to_group INTEGER, ev_syn INTEGER, ev_synack INTEGER, ev_rst INTEGER, ev_fin INTEGER,
    ev_unreach INTEGER, ev_dr INTEGER, ev_op INTEGER, ev_tls INTEGER, ev_rdp INTEGER,
    tls_sni TEXT, tls_no_sni INTEGER, tls_ja3_hash TEXT, tls_version INTEGER, cert_subject TEXT,
    cert_issuer TEXT, cert_self_signed INTEGER, rdp_cookie TEXT, n_ops INTEGER,
    site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, site)
);
INSERT INTO sessions_v9 SELECT * FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v9 RENAME TO sessions;
CREATE INDEX sessions_app ON sessions (app, first_ts);
CREATE INDEX sessions_client ON sessions (client_hi, client_lo, first_ts);
CREATE INDEX sessions_client_port ON sessions (client_hi, client_lo, server_port);
CREATE INDEX sessions_first_ts ON sessions (first_ts);
CREATE INDEX sessions_last_ts ON sessions (last_ts);
CREATE INDEX sessions_port ON sessions (server_port, first_ts);
CREATE INDEX sessions_server ON sessions (server_hi, server_lo, first_ts);
CREATE INDEX sessions_server_port ON sessions (server_hi, server_lo, server_port);
CREATE INDEX sessions_state ON sessions (state);
CREATE TABLE session_ops_v9 (
    session_id INTEGER, client_hi INTEGER, client_lo INTEGER, server_hi INTEGER,
    server_lo INTEGER, server_port INTEGER, src_hi INTEGER, src_lo INTEGER, dst_hi INTEGER,
    dst_lo INTEGER, app INTEGER, code INTEGER, cls INTEGER, name TEXT, from_client INTEGER,
    requests INTEGER, count INTEGER, exceptions INTEGER, first_file INTEGER,
    first_frame INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, app, code, cls, name, from_client, requests, site)
);
INSERT INTO session_ops_v9 SELECT * FROM session_ops;
DROP TABLE session_ops;
ALTER TABLE session_ops_v9 RENAME TO session_ops;
CREATE INDEX session_ops_cls ON session_ops (cls, app, code);
CREATE INDEX session_ops_dst ON session_ops (dst_hi, dst_lo);
CREATE INDEX session_ops_src ON session_ops (src_hi, src_lo);
CREATE TABLE devices_v9 (
    device TEXT, hi INTEGER, lo INTEGER, ip TEXT, mac INTEGER, vendor TEXT, name TEXT,
    name_source TEXT, names TEXT, zone TEXT, zone_kind TEXT, vlan INTEGER, role TEXT,
    role_reasons TEXT, first_ts INTEGER, last_ts INTEGER, pkts_sent INTEGER, pkts_recv INTEGER,
    bytes_sent INTEGER, bytes_recv INTEGER, sessions_client INTEGER, sessions_server INTEGER,
    failed_client INTEGER, peers INTEGER, clients INTEGER, servers INTEGER, ics_used TEXT,
    ics_served TEXT, ics_clients INTEGER, ics_servers_read INTEGER, read_ops INTEGER,
    discover_ops INTEGER, action_ops INTEGER, reprogram_ops INTEGER, server_clients INTEGER,
    is_router INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, site)
);
INSERT INTO devices_v9 SELECT * FROM devices;
DROP TABLE devices;
ALTER TABLE devices_v9 RENAME TO devices;
CREATE INDEX devices_addr ON devices (hi, lo);
CREATE INDEX devices_role ON devices (role);
CREATE INDEX devices_site ON devices (site, hi, lo);
CREATE INDEX devices_zone ON devices (zone);
CREATE TABLE baseline_devices_v9 (
    device TEXT, hi INTEGER, lo INTEGER, maturity TEXT, reasons TEXT, first_ts INTEGER,
    last_ts INTEGER, sessions INTEGER, peers INTEGER, ports_used TEXT, ports_served TEXT,
    ics_ops INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, site)
);
INSERT INTO baseline_devices_v9 SELECT * FROM baseline_devices;
DROP TABLE baseline_devices;
ALTER TABLE baseline_devices_v9 RENAME TO baseline_devices;
CREATE TABLE baseline_meta_v9 (
    name TEXT, value TEXT, site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (name, site)
);
INSERT INTO baseline_meta_v9 SELECT * FROM baseline_meta;
DROP TABLE baseline_meta;
ALTER TABLE baseline_meta_v9 RENAME TO baseline_meta;
CREATE TABLE breaches_v9 (
    breach_id INTEGER, model TEXT NOT NULL, category TEXT, severity TEXT, phase TEXT,
    attack_ids TEXT, device TEXT, devices TEXT, first_ts INTEGER, last_ts INTEGER, score REAL,
    importance REAL, explanation TEXT, sessions TEXT, refs TEXT, details TEXT,
    incident_id INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (breach_id, site)
);
INSERT INTO breaches_v9 SELECT * FROM breaches;
DROP TABLE breaches;
ALTER TABLE breaches_v9 RENAME TO breaches;
CREATE INDEX breaches_device ON breaches (device, first_ts);
CREATE INDEX breaches_incident ON breaches (incident_id);
CREATE INDEX breaches_model ON breaches (model, first_ts);
CREATE INDEX breaches_score ON breaches (score);
CREATE INDEX breaches_site ON breaches (site, first_ts);
CREATE INDEX breaches_time ON breaches (first_ts);
CREATE TABLE breach_sessions_v9 (
    breach_id INTEGER, session_id INTEGER, site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (breach_id, session_id, site)
);
INSERT INTO breach_sessions_v9 SELECT * FROM breach_sessions;
DROP TABLE breach_sessions;
ALTER TABLE breach_sessions_v9 RENAME TO breach_sessions;
CREATE INDEX breach_sessions_session ON breach_sessions (session_id);
CREATE TABLE incidents_v9 (
    incident_id INTEGER, title TEXT, device TEXT, devices TEXT, first_ts INTEGER,
    last_ts INTEGER, score REAL, phases TEXT, attack_ids TEXT, narrative TEXT, timeline TEXT,
    breaches INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, site)
);
INSERT INTO incidents_v9 SELECT * FROM incidents;
DROP TABLE incidents;
ALTER TABLE incidents_v9 RENAME TO incidents;
CREATE INDEX incidents_device ON incidents (device);
CREATE INDEX incidents_time ON incidents (first_ts);
CREATE TABLE device_scores_v9 (
    device TEXT, ts INTEGER, score REAL, breaches INTEGER, site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (device, ts, site)
);
INSERT INTO device_scores_v9 SELECT * FROM device_scores;
DROP TABLE device_scores;
ALTER TABLE device_scores_v9 RENAME TO device_scores;
CREATE INDEX device_scores_ts ON device_scores (ts);
CREATE TABLE breach_detected_v9 (
    breach_id INTEGER, score REAL, incident_id INTEGER, site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (breach_id, site)
);
INSERT INTO breach_detected_v9 SELECT * FROM breach_detected;
DROP TABLE breach_detected;
ALTER TABLE breach_detected_v9 RENAME TO breach_detected;
CREATE TABLE incidents_detected_v9 (
    incident_id INTEGER, title TEXT, device TEXT, devices TEXT, first_ts INTEGER,
    last_ts INTEGER, score REAL, phases TEXT, attack_ids TEXT, narrative TEXT, timeline TEXT,
    breaches INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, site)
);
INSERT INTO incidents_detected_v9 SELECT * FROM incidents_detected;
DROP TABLE incidents_detected;
ALTER TABLE incidents_detected_v9 RENAME TO incidents_detected;
CREATE TABLE device_scores_detected_v9 (
    device TEXT, ts INTEGER, score REAL, breaches INTEGER, site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '', PRIMARY KEY (device, ts, site)
);
INSERT INTO device_scores_detected_v9 SELECT * FROM device_scores_detected;
DROP TABLE device_scores_detected;
ALTER TABLE device_scores_detected_v9 RENAME TO device_scores_detected;
CREATE TABLE breach_triage_v9 (
    breach_id INTEGER, disposition TEXT NOT NULL, ref INTEGER NOT NULL, label TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (breach_id, site)
);
INSERT INTO breach_triage_v9 SELECT * FROM breach_triage;
DROP TABLE breach_triage;
ALTER TABLE breach_triage_v9 RENAME TO breach_triage;
CREATE TABLE incident_triage_v9 (
    incident_id INTEGER, fate TEXT NOT NULL, note TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, site)
);
INSERT INTO incident_triage_v9 SELECT * FROM incident_triage;
DROP TABLE incident_triage;
ALTER TABLE incident_triage_v9 RENAME TO incident_triage;
CREATE TABLE device_identity_v9 (
    device TEXT NOT NULL, component TEXT NOT NULL, attribute TEXT NOT NULL, value TEXT,
    source TEXT, first_ts INTEGER, last_ts INTEGER, first_ref INTEGER, last_ref INTEGER,
    seen INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, component, source, attribute, site)
);
INSERT INTO device_identity_v9 SELECT * FROM device_identity;
DROP TABLE device_identity;
ALTER TABLE device_identity_v9 RENAME TO device_identity;
CREATE TABLE identity_changes_v9 (
    device TEXT NOT NULL, component TEXT NOT NULL, attribute TEXT NOT NULL, source TEXT,
    old_value TEXT, new_value TEXT, old_ts INTEGER, new_ts INTEGER, old_ref INTEGER,
    new_ref INTEGER, site TEXT NOT NULL DEFAULT 'default', sensor TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, component, source, attribute, new_ref, site)
);
INSERT INTO identity_changes_v9 SELECT * FROM identity_changes;
DROP TABLE identity_changes;
ALTER TABLE identity_changes_v9 RENAME TO identity_changes;
"""
