//! The `glint` command-line client (issue 5, "CLI"): the built binary run against a real
//! `glint serve` on loopback. Every image command, uploads from stdin and `--file` compared byte
//! for byte after `download`, `--json` parsed, tables, filters, exit codes (0, 1 with one clean
//! line, 2 for usage errors), `--help`, and the progress bar (absent on a pipe, drawn on a pty).

use serde_json::Value;

use crate::support::cli::{added_id, run_cli, run_in_pty, Input, Server};
use crate::support::{fresh_seed, md5_hex, random_image, test_data};

/// Every image command of the CLI.
const IMAGE_COMMANDS: [&str; 9] = [
    "add", "update", "delete", "index", "details", "show", "download", "convert", "clear",
];

/// An id no image has.
const UNKNOWN_ID: &str = "3f1e2d4c-5b6a-4798-8a7b-6c5d4e3f2a1b";

/// The columns of `glint index`.
const INDEX_HEADER: [&str; 6] = [
    "ID",
    "Name",
    "Disk Format",
    "Container Format",
    "Size",
    "Status",
];

/// `human_size` as the CLI prints it, for sizes from 1 KiB to 1 GiB.
fn mib(bytes: usize) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

fn ids_of(images: &Value) -> Vec<String> {
    images
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {images}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Splits an aligned table into its cells, checking the alignment on the way: the second line
/// is a rule of dashes, one run per column, two spaces apart; every cell lies inside its
/// column's run, left-aligned except the columns in `right`, which end at the run's end.
#[track_caller]
fn parse_table(text: &str, right: &[usize]) -> (Vec<String>, Vec<Vec<String>>) {
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    assert!(lines.len() >= 2, "not a table:\n{text}");
    let rule = &lines[1];
    let mut spans = Vec::new();
    let mut i = 0;
    while i < rule.len() {
        assert_eq!(rule[i], '-', "rule line is not dashes:\n{text}");
        let start = i;
        while i < rule.len() && rule[i] == '-' {
            i += 1;
        }
        spans.push((start, i));
        if i < rule.len() {
            assert_eq!(
                &rule[i..i + 2],
                [' ', ' '],
                "columns not two apart:\n{text}"
            );
            i += 2;
        }
    }
    let mut rows = Vec::new();
    for (n, line) in lines.iter().enumerate().filter(|(n, _)| *n != 1) {
        let last_end = spans.last().unwrap().1;
        assert!(line.len() <= last_end, "line {n} overflows:\n{text}");
        assert!(
            line.last() != Some(&' '),
            "line {n} has trailing space:\n{text}"
        );
        let mut cells = Vec::new();
        for (c, &(start, end)) in spans.iter().enumerate() {
            let cell: String = line
                .get(start..end.min(line.len()))
                .unwrap_or_default()
                .iter()
                .collect();
            let trimmed = cell.trim().to_string();
            if !trimmed.is_empty() {
                if right.contains(&c) {
                    assert!(
                        cell.ends_with(&trimmed) && line.len() >= end,
                        "cell {c} of line {n} is not right-aligned:\n{text}"
                    );
                } else {
                    assert!(
                        cell.starts_with(&trimmed),
                        "cell {c} of line {n} is not left-aligned:\n{text}"
                    );
                }
            }
            if end < line.len() {
                assert_eq!(
                    &line[end..end + 2],
                    [' ', ' '],
                    "line {n}: text between columns {c} and {}:\n{text}",
                    c + 1
                );
            }
            cells.push(trimmed);
        }
        rows.push(cells);
    }
    let header = rows.remove(0);
    (header, rows)
}

#[test]
fn add_from_stdin_then_download_is_byte_identical() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    let run = server
        .run_with(&["add", "name=from-stdin"], Input::Bytes(data.clone()))
        .success();
    assert_eq!(run.stderr, "", "add wrote to stderr");
    let id = added_id(&run.stdout_text());
    assert_eq!(
        run.stdout_text(),
        format!("Added new image with ID: {id}\n")
    );

    let shown = server.json(&["show", &id]);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], data.len() as u64);
    assert_eq!(shown["checksum"], md5_hex(&data).as_str());

    let out = server.path("out.raw");
    let out_s = out.to_str().unwrap();
    let run = server.run(&["download", &id, "-o", out_s]).success();
    assert_eq!(run.stdout, b"", "download -o wrote to stdout");
    assert_eq!(run.stderr, "", "download wrote to stderr");
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(
        got == data,
        "downloaded bytes differ from the uploaded ones"
    );

    // Without -o, the data goes to standard output (a pipe here).
    let run = server.run(&["download", &id]).success();
    assert_eq!(run.stdout.len(), data.len());
    assert!(run.stdout == data, "download to stdout differs");
}

