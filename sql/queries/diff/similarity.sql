-- Diff: overlap of the two runs' neighbour lists, per similarity_type and source_type: sources
-- with neighbours in either run, mean Jaccard of their top-$1 neighbours (missing on one side
-- counts 0), and the share of sources (in both runs) whose nearest neighbour changed.
WITH b AS (
    SELECT similarity_type, source_type, source_id, rank, target_type || ':' || target_id AS item
    FROM base.content_similarity WHERE rank <= $1
), h AS (
    SELECT similarity_type, source_type, source_id, rank, target_type || ':' || target_id AS item
    FROM head.content_similarity WHERE rank <= $1
), items AS (
    SELECT coalesce(b.similarity_type, h.similarity_type) AS similarity_type,
           coalesce(b.source_type, h.source_type)         AS source_type,
           coalesce(b.source_id, h.source_id)             AS source_id,
           b.item IS NOT NULL AND h.item IS NOT NULL      AS in_both
    FROM b FULL OUTER JOIN h
      ON b.similarity_type = h.similarity_type AND b.source_type = h.source_type
     AND b.source_id = h.source_id AND b.item = h.item
), per_source AS (
    SELECT similarity_type, source_type, source_id,
           count(*) FILTER (WHERE in_both) / count(*) AS jaccard
    FROM items GROUP BY similarity_type, source_type, source_id
), top1 AS (
    SELECT b.similarity_type, b.source_type, b.source_id, b.item <> h.item AS changed
    FROM (SELECT * FROM b WHERE rank = 1) AS b
    JOIN (SELECT * FROM h WHERE rank = 1) AS h USING (similarity_type, source_type, source_id)
)
SELECT p.similarity_type, p.source_type,
       count(*)                        AS sources,
       avg(p.jaccard)                  AS mean_jaccard,
       avg(CAST(t.changed AS DOUBLE))  AS top1_changed_share
FROM per_source AS p
LEFT JOIN top1 AS t USING (similarity_type, source_type, source_id)
GROUP BY p.similarity_type, p.source_type
ORDER BY p.similarity_type, p.source_type
