#!/usr/bin/env python3
"""Smoke test of glint behind a real Keystone with the real clients: python-glanceclient v1 and
v2 (library), the `glance` CLI and the `openstack image` CLI, each with tokens Keystone issued.

Usage: identity_clients_smoke.py ENDPOINT   (glint serve started with flavor = keystone)
Environment: the KEYSTONE_* exports of scripts/services/start-keystone.sh.

Checks (spec section 13): a member's image belongs to its project and is invisible (404) to
another project until shared; only admins publicise; the owner shares through v1 and v2, the
member accepts; a member may not change a shared image (403 in v2) or another's membership; an
expired token is refused by the CLI with 401. Exits non-zero on the first failure.
"""

import io
import json
import os
import subprocess
import sys
import urllib.request

import glanceclient
from glanceclient import exc


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def token(user, password, project):
    """A project-scoped Keystone token for user."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
    }}
    url = os.environ["KEYSTONE_URL"].rstrip("/")
    if not url.endswith("/v3"):
        url += "/v3"
    request = urllib.request.Request(f"{url}/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.headers["X-Subject-Token"]


def refused(call, error, what):
    try:
        call()
    except error:
        return
    raise AssertionError(f"{what}: expected {error.__name__}")


def run(*args, expect_ok=True):
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if expect_ok and done.returncode != 0:
        raise AssertionError(f"{' '.join(args[:6])}... failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def main():
    endpoint = sys.argv[1]
    env = os.environ
    demo, alt = env["KEYSTONE_DEMO_PROJECT"], env["KEYSTONE_ALT_PROJECT"]
    demo_id, alt_id = env["KEYSTONE_DEMO_PROJECT_ID"], env["KEYSTONE_ALT_PROJECT_ID"]
    member = token(env["KEYSTONE_DEMO_MEMBER_USER"], env["KEYSTONE_DEMO_MEMBER_PASSWORD"], demo)
    admin = token(env["KEYSTONE_DEMO_ADMIN_USER"], env["KEYSTONE_DEMO_ADMIN_PASSWORD"], demo)
    other = token(env["KEYSTONE_ALT_MEMBER_USER"], env["KEYSTONE_ALT_MEMBER_PASSWORD"], alt)

    # v1
    v1 = {t: glanceclient.Client("1", endpoint, token=t) for t in (member, admin, other)}
    image = v1[member].images.create(name="ks-v1", disk_format="raw", container_format="bare",
                                     is_public=False, data=io.BytesIO(b"x" * 1024))
    check(image.owner == demo_id, f"v1 owner {image.owner} is not the demo project")
    refused(lambda: v1[other].images.get(image.id), exc.HTTPNotFound, "v1 get across projects")
    check(image.id not in [i.id for i in v1[other].images.list()], "v1 list across projects")
    refused(lambda: v1[member].images.create(name="pub", is_public=True), exc.HTTPForbidden,
            "v1 publicize by a member")
    public = v1[admin].images.create(name="ks-public", is_public=True)
    check(v1[other].images.get(public.id).is_public, "the admin's public image is seen")
    v1[member].image_members.create(image, alt_id)
    check(v1[other].images.get(image.id).id == image.id, "v1 shared image seen by its member")
    refused(lambda: v1[other].images.update(image.id, name="taken"), exc.HTTPNotFound,
            "v1 update of a shared private image by its member")
    print("glanceclient v1 with Keystone tokens: ok")

    # v2
    v2 = {t: glanceclient.Client("2", endpoint, token=t) for t in (member, admin, other)}
    shared = v2[member].images.create(name="ks-v2", disk_format="raw", container_format="bare",
                                      visibility="shared")
    check(shared.owner == demo_id, "v2 owner is the demo project")
    refused(lambda: v2[other].images.get(shared.id), exc.HTTPNotFound, "v2 get across projects")
    v2[member].image_members.create(shared.id, alt_id)
    check(v2[other].images.get(shared.id).id == shared.id, "v2 shared image seen by its member")
    check(shared.id not in [i.id for i in v2[other].images.list()], "pending: not listed")
    refused(lambda: v2[member].image_members.update(shared.id, alt_id, "accepted"),
            exc.HTTPForbidden, "the owner answering for the member")
    v2[other].image_members.update(shared.id, alt_id, "accepted")
    check(shared.id in [i.id for i in v2[other].images.list()], "accepted: listed")
    refused(lambda: v2[other].images.update(shared.id, name="taken"), exc.HTTPForbidden,
            "v2 update by a member")
    refused(lambda: v2[member].images.update(shared.id, visibility="public"), exc.HTTPForbidden,
            "v2 publicize by a member")
    v2[admin].images.update(shared.id, visibility="public")
    print("glanceclient v2 with Keystone tokens: ok")

    # The CLIs with real tokens; an expired one is refused.
    out = run("glance", "--os-image-api-version", "2", "--os-image-url", endpoint,
              "--os-auth-token", other, "image-show", shared.id).stdout
    check(shared.id in out, "glance CLI image-show")
    expired = run("glance", "--os-image-api-version", "2", "--os-image-url", endpoint,
                  "--os-auth-token", env["KEYSTONE_EXPIRED_TOKEN"], "image-list",
                  expect_ok=False)
    # glanceclient words a 401 as "Invalid OpenStack Identity credentials".
    said = expired.stdout + expired.stderr
    check(expired.returncode != 0 and "Invalid OpenStack Identity credentials" in said,
          f"an expired token is refused: {said}")
    # With a given token (keystoneauth's admin_token plugin) the endpoint is used verbatim, so
    # it names the API version, as it must for Glance.
    listed = run("openstack", "--os-auth-type", "admin_token", "--os-endpoint", f"{endpoint}/v2",
                 "--os-token", other, "image", "list", "-f", "value", "-c", "ID").stdout
    check(shared.id in listed and image.id not in listed.split(),
          f"openstack image list as the other project: {listed}")
    print("glance and openstack CLIs with Keystone tokens: ok")
    print("identity clients smoke test passed")


if __name__ == "__main__":
    main()