#[test]
fn add_from_file_then_download_is_byte_identical() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    let file = server.path("image.raw");
    std::fs::write(&file, &data).unwrap();
    let id = server.add_file(&["name=from-file", "disk_format=ploop"], &file);

    let shown = server.json(&["show", &id]);
    assert_eq!(shown["size"], data.len() as u64);
    assert_eq!(shown["checksum"], md5_hex(&data).as_str());
    assert_eq!(shown["disk_format"], "ploop");

    // An existing output file is replaced, and no partial file is left behind.
    let out = server.path("out.qcow2");
    std::fs::write(&out, b"old content that must go").unwrap();
    server
        .run(&["download", &id, "--output", out.to_str().unwrap()])
        .success();
    assert!(
        std::fs::read(&out).unwrap() == data,
        "downloaded bytes differ"
    );
    let leftovers: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

#[test]
fn add_json_reports_metadata_checksum_and_properties() {
    let server = Server::start();
    let data = test_data(1 << 20, fresh_seed());
    let file = server.path("kernel.img");
    std::fs::write(&file, &data).unwrap();
    let image = server
        .run(&[
            "add",
            "name=My Kernel",
            "disk_format=aki",
            "container_format=aki",
            "is_public=true",
            "min_ram=256",
            "type=kernel",
            "Distro-Name=cirros",
            "--file",
            file.to_str().unwrap(),
            "--json",
        ])
        .success()
        .json();
    uuid::Uuid::parse_str(image["id"].as_str().unwrap()).unwrap();
    assert_eq!(image["name"], "My Kernel");
    assert_eq!(image["disk_format"], "aki");
    assert_eq!(image["container_format"], "aki");
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 1 << 20);
    assert_eq!(image["checksum"], md5_hex(&data).as_str());
    assert_eq!(image["is_public"], true);
    assert_eq!(image["min_ram"], 256);
    assert_eq!(image["deleted"], false);
    // Unknown fields become properties; names are lower-cased with '-' as '_'.
    assert_eq!(image["properties"]["type"], "kernel");
    assert_eq!(image["properties"]["distro_name"], "cirros");
    assert_eq!(image["properties"].as_object().unwrap().len(), 2);

    // Defaults: raw/ovf, private, and a trailing comma is stripped as by the original tool.
    let image = server
        .run(&["add", "name=defaults,", "--json"])
        .success()
        .json();
    assert_eq!(image["name"], "defaults");
    assert_eq!(image["disk_format"], "raw");
    assert_eq!(image["container_format"], "ovf");
    assert_eq!(image["is_public"], false);
}

#[test]
fn add_verbose_prints_the_record() {
    let server = Server::start();
    let file = server.path("small.img");
    std::fs::write(&file, b"0123456789").unwrap();
    let out = server
        .run(&[
            "add",
            "name=verbose",
            "-v",
            "--file",
            file.to_str().unwrap(),
        ])
        .success()
        .stdout_text();
    let id = added_id(&out);
    assert!(out.contains(&format!("Id                {id}\n")), "{out}");
    assert!(out.contains("Name              verbose\n"), "{out}");
    assert!(out.contains("Size              10 B\n"), "{out}");
    assert!(
        out.contains(&format!("Checksum          {}\n", md5_hex(b"0123456789"))),
        "{out}"
    );
}

#[test]
fn update_keeps_properties_unless_purge_props() {
    let server = Server::start();
    let image = server
        .run(&[
            "add",
            "name=props",
            "type=kernel",
            "distro=ubuntu",
            "--json",
        ])
        .success()
        .json();
    let id = image["id"].as_str().unwrap().to_string();
    assert_eq!(image["is_public"], false);

    let run = server
        .run(&["update", &id, "is_public=true", "arch=x86_64"])
        .success();
    assert_eq!(run.stdout_text(), format!("Updated image {id}\n"));
    let shown = server.json(&["show", &id]);
    assert_eq!(shown["is_public"], true);
    assert_eq!(shown["name"], "props");
    assert_eq!(
        shown["properties"],
        serde_json::json!({"type": "kernel", "distro": "ubuntu", "arch": "x86_64"})
    );

    // A core field alone keeps every property too.
    let updated = server.json(&["update", &id, "name=renamed", "min_disk=3"]);
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["min_disk"], 3);
    assert_eq!(updated["properties"].as_object().unwrap().len(), 3);

    // --purge-props removes the properties not named.
    let purged = server.json(&["update", &id, "--purge-props", "arch=arm64"]);
    assert_eq!(purged["properties"], serde_json::json!({"arch": "arm64"}));
    assert_eq!(purged["is_public"], true, "core fields are not purged");
    let purged = server.json(&["update", &id, "--purge-props"]);
    assert_eq!(purged["properties"], serde_json::json!({}));
    assert_eq!(
        server.json(&["show", &id])["properties"],
        serde_json::json!({})
    );
}

