-- A user worth showing: the one with the most 'records' recommendations explained by seeds.
SELECT user_id
FROM recommendation_data
WHERE list_name = 'records' AND CAST(reason AS TEXT) LIKE '%similar_to%'
GROUP BY user_id
ORDER BY count(*) DESC, user_id
LIMIT 1
