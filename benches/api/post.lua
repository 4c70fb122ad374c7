-- wrk script: POST /v1/images metadata only (benches/api/run.sh): the metadata in x-image-meta-*
-- headers and no body, so every request creates one queued image record.
wrk.method = "POST"
wrk.headers["x-image-meta-name"] = "wrk-bench"
wrk.headers["x-image-meta-disk_format"] = "raw"
wrk.headers["x-image-meta-container_format"] = "bare"
