"""The store's schema: one SQL script per version, applied in order, never edited once released.

A change to a table is a new script appended to MIGRATIONS. tests/test_store.py checks that the
tables hold every column of the frames written to them (plantwatch.core.flows.sessions.SESSIONS, SESSION_OPS,
plantwatch.core.inventory.devices.DEVICES), so the frames and the schema cannot drift apart silently.

Conventions: packet times are ns since the epoch (packet time); 64-bit unsigned values (address
halves) are stored as their signed two's-complement reinterpretation; lists are JSON text;
booleans are 0/1; packet references are `capture_id << 32 | frame`.
"""

from __future__ import annotations

from plantwatch.core.store.migration_v9 import V9

V1 = """
CREATE TABLE captures (
    capture_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    first_ts INTEGER,
    last_ts INTEGER,
    status TEXT NOT NULL,      -- complete | truncated
    warnings TEXT              -- JSON list of the reader's warnings
);
CREATE TABLE sessions (
    session_id INTEGER,
    proto INTEGER,
    state TEXT,
    app INTEGER,
    client_hi INTEGER,
    client_lo INTEGER,
    client_port INTEGER,
    server_hi INTEGER,
    server_lo INTEGER,
    server_port INTEGER,
    client_mac INTEGER,
    server_mac INTEGER,
    vlan INTEGER,
    first_ts INTEGER,
    last_ts INTEGER,
    pkts_c2s INTEGER,
    pkts_s2c INTEGER,
    bytes_c2s INTEGER,
    bytes_s2c INTEGER,
    payload_c2s INTEGER,
    payload_s2c INTEGER,
    first_file INTEGER,
    first_frame INTEGER,
    last_file INTEGER,
    last_frame INTEGER,
    syn_count INTEGER,
    handshake INTEGER,
    midstream INTEGER,
    rst_client INTEGER,
    rst_server INTEGER,
    icmp_errors INTEGER,
    to_group INTEGER,
    ev_syn INTEGER,
    ev_synack INTEGER,
    ev_rst INTEGER,
    ev_fin INTEGER,
    ev_unreach INTEGER,
    ev_dr INTEGER,
    ev_op INTEGER,
    ev_tls INTEGER,
    ev_rdp INTEGER,
    tls_sni TEXT,
    tls_no_sni INTEGER,
    tls_ja3_hash TEXT,
    tls_version INTEGER,
    cert_subject TEXT,
    cert_issuer TEXT,
    cert_self_signed INTEGER,
    rdp_cookie TEXT,
    n_ops INTEGER,
    PRIMARY KEY (session_id)
);
CREATE INDEX sessions_first_ts ON sessions (first_ts);
CREATE INDEX sessions_last_ts ON sessions (last_ts);
CREATE INDEX sessions_client ON sessions (client_hi, client_lo, first_ts);
CREATE INDEX sessions_server ON sessions (server_hi, server_lo, first_ts);
CREATE INDEX sessions_port ON sessions (server_port, first_ts);
CREATE INDEX sessions_app ON sessions (app, first_ts);
CREATE INDEX sessions_state ON sessions (state);
CREATE TABLE session_ops (
    session_id INTEGER,
    client_hi INTEGER,
    client_lo INTEGER,
    server_hi INTEGER,
    server_lo INTEGER,
    server_port INTEGER,
    src_hi INTEGER,
    src_lo INTEGER,
    dst_hi INTEGER,
    dst_lo INTEGER,
    app INTEGER,
    code INTEGER,
    cls INTEGER,
    name TEXT,
    from_client INTEGER,
    requests INTEGER,
    count INTEGER,
    exceptions INTEGER,
    first_file INTEGER,
    first_frame INTEGER,
    PRIMARY KEY (session_id, app, code, cls, name, from_client, requests)
);
CREATE INDEX session_ops_src ON session_ops (src_hi, src_lo);
CREATE INDEX session_ops_dst ON session_ops (dst_hi, dst_lo);
CREATE INDEX session_ops_cls ON session_ops (cls, app, code);
CREATE TABLE devices (
    device TEXT,
    hi INTEGER,
    lo INTEGER,
    ip TEXT,
    mac INTEGER,
    vendor TEXT,
    name TEXT,
    name_source TEXT,
    names TEXT,
    zone TEXT,
    zone_kind TEXT,
    vlan INTEGER,
    role TEXT,
    role_reasons TEXT,
    first_ts INTEGER,
    last_ts INTEGER,
    pkts_sent INTEGER,
    pkts_recv INTEGER,
    bytes_sent INTEGER,
    bytes_recv INTEGER,
    sessions_client INTEGER,
    sessions_server INTEGER,
    failed_client INTEGER,
    peers INTEGER,
    clients INTEGER,
    servers INTEGER,
    ics_used TEXT,
    ics_served TEXT,
    ics_clients INTEGER,
    ics_servers_read INTEGER,
    read_ops INTEGER,
    discover_ops INTEGER,
    action_ops INTEGER,
    reprogram_ops INTEGER,
    server_clients INTEGER,
    is_router INTEGER,
    PRIMARY KEY (device)
);
CREATE INDEX devices_role ON devices (role);
CREATE INDEX devices_zone ON devices (zone);
CREATE INDEX devices_addr ON devices (hi, lo);
CREATE TABLE state (
    name TEXT PRIMARY KEY,     -- pipeline state kept across runs (open sessions, inventory)
    value BLOB
);
"""

