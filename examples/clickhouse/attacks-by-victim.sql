-- DoS attacks by victim, across every node: each victim's attacks, the nodes
-- that saw its backscatter, and the largest estimated Internet-wide rate.
SELECT
    victim,
    count() AS attacks,
    uniqExact(node) AS nodes,
    arrayStringConcat(arraySort(groupUniqArray(protocol)), ',') AS protocols,
    sum(packets) AS packets,
    round(max(est_pps)) AS peak_est_pps,
    min(start_time) AS first_seen,
    max(end_time) AS last_seen
FROM attacks
GROUP BY victim
ORDER BY packets DESC, victim
LIMIT 20