#[test]
fn update_uploads_data_to_a_queued_image() {
    let server = Server::start();
    let queued = server.post_image(&[
        ("name", "queued"),
        ("disk_format", "raw"),
        ("container_format", "bare"),
    ]);
    assert_eq!(queued["status"], "queued");
    let id = queued["id"].as_str().unwrap().to_string();
    assert_eq!(server.json(&["show", &id])["status"], "queued");
    // No data yet: nothing to download.
    server
        .run(&["download", &id, "-o", server.path("none").to_str().unwrap()])
        .assert_failure("not active");

    let data = random_image(fresh_seed());
    let file = server.path("data.raw");
    std::fs::write(&file, &data).unwrap();
    let file_s = file.to_str().unwrap();
    let run = server.run(&["update", &id, "--file", file_s]).success();
    assert_eq!(run.stdout_text(), format!("Updated image {id}\n"));
    let image = server.json(&["show", &id]);
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len() as u64);
    assert_eq!(image["checksum"], md5_hex(&data).as_str());

    let out = server.path("out.raw");
    server
        .run(&["download", &id, "-o", out.to_str().unwrap()])
        .success();
    assert!(
        std::fs::read(&out).unwrap() == data,
        "downloaded bytes differ"
    );

    // An active image takes no more data: 409, exit 1. (A small file: with megabytes, the
    // answer can be lost, see `an_upload_refused_early_shows_the_servers_reason`.)
    let small = server.path("small.raw");
    std::fs::write(&small, b"more data").unwrap();
    server
        .run(&["update", &id, "--file", small.to_str().unwrap()])
        .assert_failure("Cannot upload to an unqueued image");

    // Metadata and data in one update: a queued image without formats gets them with its data.
    let bare = server.post_image(&[("name", "no formats yet")]);
    assert_eq!(bare["status"], "queued");
    let image = server
        .run(&[
            "update",
            bare["id"].as_str().unwrap(),
            "disk_format=ploop",
            "container_format=bare",
            "type=ramdisk",
            "--file",
            file_s,
            "--json",
        ])
        .success()
        .json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["disk_format"], "ploop");
    assert_eq!(image["size"], data.len() as u64);
    assert_eq!(image["checksum"], md5_hex(&data).as_str());
    assert_eq!(image["properties"]["type"], "ramdisk");
}

/// When the server refuses an upload before reading its data (bad metadata, a duplicate id, an
/// unknown or unqueued image), the CLI must show the server's reason, whatever the data's size.
/// Tried a few times, as the outcome depended on a race when this test was written.
#[test]
fn an_upload_refused_early_shows_the_servers_reason() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    let file = server.path("big.raw");
    std::fs::write(&file, &data).unwrap();
    let file_s = file.to_str().unwrap();
    let existing = server.json(&["add", "name=exists"]);
    let existing = existing["id"].as_str().unwrap();
    let dup = format!("id={existing}");
    let queued = server.post_image(&[("name", "queued without formats")]);
    let queued = queued["id"].as_str().unwrap();
    for _ in 0..5 {
        server
            .run(&["add", "name=bad", "disk_format=floppy", "--file", file_s])
            .assert_failure("Invalid disk format");
        server
            .run_with(
                &["add", "name=bad", "disk_format=floppy"],
                Input::Bytes(data.clone()),
            )
            .assert_failure("Invalid disk format");
        server
            .run(&["add", "name=dup", &dup, "--file", file_s])
            .assert_failure("already exists");
        server
            .run(&["update", UNKNOWN_ID, "--file", file_s])
            .assert_failure("not found");
        server
            .run(&["update", existing, "--file", file_s])
            .assert_failure("unqueued");
        server
            .run(&["update", queued, "--file", file_s])
            .assert_failure("format is not specified");
    }
    assert_eq!(
        server.all_images().len(),
        2,
        "a refused upload left an image"
    );
}

/// `glint add name=x < /dev/null` follows the original tool: standard input is the data, so an
/// empty stdin makes an active image of 0 bytes (MD5 of nothing), not a queued one. That image
/// cannot take data later.
#[test]
fn add_with_empty_stdin_makes_an_empty_active_image() {
    let server = Server::start();
    let image = server
        .run(&["add", "name=empty", "--json"])
        .success()
        .json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 0);
    assert_eq!(image["checksum"], md5_hex(b"").as_str());
    let id = image["id"].as_str().unwrap();

    let run = server.run(&["download", id]).success();
    assert!(run.stdout.is_empty());
    let file = server.path("late.raw");
    std::fs::write(&file, b"too late").unwrap();
    server
        .run(&["update", id, "--file", file.to_str().unwrap()])
        .assert_failure("unqueued");
}

#[test]
fn show_prints_every_field_and_property() {
    let server = Server::start();
    let data = test_data(3 << 20, fresh_seed());
    let image = server
        .run_with(
            &[
                "add",
                "name=shown",
                "disk_format=ploop",
                "container_format=bare",
                "is_public=true",
                "min_ram=512",
                "min_disk=2",
                "owner=tenant1",
                "kernel_id=abc",
                "distro=cirros",
                "--json",
            ],
            Input::Bytes(data.clone()),
        )
        .success()
        .json();
    let id = image["id"].as_str().unwrap();
    let text = server.ok(&["show", id]);
    let expected = [
        format!("Id                {id}"),
        "Name              shown".to_string(),
        "Status            active".to_string(),
        "Public            Yes".to_string(),
        "Protected         No".to_string(),
        format!("Size              3.0 MiB ({} bytes)", 3 << 20),
        "Virtual size      -".to_string(),
        "Disk format       ploop".to_string(),
        "Container format  bare".to_string(),
        format!("Checksum          {}", md5_hex(&data)),
        "Min RAM (MB)      512".to_string(),
        "Min disk (GB)     2".to_string(),
        "Owner             tenant1".to_string(),
        format!(
            "Created at        {}",
            image["created_at"].as_str().unwrap()
        ),
        format!(
            "Updated at        {}",
            image["updated_at"].as_str().unwrap()
        ),
        "Deleted           No".to_string(),
        "Deleted at        -".to_string(),
        "Property 'distro': cirros".to_string(),
        "Property 'kernel_id': abc".to_string(),
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, expected, "show output:\n{text}");

    // --json parses and agrees with what add returned.
    let shown = server.json(&["show", id]);
    for field in [
        "id",
        "name",
        "status",
        "size",
        "disk_format",
        "container_format",
        "checksum",
        "is_public",
        "protected",
        "min_ram",
        "min_disk",
        "owner",
        "created_at",
        "deleted",
        "properties",
    ] {
        assert_eq!(shown[field], image[field], "field {field}");
    }
}

