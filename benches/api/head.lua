-- wrk script: HEAD on the URL's path (benches/api/run.sh: HEAD /v1/images/{id}, and the baseline).
wrk.method = "HEAD"