# V2: the pattern of life and what deviates from it (core/detection/baseline.py, core/detection/detector.py).
V2 = """
CREATE TABLE baseline_devices (
    device TEXT PRIMARY KEY,   -- IP text (devices.device)
    hi INTEGER,
    lo INTEGER,
    maturity TEXT,             -- learning | mature
    reasons TEXT,              -- why, in words, clauses separated by a semicolon and a space
    first_ts INTEGER,          -- first/last session seen while learning (ns, packet time)
    last_ts INTEGER,
    sessions INTEGER,          -- sessions it took part in (client or server) in the baseline
    peers INTEGER,             -- distinct peers in the baseline
    ports_used TEXT,           -- JSON list of server ports it used as a client (top 20)
    ports_served TEXT,         -- JSON list of ports it served (top 20)
    ics_ops INTEGER            -- ICS operations it sent in the baseline
);
CREATE TABLE baseline_meta (
    name TEXT PRIMARY KEY,     -- first_ts, last_ts, hours, runs, maturity
    value TEXT
);
CREATE TABLE breaches (
    breach_id INTEGER PRIMARY KEY,  -- 63-bit deterministic id
    model TEXT NOT NULL,       -- model id (core/detection/models/, since V4; before: its title)
    category TEXT,             -- model category (Device, Network, ICS, ...)
    severity TEXT,             -- low | medium | high | critical (the model's default)
    phase TEXT,                -- entry | privilege | discovery | lateral movement | command and control | impact
    attack_ids TEXT,           -- JSON list of MITRE ATT&CK for ICS technique ids
    device TEXT,               -- the device that did it (devices.device)
    devices TEXT,              -- JSON list: the device first, then the devices it targeted
    first_ts INTEGER,          -- time span of the evidence (ns, packet time)
    last_ts INTEGER,
    score REAL,                -- 0..1
    importance REAL,           -- statistical importance: -log10 of the probability under the baseline
    explanation TEXT,          -- one sentence quoting the baseline numbers
    sessions TEXT,             -- JSON list of session ids (evidence, at most 50)
    refs TEXT,                 -- JSON list of packet refs capture_id << 32 | frame (at most 50)
    details TEXT,              -- JSON object of the counts behind the explanation
    incident_id INTEGER        -- incidents.incident_id, null when it is in none
);
CREATE INDEX breaches_time ON breaches (first_ts);
CREATE INDEX breaches_device ON breaches (device, first_ts);
CREATE INDEX breaches_model ON breaches (model, first_ts);
CREATE INDEX breaches_incident ON breaches (incident_id);
CREATE INDEX breaches_score ON breaches (score);
CREATE TABLE breach_sessions (
    breach_id INTEGER,         -- breaches.breach_id
    session_id INTEGER,        -- sessions.session_id (evidence)
    PRIMARY KEY (breach_id, session_id)
);
CREATE INDEX breach_sessions_session ON breach_sessions (session_id);
CREATE TABLE incidents (
    incident_id INTEGER PRIMARY KEY,  -- 63-bit deterministic id
    title TEXT,                -- "Network reconnaissance and ICS access by new device 10.10.10.157"
    device TEXT,               -- the main device (highest threat score)
    devices TEXT,              -- JSON list of involved devices
    first_ts INTEGER,
    last_ts INTEGER,
    score REAL,                -- 0..1, combined score of its breaches
    phases TEXT,               -- JSON list of {phase, first_ts, last_ts, models, attack_ids}, in time order
    attack_ids TEXT,           -- JSON list
    narrative TEXT,            -- a few sentences a plant engineer can read aloud
    timeline TEXT,             -- JSON list of {ts, phase, model, device, explanation, breach_id}
    breaches INTEGER           -- number of breaches in it
);
CREATE INDEX incidents_time ON incidents (first_ts);
CREATE INDEX incidents_device ON incidents (device);
CREATE TABLE device_scores (
    device TEXT,               -- devices.device
    ts INTEGER,                -- start of the hour (ns, packet time)
    score REAL,                -- threat score 0..1 in that hour (the "mathematical importance" chart)
    breaches INTEGER,          -- breaches of the device (as actor or target) active in that hour
    PRIMARY KEY (device, ts)
);
CREATE INDEX device_scores_ts ON device_scores (ts);
"""

