#!/usr/bin/env python3
"""Smoke test of glint's Images API v2 with the real clients: the python-glanceclient v2
library and `glance` CLI (2.17.1), and the `openstack image` CLI (python-openstackclient on
openstacksdk).

Usage: v2_clients_smoke.py ENDPOINT   (e.g. http://127.0.0.1:9292)

glanceclient: create, upload from a file, show, list with a property filter, sort and paging,
update properties (add, replace, remove), tags, members (create, accept, list), deactivate
(download refused) and reactivate, download byte-identical with its MD5, an image made through
v1 seen through v2 and one made through v2 seen through v1, delete. openstack CLI: create with a
file, create --import (stage + glance-direct), list --tag, show, set, save byte-identical,
delete. Exits non-zero on the first failure.
"""

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import glanceclient
from glanceclient import exc


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(*args):
    """Runs a client command; returns its stdout, failing with its output if it failed."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_status(client, image_id, status, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        current = client.images.get(image_id)["status"]
        if current == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} is {current}, not {status}, after {seconds} s")


def glanceclient_library(endpoint, data, path):
    client = glanceclient.Client("2", endpoint=endpoint, token="smoke-test")
    image = client.images.create(name="v2 smoke", disk_format="raw", container_format="bare",
                                 os_distro="cirros", tags=["smoke"])
    check(image["status"] == "queued", f"new image is {image['status']}")
    with open(path, "rb") as f:
        client.images.upload(image["id"], f)
    shown = client.images.get(image["id"])
    check(shown["status"] == "active", f"uploaded image is {shown['status']}")
    check(shown["size"] == len(data), f"size {shown['size']} != {len(data)}")
    check(shown["checksum"] == hashlib.md5(data).hexdigest(), "checksum")
    check(shown["os_hash_algo"] == "sha512", "os_hash_algo")
    check(shown["os_hash_value"] == hashlib.sha512(data).hexdigest(), "os_hash_value")

    listed = [i["id"] for i in client.images.list(filters={"os_distro": "cirros"})]
    check(listed == [image["id"]], f"property filter listed {listed}")
    others = [client.images.create(name=f"page {n}")["id"] for n in range(3)]
    names = [i["name"] for i in client.images.list(sort_key="name", sort_dir="asc")]
    check(names == sorted(names), f"sorted by name: {names}")
    paged = [i["id"] for i in client.images.list(page_size=1)]
    check(len(paged) == 4 and set(others) <= set(paged), f"paging by one gave {paged}")

    client.images.update(image["id"], name="v2 smoke renamed", hw_disk_bus="virtio",
                         remove_props=["os_distro"])
    shown = client.images.get(image["id"])
    check(shown["name"] == "v2 smoke renamed", "name updated")
    check(shown.get("hw_disk_bus") == "virtio", "property added")
    check("os_distro" not in shown, "property removed")

    client.image_tags.update(image["id"], "gold")
    client.image_tags.delete(image["id"], "smoke")
    check(client.images.get(image["id"])["tags"] == ["gold"], "tags")
    tagged = [i["id"] for i in client.images.list(filters={"tag": ["gold"]})]
    check(tagged == [image["id"]], f"tag filter listed {tagged}")

    client.image_members.create(image["id"], "project-b")
    client.image_members.update(image["id"], "project-b", "accepted")
    members = [(m["member_id"], m["status"]) for m in client.image_members.list(image["id"])]
    check(members == [("project-b", "accepted")], f"members {members}")

    client.images.deactivate(image["id"])
    try:
        b"".join(client.images.data(image["id"]))
        raise AssertionError("a deactivated image was downloaded")
    except exc.HTTPForbidden:
        pass
    client.images.reactivate(image["id"])
    downloaded = b"".join(client.images.data(image["id"]))
    check(downloaded == data, "downloaded bytes differ")

    # The same records through v1.
    v1 = glanceclient.Client("1", endpoint=endpoint, token="smoke-test")
    seen = v1.images.get(image["id"])
    check(seen.name == "v2 smoke renamed" and seen.checksum == shown["checksum"],
          "v2 image seen through v1")
    made = v1.images.create(name="from v1", disk_format="raw", container_format="bare",
                            is_public=True, data=io.BytesIO(b"v1 data"), properties={"made_by": "v1"})
    through_v2 = client.images.get(made.id)
    check(through_v2["visibility"] == "public" and through_v2["made_by"] == "v1",
          f"v1 image through v2: {through_v2}")
    check(b"".join(client.images.data(made.id)) == b"v1 data", "v1 data through v2")

    for image_id in [image["id"], made.id, *others]:
        client.images.delete(image_id)
    try:
        client.images.get(image["id"])
        raise AssertionError("a deleted image is still shown")
    except exc.HTTPNotFound:
        pass


def glance_cli(endpoint, path):
    glance = ["glance", "--os-image-api-version", "2", "--os-image-url", endpoint,
              "--os-auth-token", "smoke-test"]
    out = run(*glance, "image-create", "--name", "cli", "--disk-format", "raw",
              "--container-format", "bare", "--file", path)
    check("| status           | active" in out, f"glance image-create:\n{out}")
    image_id = next(line.split("|")[2].strip() for line in out.splitlines()
                    if line.startswith("| id "))
    run(*glance, "image-delete", image_id)


def openstack_cli(endpoint, data, path):
    osc = ["openstack", "--os-auth-type", "none", "--os-endpoint", endpoint]

    def image(*args):
        return json.loads(run(*osc, "image", *args, "-f", "json"))

    made = image("create", "--disk-format", "raw", "--container-format", "bare", "--file", path,
                 "--property", "os_distro=ubuntu", "osc plain")
    check(made["status"] == "active", f"openstack image create: {made}")
    imported = image("create", "--import", "--disk-format", "raw", "--container-format", "bare",
                     "--file", path, "osc imported")
    deadline = time.time() + 30
    while image("show", imported["id"])["status"] != "active":
        check(time.time() < deadline, "the import did not finish in 30 s")
        time.sleep(0.3)
    shown = image("show", imported["id"])
    check(shown["checksum"] == hashlib.md5(data).hexdigest(), f"imported checksum: {shown}")
    run(*osc, "image", "set", "--tag", "osc", "--property", "k=v", made["id"])
    tagged = [i["ID"] for i in image("list", "--tag", "osc")]
    check(tagged == [made["id"]], f"openstack image list --tag: {tagged}")
    check(image("show", made["id"])["properties"]["k"] == "v", "openstack image set --property")
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved")
        run(*osc, "image", "save", "--file", saved, imported["id"])
        with open(saved, "rb") as f:
            check(f.read() == data, "openstack image save: bytes differ")
    run(*osc, "image", "delete", made["id"], imported["id"])
    left = [i["ID"] for i in image("list")]
    check(made["id"] not in left and imported["id"] not in left, "deleted images still listed")


def disk_images(endpoint):
    """Real disk images from qemu-img through glanceclient v2: a qcow2 is accepted with its
    virtual size; one with a backing file is refused (400) and left killed, as is a qcow2
    declared raw (issue 13)."""
    client = glanceclient.Client("2", endpoint=endpoint, token="smoke-test")
    with tempfile.TemporaryDirectory() as d:
        base, child = os.path.join(d, "base.qcow2"), os.path.join(d, "child.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "1G"], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                        child], check=True)
        good = client.images.create(name="qcow2", disk_format="qcow2", container_format="bare")
        with open(base, "rb") as f:
            client.images.upload(good.id, f)
        good = client.images.get(good.id)
        check(good["status"] == "active" and good["virtual_size"] == 1 << 30,
              f"a plain qcow2: {good['status']}, virtual_size {good.get('virtual_size')}")
        for path, declared, why in [(child, "qcow2", "backing file"),
                                    (base, "raw", "disk_format is raw")]:
            bad = client.images.create(name="refused", disk_format=declared,
                                       container_format="bare")
            try:
                with open(path, "rb") as f:
                    client.images.upload(bad.id, f)
                raise AssertionError(f"{path} as {declared} was accepted")
            except exc.HTTPBadRequest as e:
                check(why in str(e), f"refusal names why: {e}")
            check(client.images.get(bad.id)["status"] == "killed", "refused upload is killed")
    print("disk images: plain qcow2 accepted with its virtual size; unsafe ones refused")


def main(endpoint):
    data = os.urandom(random.randint(1_000_000, 3_000_000))
    with tempfile.NamedTemporaryFile(suffix=".raw") as f:
        f.write(data)
        f.flush()
        glanceclient_library(endpoint, data, f.name)
        glance_cli(endpoint, f.name)
        openstack_cli(endpoint, data, f.name)
    disk_images(endpoint)
    print("v2 clients smoke test passed")


if __name__ == "__main__":
    main(sys.argv[1])