#[test]
fn index_prints_an_aligned_table_of_public_images() {
    let server = Server::start();
    let big = random_image(fresh_seed());
    let public_big = server
        .run_with(
            &["add", "name=a much longer public name", "is_public=true"],
            Input::Bytes(big.clone()),
        )
        .success();
    let public_big = added_id(&public_big.stdout_text());
    let public_small = server
        .run_with(
            &["add", "name=p", "is_public=true", "disk_format=raw"],
            Input::Bytes(b"tiny".to_vec()),
        )
        .success();
    let public_small = added_id(&public_small.stdout_text());
    let private = server
        .run_with(&["add", "name=private"], Input::Bytes(b"secret".to_vec()))
        .success();
    let private = added_id(&private.stdout_text());

    let text = server.ok(&["index"]);
    let (header, rows) = parse_table(&text, &[4]);
    assert_eq!(header, INDEX_HEADER, "header of:\n{text}");
    assert_eq!(rows.len(), 2, "public images only:\n{text}");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("no row for {id}:\n{text}"))
            .clone()
    };
    assert_eq!(
        row(&public_big),
        [
            public_big.as_str(),
            "a much longer public name",
            "raw",
            "ovf",
            &mib(big.len()),
            "active"
        ]
    );
    assert_eq!(
        row(&public_small),
        [public_small.as_str(), "p", "raw", "ovf", "4 B", "active"]
    );

    // --all adds the private image.
    let text = server.ok(&["index", "--all"]);
    let (header, rows) = parse_table(&text, &[4]);
    assert_eq!(header, INDEX_HEADER);
    let mut ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![public_big.as_str(), public_small.as_str(), private.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "index --all:\n{text}");
}

#[test]
fn index_and_details_say_when_there_is_nothing() {
    let server = Server::start();
    assert_eq!(server.ok(&["index"]), "No images found.\n");
    assert_eq!(server.ok(&["details", "--all"]), "No images found.\n");
    assert_eq!(server.json(&["index"]), serde_json::json!([]));
    assert_eq!(server.json(&["details", "--all"]), serde_json::json!([]));
    // Only a private image: still nothing public.
    server.run(&["add", "name=private"]).success();
    assert_eq!(server.ok(&["index"]), "No images found.\n");
}

#[test]
fn index_and_details_json_are_arrays_of_images() {
    let server = Server::start();
    let mut ids = Vec::new();
    for (name, public) in [("one", "true"), ("two", "true"), ("three", "false")] {
        let image = server
            .run_with(
                &[
                    "add",
                    &format!("name={name}"),
                    &format!("is_public={public}"),
                    &format!("label={name}"),
                    "--json",
                ],
                Input::Bytes(name.as_bytes().to_vec()),
            )
            .success()
            .json();
        ids.push(image["id"].as_str().unwrap().to_string());
    }
    for cmd in ["index", "details"] {
        let public = server.json(&[cmd]);
        let mut got = ids_of(&public);
        got.sort();
        let mut want = ids[..2].to_vec();
        want.sort();
        assert_eq!(got, want, "{cmd} --json");
        let all = server.json(&[cmd, "--all"]);
        assert_eq!(all.as_array().unwrap().len(), 3, "{cmd} --all --json");
        for image in all.as_array().unwrap() {
            let name = image["name"].as_str().unwrap();
            assert_eq!(image["size"], name.len());
            assert_eq!(image["checksum"], md5_hex(name.as_bytes()).as_str());
            assert_eq!(image["status"], "active");
            assert_eq!(image["properties"]["label"], name);
        }
    }
}

