#!/usr/bin/env python3
"""Smoke test of glint with the real python-glanceclient v1 (2.17.1).

Usage: glanceclient_smoke.py ENDPOINT   (e.g. http://127.0.0.1:9292)

Creates an image with 1-5 MB of random data, a name, formats and properties; finds it in
images.list(); reads it back with images.get(); downloads it with images.data() and compares
the bytes; updates the name and a property without purging; deletes it and checks it is gone
from the list. Exits non-zero on the first failure.
"""

import hashlib
import os
import random
import sys
import tempfile

import glanceclient


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(endpoint):
    # No auth on glint: any token will do, glanceclient only needs one to skip keystone.
    client = glanceclient.Client("1", endpoint=endpoint, token="smoke-test")

    size = random.randint(1_000_000, 5_000_000)
    data = os.urandom(size)
    checksum = hashlib.md5(data).hexdigest()
    # glanceclient 2.17.1 percent-encodes every request header value (its bug #1766235 fix) and
    # never decodes the answers; glint decodes x-image-meta-* values, so spaces and '%' must come
    # back exactly as given. (Non-ASCII is left out: glint answers HEAD with UTF-8 header values,
    # as spec §14 #31 says, and Python's http.client reads header bytes as Latin-1.)
    properties = {"distro": "cirros", "kernel_id": "none", "note": "smoke test, 100%"}

    with tempfile.NamedTemporaryFile(prefix="glint-smoke-", suffix=".img") as f:
        f.write(data)
        f.flush()
        f.seek(0)
        image = client.images.create(
            name="glint smoke",
            disk_format="raw",
            container_format="bare",
            is_public=True,
            properties=properties,
            data=f,
        )
    print(f"created {image.id}: {size} bytes, md5 {checksum}")
    check(image.status == "active", f"status after create: {image.status}")
    check(image.size == size, f"size after create: {image.size} != {size}")
    check(image.checksum == checksum, f"checksum after create: {image.checksum}")
    check(image.properties == properties, f"properties after create: {image.properties}")

    listed = [i for i in client.images.list() if i.id == image.id]
    check(len(listed) == 1, f"images.list() shows the image {len(listed)} times")
    check(listed[0].name == "glint smoke", f"listed name: {listed[0].name}")
    check(listed[0].size == size, f"listed size: {listed[0].size}")
    print(f"listed: {len(listed)} match")

    shown = client.images.get(image.id)
    for attr, want in [
        ("name", "glint smoke"),
        ("status", "active"),
        ("size", size),
        ("checksum", checksum),
        ("disk_format", "raw"),
        ("container_format", "bare"),
        ("is_public", True),
        ("protected", False),
        ("deleted", False),
        ("min_ram", 0),
        ("min_disk", 0),
        ("properties", properties),
    ]:
        have = getattr(shown, attr)
        check(have == want, f"images.get: {attr} is {have!r}, want {want!r}")
    check(not hasattr(shown, "location"), "images.get shows a location")
    print("get: every field as created")

    downloaded = b"".join(client.images.data(image.id))  # do_checksum=True checks the MD5 too
    check(len(downloaded) == size, f"downloaded {len(downloaded)} bytes, want {size}")
    check(downloaded == data, "downloaded bytes differ from the uploaded ones")
    print(f"data: {len(downloaded)} identical bytes")

    updated = client.images.update(
        image.id, name="glint smoke renamed", properties={"note": "updated"}, purge_props=False
    )
    want_properties = dict(properties, note="updated")
    check(updated.name == "glint smoke renamed", f"name after update: {updated.name}")
    check(updated.properties == want_properties, f"properties after update: {updated.properties}")
    shown = client.images.get(image.id)
    check(shown.name == "glint smoke renamed", f"get after update: name {shown.name}")
    check(shown.properties == want_properties, f"get after update: {shown.properties}")
    check(shown.checksum == checksum, "update changed the checksum")
    print("update: renamed, property upserted, others kept")

    client.images.delete(image.id)
    remaining = [i.id for i in client.images.list()]
    check(image.id not in remaining, "the deleted image is still listed")
    gone = client.images.get(image.id)
    check(gone.deleted is True and gone.status == "deleted", f"after delete: {gone.status}")
    print("delete: gone from the list")
    print("glanceclient smoke test passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except Exception as e:  # any failure, from our checks or from glanceclient
        print(f"glanceclient smoke test FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
