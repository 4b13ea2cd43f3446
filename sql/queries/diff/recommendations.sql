-- Diff: overlap of the two runs' recommendation lists, per list: users with a list in either
-- run, mean Jaccard of their top-$1 items (a list missing on one side counts 0), and the share
-- of users (with a list in both runs) whose first item changed.
WITH b AS (
    SELECT user_id, list_name, rank, coalesce(CAST(item_id AS VARCHAR), item_key) AS item
    FROM base.recommendation_data WHERE data_type = 'recommendation' AND rank <= $1
), h AS (
    SELECT user_id, list_name, rank, coalesce(CAST(item_id AS VARCHAR), item_key) AS item
    FROM head.recommendation_data WHERE data_type = 'recommendation' AND rank <= $1
), items AS (
    SELECT coalesce(b.list_name, h.list_name) AS list_name,
           coalesce(b.user_id, h.user_id)     AS user_id,
           b.item IS NOT NULL AND h.item IS NOT NULL AS in_both,
           b.item IS NOT NULL AS in_base, h.item IS NOT NULL AS in_head
    FROM b FULL OUTER JOIN h
      ON b.user_id = h.user_id AND b.list_name = h.list_name AND b.item = h.item
), per_user AS (
    SELECT list_name, user_id,
           count(*) FILTER (WHERE in_both) / count(*) AS jaccard,
           bool_or(in_base) AND bool_or(in_head)       AS in_both_runs
    FROM items GROUP BY list_name, user_id
), top1 AS (
    SELECT b.list_name, b.user_id, b.item <> h.item AS changed
    FROM (SELECT * FROM b WHERE rank = 1) AS b
    JOIN (SELECT * FROM h WHERE rank = 1) AS h USING (user_id, list_name)
)
SELECT p.list_name,
       count(*)                                      AS users,
       count(*) FILTER (WHERE p.in_both_runs)        AS users_in_both,
       avg(p.jaccard)                                AS mean_jaccard,
       avg(CAST(t.changed AS DOUBLE))                AS top1_changed_share
FROM per_user AS p
LEFT JOIN top1 AS t ON t.list_name = p.list_name AND t.user_id = p.user_id
GROUP BY p.list_name
ORDER BY p.list_name <> 'records', p.list_name