#[test]
fn details_prints_every_record_between_rules() {
    let server = Server::start();
    for name in ["first", "second"] {
        server
            .run(&["add", &format!("name={name}"), "is_public=yes", "os=linux"])
            .success();
    }
    let text = server.ok(&["details"]);
    let rule = "=".repeat(80);
    let blocks: Vec<&str> = text.split(&format!("{rule}\n")).collect();
    // Leading "", one block per image, and nothing after the last rule.
    assert_eq!(blocks.len(), 4, "details:\n{text}");
    assert_eq!(blocks[0], "");
    assert_eq!(blocks[3], "");
    let mut names: Vec<&str> = blocks[1..3]
        .iter()
        .map(|b| {
            assert!(b.contains("Status            active\n"), "{b}");
            assert!(b.contains("Property 'os': linux\n"), "{b}");
            b.lines()
                .find_map(|l| l.strip_prefix("Name              "))
                .unwrap()
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["first", "second"]);
}

#[test]
fn index_filters_by_field_value() {
    let server = Server::start();
    let mut foo = Vec::new();
    for (name, public, format) in [
        ("foo", "false", "raw"),
        ("foo", "true", "ploop"),
        ("bar", "true", "ploop"),
        ("foobar", "true", "raw"),
    ] {
        let run = server
            .run(&[
                "add",
                &format!("name={name}"),
                &format!("is_public={public}"),
                &format!("disk_format={format}"),
            ])
            .success();
        if name == "foo" {
            foo.push(added_id(&run.stdout_text()));
        }
    }
    foo.sort();
    let mut got = ids_of(&server.json(&["index", "--all", "name=foo"]));
    got.sort();
    assert_eq!(got, foo, "index --all name=foo");

    let text = server.ok(&["index", "--all", "name=foo"]);
    let (_, rows) = parse_table(&text, &[4]);
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows.iter().all(|r| r[1] == "foo"), "{text}");

    // Without --all, the private foo is not listed.
    assert_eq!(ids_of(&server.json(&["index", "name=foo"])).len(), 1);
    let qcow2 = server.json(&["details", "--all", "disk_format=ploop"]);
    assert_eq!(qcow2.as_array().unwrap().len(), 2);
    assert!(qcow2
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["disk_format"] == "ploop"));
    assert_eq!(
        ids_of(&server.json(&["index", "--all", "name=nothing"])).len(),
        0
    );
    // Sorting and a limit go to the server as they are.
    let sorted = server.json(&["index", "--all", "sort_key=name", "sort_dir=asc"]);
    let names: Vec<&str> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bar", "foo", "foo", "foobar"]);
    let limited = server.json(&["index", "--all", "limit=3"]);
    assert_eq!(limited.as_array().unwrap().len(), 3);
    // A bad filter value is the server's 400: exit 1.
    server
        .run(&["index", "sort_dir=sideways"])
        .assert_failure("sort_dir");
}

