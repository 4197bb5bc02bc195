-- Unsolicited HTTP requests of the last day by rule, per node: what each node
-- is being probed for, and by how many sources.
SELECT
    node,
    category,
    rule,
    count() AS requests,
    uniqExact(source) AS sources
FROM http_events
WHERE time >= now() - INTERVAL 1 DAY
GROUP BY node, category, rule
ORDER BY node, requests DESC, rule
