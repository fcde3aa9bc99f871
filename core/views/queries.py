"""The console's read API over the store: small immutable results for the UI's workers.

The functions live in plantwatch.core.views.console, one module per subject (status, filters,
devices, connections, device_detail, breaches, incidents, packets); this module is the import
surface the console uses. Every function takes a `Store` (opened by the calling thread; a read-only one is fine) and returns
frozen dataclasses holding tuples, so a result can be handed to the UI thread as a snapshot that
nothing will change under it. Strings are returned as stored (untrusted when they came off the
wire); the UI escapes them (plantwatch.core.views.textsafe.printable) and renders them as plain text.

Detection tables (breaches, incidents, scores) are read when the store has them; before that,
the results say so (`Status.detection`) instead of inventing numbers.

Filters are small `key:value` languages parsed here, so they can be tested without a UI:
devices `zone:ot role:plc score:>0.5 port:102 new:yes vendor:siemens 10.20`, connections
`device:10.10.10.157 port:102 proto:s7comm state:refused model:scan since:13:00`; every list also
takes `site:NAME` (a store holding many sites; the console without --site reads them all).
"""

from __future__ import annotations

from plantwatch.core.views.console.breach_detail import (  # noqa: F401
    BreachDetail,
    EvidenceRow,
    breach_detail,
)
from plantwatch.core.views.console.breaches import (  # noqa: F401
    Breaches,
    BreachRow,
    breach,
    breaches,
    model_clause,
)
from plantwatch.core.views.console.common import (  # noqa: F401
    APP_IDS,
    LEARN_END_KEY,
    PROTO_NAMES,
    SPARK_BUCKETS,
    FilterError,
    columns,
    detection_ran,
    fmt_ts,
    has_table,
    ip_of,
    learn_end,
    set_learn_end,
    sites,
)
from plantwatch.core.views.console.connections import (  # noqa: F401
    Connections,
    ConnRow,
    Page,
    _conn_where,
    connections,
    count_connections,
)
from plantwatch.core.views.console.device_detail import (  # noqa: F401
    DeviceDetail,
    OpCount,
    Peer,
    Series,
    device_detail,
    score_series,
)
from plantwatch.core.views.console.devices import (  # noqa: F401
    SORT_KEYS,
    DeviceCache,
    DeviceList,
    DeviceRow,
    _devices_on_port,
    activity,
    device_list,
)
from plantwatch.core.views.console.filters import (  # noqa: F401
    ConnFilter,
    DeviceFilter,
    parse_conn_filter,
    parse_device_filter,
    parse_site,
)
from plantwatch.core.views.console.incidents import (  # noqa: F401
    IncidentDetail,
    IncidentRow,
    Incidents,
    Phase,
    TimelineEntry,
    incident_detail,
    incidents,
)
from plantwatch.core.views.console.packets import (  # noqa: F401
    PacketLocation,
    packet_location,
    session_of_ref,
)
from plantwatch.core.views.console.status import (  # noqa: F401
    Status,
    status,
)

__all__ = ['PROTO_NAMES', 'APP_IDS', 'SPARK_BUCKETS', 'LEARN_END_KEY', 'FilterError', 'ip_of', 'fmt_ts', 'has_table', 'detection_ran', 'columns', 'learn_end', 'set_learn_end', 'sites', 'parse_site', 'Status', 'status', 'DeviceFilter', 'ConnFilter', 'parse_device_filter', 'parse_conn_filter', 'DeviceRow', 'DeviceList', 'SORT_KEYS', 'activity', 'DeviceCache', 'device_list', 'ConnRow', 'Connections', 'connections', 'count_connections', 'Peer', 'OpCount', 'Series', 'DeviceDetail', 'device_detail', 'score_series', 'BreachRow', 'Breaches', 'model_clause', 'breaches', 'breach', 'Phase', 'TimelineEntry', 'IncidentRow', 'Incidents', 'incidents', 'IncidentDetail', 'incident_detail', 'PacketLocation', 'packet_location', 'session_of_ref', 'Page', 'BreachDetail', 'EvidenceRow', 'breach_detail']
