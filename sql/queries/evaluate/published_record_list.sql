-- The plain record list of every user, top $1 ranks (what `rotation evaluate --database` scores).
SELECT user_id, item_id, rank
FROM recommendation_data
WHERE list_name = 'records' AND rank <= $1