#[test]
fn index_pages_through_more_images_than_one_page() {
    let server = Server::start();
    let mut ids = Vec::new();
    for n in 0..130 {
        let image = server.post_image(&[
            ("name", &format!("image-{n:03}")),
            ("is_public", "true"),
            ("disk_format", "raw"),
            ("container_format", "bare"),
        ]);
        ids.push(image["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    for cmd in ["index", "details"] {
        let mut got = ids_of(&server.json(&[cmd]));
        got.sort();
        assert_eq!(got, ids, "{cmd} --json lists every image once");
    }
    let text = server.ok(&["index"]);
    let (_, rows) = parse_table(&text, &[4]);
    assert_eq!(rows.len(), 130);
    assert!(rows.iter().all(|r| r[5] == "queued" && r[4] == "0 B"));
    assert_eq!(
        server
            .json(&["index", "limit=120"])
            .as_array()
            .unwrap()
            .len(),
        120
    );
}

/// A deleted image is gone from the lists and has no data; `show` still finds the record with
/// status `deleted`: a no-auth caller is an admin, and admins see deleted images (spec §5.3 and
/// choice #21).
#[test]
fn delete_with_yes_removes_the_image() {
    let server = Server::start();
    let keep = added_id(
        &server
            .run_with(&["add", "name=keep"], Input::Bytes(b"keep".to_vec()))
            .success()
            .stdout_text(),
    );
    let gone = added_id(
        &server
            .run_with(&["add", "name=gone"], Input::Bytes(b"gone".to_vec()))
            .success()
            .stdout_text(),
    );
    let run = server.run(&["delete", &gone, "--yes"]).success();
    assert_eq!(run.stdout_text(), format!("Deleted image {gone}\n"));
    assert_eq!(run.stderr, "");

    assert_eq!(ids_of(&server.json(&["index", "--all"])), [keep.as_str()]);
    server
        .run(&["download", &gone, "-o", server.path("x").to_str().unwrap()])
        .assert_failure("not active");
    server
        .run(&["delete", &gone, "--yes"])
        .assert_failure("not found");
    let record = server.json(&["show", &gone]);
    assert_eq!(record["status"], "deleted");
    assert_eq!(record["deleted"], true);
    assert!(record["deleted_at"].is_string(), "{record}");
    let text = server.ok(&["show", &gone]);
    assert!(text.contains("Status            deleted\n"), "{text}");
    assert!(text.contains("Deleted           Yes\n"), "{text}");
    server.run(&["show", &keep]).success();
}

#[test]
fn delete_takes_several_ids_and_asks_nothing_on_a_pipe() {
    let server = Server::start();
    let ids: Vec<String> = (0..3)
        .map(|n| {
            added_id(
                &server
                    .run(&["add", &format!("name=n{n}")])
                    .success()
                    .stdout_text(),
            )
        })
        .collect();
    // Standard input is not a terminal: no question, no --yes needed.
    let run = server.run(&["delete", &ids[0], &ids[1]]).success();
    assert_eq!(
        run.stdout_text(),
        format!("Deleted image {}\nDeleted image {}\n", ids[0], ids[1])
    );
    assert_eq!(run.stderr, "");
    assert_eq!(ids_of(&server.json(&["index", "--all"])), [ids[2].as_str()]);
}

#[test]
fn delete_and_clear_on_a_terminal_ask_first() {
    let server = Server::start();
    let id = added_id(&server.run(&["add", "name=asked"]).success().stdout_text());
    let url = server.url.as_str();

    let (code, shown) = run_in_pty(&["delete", &id, "--url", url], b"n\n");
    assert_eq!(code, 1, "answering no must fail:\n{shown}");
    assert!(shown.contains("[y/N]"), "no question asked:\n{shown}");
    assert!(shown.contains("nothing deleted"), "{shown}");
    assert_eq!(ids_of(&server.json(&["index", "--all"])), [id.as_str()]);

    let (code, shown) = run_in_pty(&["clear", "--url", url], b"no\n");
    assert_eq!(code, 1, "answering no must fail:\n{shown}");
    assert!(shown.contains("Delete all 1 images? [y/N]"), "{shown}");
    assert_eq!(ids_of(&server.json(&["index", "--all"])), [id.as_str()]);

    let (code, shown) = run_in_pty(&["delete", &id, "--url", url], b"y\n");
    assert_eq!(code, 0, "answering yes must delete:\n{shown}");
    assert!(shown.contains(&format!("Deleted image {id}")), "{shown}");
    assert_eq!(server.json(&["index", "--all"]), serde_json::json!([]));

    // --yes skips the question on a terminal too.
    let id = added_id(&server.run(&["add", "name=quiet"]).success().stdout_text());
    let (code, shown) = run_in_pty(&["delete", &id, "--yes", "--url", url], b"");
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("[y/N]"), "asked despite --yes:\n{shown}");
}

#[test]
fn clear_removes_every_image() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    server
        .run_with(
            &["add", "name=public", "is_public=true"],
            Input::Bytes(data),
        )
        .success();
    server.run(&["add", "name=private"]).success();
    server.post_image(&[("name", "queued")]);
    assert_eq!(server.all_images().len(), 3);

    let run = server.run(&["clear", "--yes"]).success();
    assert_eq!(run.stdout_text(), "Deleted 3 images.\n");
    assert_eq!(run.stderr, "");
    assert_eq!(server.json(&["index", "--all"]), serde_json::json!([]));
    assert_eq!(server.ok(&["index", "--all"]), "No images found.\n");

    // Nothing left: says so, still success. -v names every image deleted.
    assert_eq!(server.ok(&["clear", "--yes"]), "No images to delete.\n");
    let id = added_id(
        &server
            .run(&["add", "name=last one"])
            .success()
            .stdout_text(),
    );
    assert_eq!(
        server.ok(&["clear", "--yes", "-v"]),
        format!("Deleting image {id} \"last one\" ... done\n")
    );
    assert!(server.all_images().is_empty());
}

