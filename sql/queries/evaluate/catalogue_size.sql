SELECT count(*) AS records FROM records