# V3: the console's port filter (devices that served or used a port) answers with two index probes
# per device instead of reading every session on that port. The address leads, so a query on the
# port alone keeps using sessions_port, which also gives it the time order.
V3 = """
CREATE INDEX sessions_server_port ON sessions (server_hi, server_lo, server_port);
CREATE INDEX sessions_client_port ON sessions (client_hi, client_lo, server_port);
"""

# V4: models are known by a stable id (plantwatch.core.detection.models); the title is display only.
# Stored titles become ids: breaches.model, the models of incidents' phases and timelines, and the
# model states of the last run in baseline_meta. The mapping is frozen here as it was at V4.
# (Breach details and explanations are words for people and keep quoting titles.)
V4_MODEL_IDS: dict[str, str] = {
    "Multiple Failed Internal Connections": "net.failed_internal",
    "Multiple Failed Connections to ICS Device": "ics.failed_connections",
    "Anomalous IT to ICS Connection": "ics.it_to_ics",
    "Unusual ICS Connectivity": "ics.connectivity",
    "Experimental / Possible ICS Protocol": "ics.protocol",
    "Multiple New Discover Commands": "ics.new_discover",
    "Multiple New Action Commands": "ics.new_action",
    "Uncommon ICS Reprogram": "ics.reprogram",
    "Unusual Admin RDP Session": "rdp.admin",
    "Anomalous SSL without SNI to New External": "tls.no_sni",
    "Rare External SSL Self-Signed": "tls.self_signed",
    "Unusual Data Volume": "net.data_volume",
    "Unusual External Connectivity": "net.external",
    "Unusual Activity from New Device": "device.new",
}