#[test]
fn protected_images_survive_delete_and_clear() {
    let server = Server::start();
    let kept = added_id(
        &server
            .run(&["add", "name=kept", "protected=true"])
            .success()
            .stdout_text(),
    );
    server.run(&["add", "name=other"]).success();
    server.run(&["delete", &kept, "--yes"]).assert_failure("");

    let run = server.run(&["clear", "--yes"]);
    assert_eq!(run.code, 1, "clear must fail: {}", run.stderr);
    run.assert_no_panic();
    assert!(
        run.stderr.contains(&format!("could not delete {kept}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 of 2 images could not be deleted"),
        "{}",
        run.stderr
    );
    assert_eq!(ids_of(&server.json(&["index", "--all"])), [kept.as_str()]);

    server.run(&["update", &kept, "protected=false"]).success();
    server.run(&["clear", "--yes"]).success();
    assert!(server.all_images().is_empty());
}

#[test]
fn server_and_network_failures_exit_1_with_one_line() {
    let server = Server::start();
    let out = server.path("never.raw");
    let out_s = out.to_str().unwrap();
    // 404
    server.run(&["show", UNKNOWN_ID]).assert_failure(UNKNOWN_ID);
    server
        .run(&["show", "not-a-uuid"])
        .assert_failure("not-a-uuid");
    server
        .run(&["delete", UNKNOWN_ID, "--yes"])
        .assert_failure("not found");
    server
        .run(&["download", UNKNOWN_ID, "-o", out_s])
        .assert_failure("not found");
    assert!(!out.exists(), "a failed download created {out_s}");
    server
        .run(&["update", UNKNOWN_ID, "name=x"])
        .assert_failure("not found");

    // 409: an id that exists.
    let existing = server.json(&["add", "name=original"]);
    let id = existing["id"].as_str().unwrap();
    let run = server.run(&["add", "name=dup", &format!("id={id}")]);
    run.assert_failure("already exists");
    assert!(run.stdout.is_empty());
    assert_eq!(server.all_images().len(), 1);

    // 400: invalid formats, a size that does not match the data.
    server
        .run(&["add", "name=bad", "disk_format=floppy"])
        .assert_failure("disk format");
    server
        .run(&["add", "name=bad", "container_format=crate"])
        .assert_failure("container format");
    server
        .run_with(
            &["add", "name=bad", "size=5"],
            Input::Bytes(b"more than five".to_vec()),
        )
        .assert_failure("size");
    server
        .run(&["update", id, "disk_format=floppy"])
        .assert_failure("disk format");

    // Nobody listening.
    for args in [
        vec!["index"],
        vec!["details", "--all"],
        vec!["show", UNKNOWN_ID],
        vec!["add", "name=x"],
        vec!["delete", UNKNOWN_ID, "--yes"],
        vec!["download", UNKNOWN_ID, "-o", out_s],
        vec!["clear", "--yes"],
    ] {
        let mut args = args;
        args.extend(["--url", "http://127.0.0.1:1"]);
        run_cli(&args, &[], Input::Null).assert_failure("127.0.0.1:1");
    }
}

#[test]
fn usage_errors_exit_2() {
    let server = Server::start();
    let cases: &[(&[&str], &str)] = &[
        (&["index", "--bogus"], "unknown option '--bogus'"),
        (&["add", "name=x", "--purge-props"], "unknown option"),
        (&["download", UNKNOWN_ID, "--file", "x"], "unknown option"),
        (&["show"], "needs an image ID"),
        (&["update"], "needs an image ID"),
        (&["download"], "needs an image ID"),
        (&["delete", "--yes"], "at least one image ID"),
        (&["show", UNKNOWN_ID, "extra"], "unexpected argument"),
        (
            &["add", "name=x", "size=abc"],
            "size must be a non-negative integer",
        ),
        (&["add", "name=x", "min_ram=-1"], "min_ram"),
        (&["add", "name=x", "id=not-a-uuid"], "id must be a UUID"),
        (&["update", UNKNOWN_ID, "status=active"], "status"),
        (&["add", "disk_format=raw"], "specify a name"),
        (&["add", "name="], "specify a name"),
        (&["add", "name=x", "stray"], "field=value"),
        (&["add", "name=x", "=value"], "field=value"),
        (&["frobnicate"], "unknown command 'frobnicate'"),
    ];
    for (args, needle) in cases {
        // No server is contacted for a usage error, but point at a real one anyway.
        server.run(args).assert_usage_error(needle);
    }
    run_cli(&[], &[], Input::Null).assert_usage_error("Usage");
    run_cli(&["index", "--url"], &[], Input::Null).assert_usage_error("--url needs a value");
    run_cli(&["index", "--url", "ftp://example.com"], &[], Input::Null)
        .assert_usage_error("http://");
    // A usage error for a command says which command and where its help is.
    let run = server.run(&["show"]);
    assert!(
        run.stderr.contains("glint show --help"),
        "no pointer to the command's help: {}",
        run.stderr
    );
    assert!(
        server.all_images().is_empty(),
        "a usage error created an image"
    );
}

#[test]
fn convert_makes_a_new_image_in_another_format_and_prints_it() {
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("GLINT_REQUIRE_STORES").as_deref() != Ok("1"),
            "qemu-img is needed; scripts/test.sh installs it"
        );
        eprintln!("SKIPPED: qemu-img not installed");
        return;
    }
    let server = Server::start();
    let raw = server.path("disk.raw");
    std::fs::write(&raw, test_data(1 << 20, 5)).unwrap();
    let source = server.add_file(
        &[
            "name=disk",
            "disk_format=raw",
            "container_format=bare",
            "os_distro=cirros",
        ],
        &raw,
    );
    let text = server.ok(&["convert", &source, "disk_format=qcow2", "name=disk (qcow2)"]);
    assert!(text.contains("Name              disk (qcow2)"), "{text}");
    assert!(text.contains("Status            active"), "{text}");
    assert!(text.contains("Disk format       qcow2"), "{text}");
    assert!(text.contains("Property 'os_distro': cirros"), "{text}");
    assert!(
        text.contains(&format!("Property 'converted_from': {source}")),
        "{text}"
    );
    let image = server.json(&["convert", &source, "disk_format=vhdx"]);
    assert_eq!(image["disk_format"], "vhdx");
    assert_eq!(image["name"], "disk");
    let id = image["id"].as_str().unwrap();
    let out = server.path("disk.vhdx");
    server.ok(&["download", id, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap().starts_with(b"vhdxfile"));
    server
        .run(&["convert", &source])
        .assert_usage_error("disk_format=FORMAT");
    server
        .run(&["convert", UNKNOWN_ID, "disk_format=qcow2"])
        .assert_failure("not found");
    server
        .run(&["convert", &source, "disk_format=iso"])
        .assert_failure("Cannot convert to disk_format iso");
}

