-- Top scanners this week, across every node: the sources behind the most scan
-- packets the packet telescopes saw, how many nodes saw each, and the tools.
SELECT
    source,
    uniqExact(node) AS nodes,
    count() AS scans,
    sum(packets) AS packets,
    max(targets) AS max_targets,
    arrayStringConcat(arraySort(groupUniqArray(protocol)), ',') AS protocols,
    arrayStringConcat(arraySort(arrayFilter(x -> x != '', groupUniqArray(tool))), ',') AS tools
FROM scans
WHERE start_time >= now() - INTERVAL 7 DAY
GROUP BY source
ORDER BY packets DESC, source
LIMIT 20