def _sql_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _v4() -> str:
    case = " ".join(f"WHEN {_sql_text(k)} THEN {_sql_text(v)}" for k, v in V4_MODEL_IDS.items())

    def in_json(col: str) -> str:  # a title as a JSON string ("...") inside a JSON text column
        expr = col
        for k, v in V4_MODEL_IDS.items():
            expr = f"REPLACE({expr}, {_sql_text(chr(34) + k + chr(34))}, {_sql_text(chr(34) + v + chr(34))})"
        return expr

    return (f"UPDATE breaches SET model = CASE model {case} ELSE model END;\n"
            f"UPDATE incidents SET phases = {in_json('phases')}, timeline = {in_json('timeline')};\n"
            f"UPDATE baseline_meta SET value = {in_json('value')} WHERE name = 'models';\n")


V4 = _v4()

# V5: the store says what it is (application id, core/store/recognise.py), and each capture keeps
# what recognises a later file that continues it or repeats it (core/capture/continuation.py):
# the digest of its decompressed bytes up to the end of its last whole block, that offset, the
# records before it, and the digest of its first bytes to find candidates by. A capture that
# continues a stored one names it in `resumes` and counts its records from `first_frame`.
V5 = f"""
PRAGMA application_id = {0x506C5774};
ALTER TABLE captures ADD COLUMN head_digest TEXT;   -- sha256 of the first HEAD_BYTES bytes (hex)
ALTER TABLE captures ADD COLUMN stream_end INTEGER; -- decompressed offset after its last whole block
ALTER TABLE captures ADD COLUMN stream_digest TEXT; -- sha256 of bytes [0, stream_end) (hex)
ALTER TABLE captures ADD COLUMN records INTEGER;    -- records (frames) in bytes [0, stream_end)
ALTER TABLE captures ADD COLUMN resumes INTEGER;    -- captures.capture_id whose records it continues
ALTER TABLE captures ADD COLUMN first_frame INTEGER; -- first frame counted in this row (1, or after resumes')
CREATE INDEX captures_head ON captures (head_digest);
"""

