package export

// The tables, in the SQL of ClickHouse 18.16 (Debian's clickhouse-server), the
// oldest server this targets: no DateTime64 (a ms column keeps the order within a
// second), no IPv4/IPv6 types (addresses are text) and no LowCardinality. Every
// row carries node, the gantry that saw it, so that one database serves a fleet.
// examples/clickhouse/schema.sql is this text; a test keeps them the same.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS http_events (
    time DateTime, ms UInt16, node String,
    source String, host String, method String, path String, user_agent String,
    rule String, category String, status UInt16
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time)`,
	`CREATE TABLE IF NOT EXISTS darkport_hits (
    time DateTime, ms UInt16, node String,
    source String, port UInt16, protocol String, bytes UInt32, first_bytes String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time)`,
	`CREATE TABLE IF NOT EXISTS scans (
    node String, source String, kind String, protocol String, ports Array(UInt16),
    targets UInt64, targets_estimated UInt8, packets UInt64, start_time DateTime, end_time DateTime, tool String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(start_time) ORDER BY (node, start_time, source)`,
	`CREATE TABLE IF NOT EXISTS attacks (
    node String, victim String, protocol String, packets UInt64,
    start_time DateTime, end_time DateTime, max_ppm UInt64, est_pps Float64, ports Array(UInt16)
) ENGINE = MergeTree() PARTITION BY toYYYYMM(start_time) ORDER BY (node, start_time, victim)`,
	`CREATE TABLE IF NOT EXISTS bans (
    time DateTime, ms UInt16, node String,
    source String, rule String, sample String, until DateTime, strikes UInt32
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (node, time)`,
}
