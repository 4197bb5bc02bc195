-- The telescope's tables, as gantry creates them when missing ([telescope]
-- export, `gantry telescope analyze --export`). Written for ClickHouse 18.16
-- (Debian's clickhouse-server) and later: times are DateTime in UTC (plus ms,
-- the millisecond, where order within a second matters), addresses are text; targets_estimated is 1 when
-- targets is a sketch's estimate (past 4096 distinct targets).
-- Every row names the gantry node that saw it.
--
--   clickhouse-client --multiquery < schema.sql   (after CREATE DATABASE telescope; USE telescope)

CREATE TABLE IF NOT EXISTS http_events (
    time DateTime, ms UInt16, node String,
    source String, host String, method String, path String, user_agent String,
    rule String, category String, status UInt16
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time);

CREATE TABLE IF NOT EXISTS darkport_hits (
    time DateTime, ms UInt16, node String,
    source String, port UInt16, protocol String, bytes UInt32, first_bytes String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time);

CREATE TABLE IF NOT EXISTS scans (
    node String, source String, kind String, protocol String, ports Array(UInt16),
    targets UInt64, targets_estimated UInt8, packets UInt64, start_time DateTime, end_time DateTime, tool String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(start_time) ORDER BY (node, start_time, source);

CREATE TABLE IF NOT EXISTS attacks (
    node String, victim String, protocol String, packets UInt64,
    start_time DateTime, end_time DateTime, max_ppm UInt64, est_pps Float64, ports Array(UInt16)
) ENGINE = MergeTree() PARTITION BY toYYYYMM(start_time) ORDER BY (node, start_time, victim);

-- One row per ban a node issued (source is the unit: an IPv4 /32, an IPv6 /64
-- or an escalated /48); bans a node imported from another are not exported.
CREATE TABLE IF NOT EXISTS bans (
    time DateTime, ms UInt16, node String,
    source String, rule String, sample String, until DateTime, strikes UInt32
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time);