# V6: the analyst's loop (plantwatch.core.detection.triage, plantwatch.core.store.triage). Triage
# times (`at`, `withdrawn_at`) are wall-clock ns: they record human actions. Rules and windows match
# on packet time. `breaches.score`/`incident_id`, `incidents` and `device_scores` hold the effective
# (triaged) values; the *_detected tables keep what detection wrote, so withdrawing restores it.
V6 = """
CREATE TABLE triage_states (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,        -- breach | incident
    target_id INTEGER NOT NULL,  -- breaches.breach_id or incidents.incident_id
    state TEXT NOT NULL,       -- new | acknowledged | resolved | false positive
    note TEXT NOT NULL,
    user TEXT NOT NULL,        -- local user name
    at INTEGER NOT NULL        -- wall-clock ns
);
CREATE INDEX triage_states_target ON triage_states (kind, target_id, seq);
CREATE TABLE acceptances (
    accept_id INTEGER PRIMARY KEY AUTOINCREMENT,
    breach_id INTEGER NOT NULL, -- the breach it was taken from
    model TEXT NOT NULL,       -- model id
    actor TEXT NOT NULL,       -- the device
    targets TEXT NOT NULL,     -- JSON list of accepted targets
    keys TEXT NOT NULL,        -- JSON list of [name, [values]] (user, protocol, operations, ports...)
    why TEXT NOT NULL,
    user TEXT NOT NULL,
    at INTEGER NOT NULL,
    withdrawn_at INTEGER,      -- null while in force
    withdrawn_by TEXT
);
CREATE TABLE rulesets (
    ruleset_id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,        -- the file it was loaded from
    body TEXT NOT NULL,        -- the file's text, as loaded
    sha256 TEXT NOT NULL,
    user TEXT NOT NULL,
    at INTEGER NOT NULL,
    withdrawn_at INTEGER,      -- null while in force (loading a file withdraws the one before)
    withdrawn_by TEXT
);
CREATE TABLE windows (
    window_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    start_ts INTEGER NOT NULL, -- packet time ns
    end_ts INTEGER NOT NULL,
    devices TEXT NOT NULL,     -- JSON list: who does the work (addresses, CIDRs, name globs)
    targets TEXT NOT NULL,     -- JSON list: on what (empty: any)
    classes TEXT NOT NULL,     -- JSON list of operation classes expected (empty: any)
    note TEXT NOT NULL,
    user TEXT NOT NULL,
    at INTEGER NOT NULL,
    withdrawn_at INTEGER,
    withdrawn_by TEXT
);
CREATE TABLE breach_detected (
    breach_id INTEGER PRIMARY KEY,  -- breaches.breach_id
    score REAL,                -- the score detection gave
    incident_id INTEGER        -- the incident detection put it in
);
INSERT INTO breach_detected SELECT breach_id, score, incident_id FROM breaches;
CREATE TABLE incidents_detected (  -- the incidents as detection wrote them (columns as incidents)
    incident_id INTEGER PRIMARY KEY,
    title TEXT,
    device TEXT,
    devices TEXT,
    first_ts INTEGER,
    last_ts INTEGER,
    score REAL,
    phases TEXT,
    attack_ids TEXT,
    narrative TEXT,
    timeline TEXT,
    breaches INTEGER
);
INSERT INTO incidents_detected SELECT incident_id, title, device, devices, first_ts, last_ts, score, phases,
    attack_ids, narrative, timeline, breaches FROM incidents;
CREATE TABLE device_scores_detected (  -- device_scores as detection wrote them
    device TEXT,
    ts INTEGER,
    score REAL,
    breaches INTEGER,
    PRIMARY KEY (device, ts)
);
INSERT INTO device_scores_detected SELECT device, ts, score, breaches FROM device_scores;
CREATE TABLE breach_triage (
    breach_id INTEGER PRIMARY KEY,  -- breaches.breach_id
    disposition TEXT NOT NULL, -- accepted | suppressed | window
    ref INTEGER NOT NULL,      -- acceptances.accept_id, rulesets.ruleset_id or windows.window_id
    label TEXT NOT NULL        -- the acceptance's why, the rule's name or the window's name
);
CREATE TABLE incident_triage (
    incident_id INTEGER PRIMARY KEY,  -- incidents_detected.incident_id
    fate TEXT NOT NULL,        -- rescored | dissolved
    note TEXT NOT NULL
);
"""


# V7: device identity from the wire (core/inventory/identity.py) and imported vulnerability
# advisories (core/store/vulns.py). Versions are JSON: a list of ranges, each with any of
# "version" (exact), "from"/"from_excl" (lower bound, inclusive/exclusive), "to"/"to_excl".
V7 = """
CREATE TABLE device_identity (
    device TEXT NOT NULL,      -- devices.device
    component TEXT NOT NULL,   -- '' the device itself; else a module behind it ('backplane slot 0')
    attribute TEXT NOT NULL,   -- model | firmware | serial | vendor | product ... (core/decode/identity.py)
    value TEXT,
    source TEXT,               -- protocol that stated it: s7comm | modbus | enip | bacnet
    first_ts INTEGER, last_ts INTEGER,    -- packet time the value was first and last stated
    first_ref INTEGER, last_ref INTEGER,  -- packet refs proving it (capture_id << 32 | frame)
    seen INTEGER,              -- answers that stated this value
    PRIMARY KEY (device, component, source, attribute)
);
CREATE TABLE identity_changes (
    device TEXT NOT NULL, component TEXT NOT NULL, attribute TEXT NOT NULL, source TEXT,
    old_value TEXT, new_value TEXT, old_ts INTEGER, new_ts INTEGER,
    old_ref INTEGER,           -- the last frame that stated the old value
    new_ref INTEGER,           -- the first frame that stated the new one
    PRIMARY KEY (device, component, source, attribute, new_ref)
);
CREATE TABLE vuln_advisories (
    advisory_id TEXT PRIMARY KEY,  -- ICSA-24-xxx-xx (CSAF tracking id) or the CVE id (NVD)
    source TEXT,               -- csaf | nvd
    title TEXT,
    published TEXT,
    url TEXT,
    imported_from TEXT         -- the file it came from
);
CREATE TABLE vuln_products (
    advisory_id TEXT NOT NULL,
    cve TEXT NOT NULL,
    vendor TEXT NOT NULL,      -- normalised vendor (core/data/vendor_aliases.tsv)
    product TEXT NOT NULL,     -- as the advisory names it
    versions TEXT NOT NULL,    -- JSON list of ranges (see above); [] = every version
    cvss REAL,                 -- CVSS base score (v3 when given, else v2)
    cpe TEXT,
    PRIMARY KEY (advisory_id, cve, vendor, product, versions)
);
CREATE INDEX vuln_products_vendor ON vuln_products (vendor);
"""