#[test]
fn help_on_every_subcommand_shows_an_example() {
    for cmd in IMAGE_COMMANDS {
        for flag in ["--help", "-h"] {
            let run = run_cli(&[cmd, flag], &[], Input::Null).success();
            let text = run.stdout_text();
            assert!(
                text.starts_with(&format!("Usage: glint {cmd}")),
                "glint {cmd} {flag}:\n{text}"
            );
            assert!(text.contains("Example"), "glint {cmd} {flag}:\n{text}");
            assert!(
                text.contains(&format!("  glint {cmd} ")),
                "the example does not run glint {cmd}:\n{text}"
            );
            assert_eq!(run.stderr, "");
        }
        // `glint help CMD` is the same text; --help wins over other arguments.
        let help = run_cli(&["help", cmd], &[], Input::Null).success();
        let flag = run_cli(&[cmd, "--help"], &[], Input::Null).success();
        assert_eq!(help.stdout, flag.stdout);
        let with_args = run_cli(&[cmd, UNKNOWN_ID, "--bogus", "--help"], &[], Input::Null);
        assert_eq!(with_args.success().stdout, flag.stdout);
    }
    for cmd in ["serve", "api", "registry"] {
        let run = run_cli(&[cmd, "--help"], &[], Input::Null).success();
        assert!(run.stdout_text().contains("Example"), "glint {cmd} --help");
    }
    let overview = run_cli(&["--help"], &[], Input::Null)
        .success()
        .stdout_text();
    for cmd in IMAGE_COMMANDS.iter().chain(&["serve", "api", "registry"]) {
        assert!(
            overview.contains(&format!("  {cmd} ")),
            "glint --help does not list {cmd}:\n{overview}"
        );
    }
}

#[test]
fn glint_url_environment_variable_selects_the_server() {
    let server = Server::start();
    server
        .run(&["add", "name=via-flag", "is_public=true"])
        .success();
    let env = [("GLINT_URL", server.url.as_str())];
    let listed = run_cli(&["index", "--json"], &env, Input::Null)
        .success()
        .json();
    assert_eq!(listed[0]["name"], "via-flag");
    // A trailing /v1/ is accepted.
    let with_v1 = format!("{}/v1/", server.url);
    let run = run_cli(
        &["add", "name=via-env"],
        &[("GLINT_URL", with_v1.as_str())],
        Input::Null,
    )
    .success();
    added_id(&run.stdout_text());
    assert_eq!(server.all_images().len(), 2);
    // --url wins over GLINT_URL.
    run_cli(&["index", "--url", "http://127.0.0.1:1"], &env, Input::Null)
        .assert_failure("127.0.0.1:1");
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    let file = server.path("image.raw");
    std::fs::write(&file, &data).unwrap();
    let file_s = file.to_str().unwrap();
    let out = server.path("out.raw");
    let out_s = out.to_str().unwrap();

    let from_stdin = server.run_with(&["add", "name=piped"], Input::Bytes(data.clone()));
    from_stdin.assert_no_progress();
    let id = added_id(&from_stdin.success().stdout_text());
    let from_file = server.run(&["add", "name=file", "--file", file_s, "-v"]);
    from_file.assert_no_progress();
    from_file.success();
    let update_queued = server.post_image(&[
        ("name", "queued"),
        ("disk_format", "raw"),
        ("container_format", "bare"),
    ]);
    let update = server.run(&[
        "update",
        update_queued["id"].as_str().unwrap(),
        "--file",
        file_s,
    ]);
    update.assert_no_progress();
    update.success();
    for args in [vec!["download", &id, "-o", out_s], vec!["download", &id]] {
        let run = server.run(&args);
        run.assert_no_progress();
        assert_eq!(run.stderr, "", "glint {args:?} wrote to stderr");
        run.success();
    }
}

#[test]
fn progress_bar_is_drawn_when_stderr_is_a_terminal() {
    let server = Server::start();
    let data = random_image(fresh_seed());
    let file = server.path("image.raw");
    std::fs::write(&file, &data).unwrap();
    let url = server.url.as_str();

    let (code, shown) = run_in_pty(
        &[
            "add",
            "name=tty",
            "--file",
            file.to_str().unwrap(),
            "--url",
            url,
        ],
        b"",
    );
    assert_eq!(code, 0, "add on a terminal failed:\n{shown}");
    assert!(shown.contains("upload"), "no upload bar:\n{shown:?}");
    assert!(shown.contains('%'), "no percentage:\n{shown:?}");
    assert!(
        shown.contains("100%"),
        "the bar does not finish:\n{shown:?}"
    );
    assert!(
        shown.contains('\r'),
        "the bar is not redrawn in place:\n{shown:?}"
    );
    let id = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("Added new image with ID: "))
        .unwrap_or_else(|| panic!("no id in:\n{shown:?}"))
        .trim()
        .to_string();

    let out = server.path("out.raw");
    let (code, shown) = run_in_pty(
        &["download", &id, "-o", out.to_str().unwrap(), "--url", url],
        b"",
    );
    assert_eq!(code, 0, "download on a terminal failed:\n{shown}");
    assert!(shown.contains("download"), "no download bar:\n{shown:?}");
    assert!(
        shown.contains("100%"),
        "the bar does not finish:\n{shown:?}"
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "downloaded bytes differ"
    );
}
