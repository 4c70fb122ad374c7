vcl 4.1;
# Varnish in front of glint's Images API (README, "Behind a cache"). The tests and
# benches/cache/run.sh use this file as it is, with @BACKEND_HOST@ and @BACKEND_PORT@ replaced.
#
# glint says what may be cached: image data answers carry Cache-Control (public or private,
# max-age=image_cache_max_age), a quoted ETag and Last-Modified; everything else is no-store,
# which Varnish's built-in VCL already passes. What this file adds:
#  * expired copies are kept (beresp.keep) so Varnish revalidates them with If-None-Match /
#    If-Modified-Since: glint answers 304 without data, or 403/404 once the image is
#    deactivated or deleted, which ends the copy;
#  * no grace: a stale copy is never delivered while it is being revalidated;
#  * PURGE <url> and BAN /.../images/<id> from the purgers ACL, to drop an image at once.

import std;

backend glint {
    .host = "@BACKEND_HOST@";
    .port = "@BACKEND_PORT@";
    .first_byte_timeout = 300s;
    .between_bytes_timeout = 60s;
}

acl purgers {
    "127.0.0.1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        if (req.url !~ "/images/[0-9a-fA-F-]{36}") {
            return (synth(400, "BAN needs a path naming an image id"));
        }
        # Every cached URL of the image: /v1/images/ID, /v1.1/images/ID, /v2/images/ID/file...
        ban("obj.http.x-glint-url ~ /images/" +
            regsub(req.url, "^.*/images/([0-9a-fA-F-]{36}).*$", "\1"));
        return (synth(200, "Banned"));
    }
    # The metrics and health of the backend itself are never cached.
    if (req.url ~ "^/(metrics|healthcheck)") {
        return (pass);
    }
}

sub vcl_backend_response {
    # For BAN: bans on obj.* are evaluated by the ban lurker, without a request.
    set beresp.http.x-glint-url = bereq.url;
    if (beresp.http.ETag || beresp.http.Last-Modified) {
        set beresp.keep = 1d;
    }
    set beresp.grace = 0s;
}

sub vcl_deliver {
    unset resp.http.x-glint-url;
}