# V8: many sensors, many sites, one store (PostgreSQL, README: Running at scale). Every row says
# which site it belongs to and which sensor wrote it; a store of one box keeps site 'default'.
# Written by Store.upsert from the store's site and sensor (core/store/database.py); rows a single
# statement inserts take the defaults. Pipeline state is kept per site and named sensor (an
# unnamed one: sensor ''), so sensors writing into one store each resume their own. The tables
# are frozen here as they were at V8.
V8_TABLES = (
    "captures", "sessions", "session_ops", "devices", "baseline_devices", "baseline_meta",
    "breaches", "breach_sessions", "incidents", "device_scores", "triage_states", "acceptances",
    "rulesets", "windows", "breach_detected", "incidents_detected", "device_scores_detected",
    "breach_triage", "incident_triage", "device_identity", "identity_changes", "vuln_advisories",
    "vuln_products",
)
V8 = "".join(f"ALTER TABLE {t} ADD COLUMN site TEXT NOT NULL DEFAULT 'default';\n"
             f"ALTER TABLE {t} ADD COLUMN sensor TEXT NOT NULL DEFAULT '';\n" for t in V8_TABLES) + """
CREATE TABLE state_v8 (
    site TEXT NOT NULL DEFAULT 'default',
    sensor TEXT NOT NULL DEFAULT '',   -- the sensor's name (--sensor), '' when not named
    name TEXT NOT NULL,
    value BLOB,
    PRIMARY KEY (site, sensor, name)
);
INSERT INTO state_v8 (name, value) SELECT name, value FROM state;
DROP TABLE state;
ALTER TABLE state_v8 RENAME TO state;
CREATE INDEX devices_site ON devices (site, hi, lo);
CREATE INDEX sessions_site ON sessions (site, first_ts);
CREATE INDEX breaches_site ON breaches (site, first_ts);
"""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9)

# The primary key of each table written through Store.upsert (since V9 the site is the last column
# of every key that names a device, session, breach, incident, baseline or capture).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "captures": ("fingerprint", "site"),
    "sessions": ("session_id", "site"),
    "session_ops": ("session_id", "app", "code", "cls", "name", "from_client", "requests", "site"),
    "devices": ("device", "site"),
    "state": ("site", "sensor", "name"),
    "baseline_devices": ("device", "site"),
    "baseline_meta": ("name", "site"),
    "breaches": ("breach_id", "site"),
    "breach_sessions": ("breach_id", "session_id", "site"),
    "incidents": ("incident_id", "site"),
    "device_scores": ("device", "ts", "site"),
    "breach_detected": ("breach_id", "site"),
    "incidents_detected": ("incident_id", "site"),
    "device_scores_detected": ("device", "ts", "site"),
    "device_identity": ("device", "component", "source", "attribute", "site"),
    "identity_changes": ("device", "component", "source", "attribute", "new_ref", "site"),
    "vuln_advisories": ("advisory_id",),
    "vuln_products": ("advisory_id", "cve", "vendor", "product", "versions"),
}
