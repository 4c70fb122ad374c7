#!/usr/bin/env python3
"""keystone-ensure.py - make sure projects, users, role grants and catalog entries exist in a
Keystone (v3 API), creating only what is missing; standard library only, so any python3 runs it.

    keystone-ensure.py KEYSTONE_URL ADMIN_PASSWORD < spec

KEYSTONE_URL ends with /v3. The admin is the bootstrap user `admin`, scoped to project `admin`.
Spec lines (domain Default for everything):

    project NAME                        -> prints "project NAME ID"
    user NAME PASSWORD PROJECT ROLE...  (roles granted on PROJECT) -> prints "user NAME ID"
    role NAME
    service TYPE NAME URL               (public, internal and admin endpoints in RegionOne)
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

URL, ADMIN_PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2]


def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return resp.status, resp.headers, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        if e.code in ok:
            return e.code, e.headers, None
        raise SystemExit(f"keystone-ensure: {method} {path} answered {e.code}: {e.read()[:300]!r}")


_, headers, _ = call("POST", "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
TOKEN = headers["X-Subject-Token"]


def find(collection, key, **query):
    q = urllib.parse.urlencode(query)
    _, _, body = call("GET", f"/{collection}?{q}", token=TOKEN)
    return body[key][0]["id"] if body[key] else None


def ensure(collection, key, singular, query, create):
    found = find(collection, key, **query)
    if found:
        return found
    _, _, body = call("POST", f"/{collection}", {singular: create}, token=TOKEN)
    return body[singular]["id"]


def project(name):
    return ensure("projects", "projects", "project", {"name": name, "domain_id": "default"},
                  {"name": name, "domain_id": "default", "enabled": True})


def role(name):
    return ensure("roles", "roles", "role", {"name": name}, {"name": name})


for line in sys.stdin:
    words = line.split()
    if not words or words[0].startswith("#"):
        continue
    kind, args = words[0], words[1:]
    if kind == "project":
        print("project", args[0], project(args[0]))
    elif kind == "role":
        role(args[0])
    elif kind == "user":
        name, password, project_name, roles = args[0], args[1], args[2], args[3:]
        pid = project(project_name)
        uid = ensure("users", "users", "user", {"name": name, "domain_id": "default"},
                     {"name": name, "domain_id": "default", "password": password,
                      "default_project_id": pid, "enabled": True})
        # Keep the password as the spec says, even if the user existed with another one.
        call("PATCH", f"/users/{uid}", {"user": {"password": password}}, token=TOKEN)
        for r in roles:
            call("PUT", f"/projects/{pid}/users/{uid}/roles/{role(r)}", token=TOKEN)
        print("user", name, uid)
    elif kind == "service":
        stype, sname, url = args
        sid = ensure("services", "services", "service", {"type": stype},
                     {"type": stype, "name": sname, "enabled": True})
        _, _, body = call("GET", f"/endpoints?service_id={sid}", token=TOKEN)
        have = {e["interface"]: e for e in body["endpoints"]}
        for interface in ("public", "internal", "admin"):
            e = have.get(interface)
            if e and e["url"] == url:
                continue
            if e:
                call("DELETE", f"/endpoints/{e['id']}", token=TOKEN)
            call("POST", "/endpoints", {"endpoint": {
                "service_id": sid, "interface": interface, "url": url,
                "region_id": "RegionOne", "enabled": True}}, token=TOKEN)
        print("service", stype, sid)
    else:
        raise SystemExit(f"keystone-ensure: unknown spec line: {line.strip()}")
