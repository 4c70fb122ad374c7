//! The value rules of §7.1–§7.2 on `x-image-meta-*` headers: unknown names, numbers, formats,
//! lengths, ranges and timestamps are 400 with upstream's message, on POST (leaving no record)
//! and on PUT.

use super::{assert_no_record, fixed_id};
use crate::support::{id_of, ImageServer};

acceptance! {
    unknown_meta_header_is_400_bad_header,
    non_integer_or_negative_numbers_are_400,
    bad_formats_are_400,
    aki_ari_ami_formats_must_match_and_fill_each_other_in,
    name_longer_than_255_is_400,
    checksum_longer_than_32_is_400,
    out_of_range_min_values_and_bad_timestamps_are_400,
}

fn unknown_meta_header_is_400_bad_header(srv: &ImageServer) {
    let id = fixed_id(10);
    srv.post(&[("x-image-meta-id", &id), ("x-image-meta-foo", "bar")])
        .assert_error(400, "Bad header: x-image-meta-foo");
    assert_no_record(srv, &id);
    let image = srv.create(&[]);
    srv.put(&id_of(&image), &[("X-Image-Meta-Colour", "red")])
        .assert_error(400, "Bad header: x-image-meta-colour");
}

fn non_integer_or_negative_numbers_are_400(srv: &ImageServer) {
    let cases = [
        ("x-image-meta-size", "big", "Invalid value 'big' for parameter 'size': Cannot convert image size 'big' to an integer."),
        ("x-image-meta-size", "-1", "Invalid value '-1' for parameter 'size': Cannot be a negative value."),
        ("x-image-meta-size", "1.5", "Cannot convert image size '1.5' to an integer."),
        ("x-image-meta-min_ram", "x", "Cannot convert image min_ram 'x' to an integer."),
        ("x-image-meta-min_disk", "-5", "Invalid value '-5' for parameter 'min_disk': Cannot be a negative value."),
        ("x-image-meta-virtual_size", "huge", "Cannot convert image virtual_size 'huge' to an integer."),
    ];
    let image = srv.create(&[]);
    for (header, value, message) in cases {
        srv.post(&[(header, value)]).assert_error(400, message);
        srv.put(&id_of(&image), &[(header, value)])
            .assert_error(400, message);
    }
    assert_eq!(srv.list("/v1/images?is_public=None").len(), 1);
}

fn bad_formats_are_400(srv: &ImageServer) {
    let cases = [
        (
            "x-image-meta-disk_format",
            "floppy",
            "Invalid disk format 'floppy' for image.",
        ),
        (
            "x-image-meta-container_format",
            "crate",
            "Invalid container format 'crate' for image.",
        ),
        // Present but empty is the value None, which is not a format (§7.1).
        (
            "x-image-meta-disk_format",
            "",
            "Invalid disk format 'None' for image.",
        ),
        (
            "x-image-meta-container_format",
            "",
            "Invalid container format 'None' for image.",
        ),
        (
            "x-image-meta-disk_format",
            "RAW",
            "Invalid disk format 'RAW' for image.",
        ),
    ];
    let image = srv.create(&[]);
    for (header, value, message) in cases {
        srv.post(&[(header, value)]).assert_error(400, message);
        srv.put(&id_of(&image), &[(header, value)])
            .assert_error(400, message);
    }
}

fn aki_ari_ami_formats_must_match_and_fill_each_other_in(srv: &ImageServer) {
    let mismatch = "Invalid mix of disk and container formats. When setting a disk or container format to one of 'aki', 'ari', or 'ami', the container and disk formats must match.";
    for (disk, container) in [("aki", "bare"), ("raw", "ari"), ("ami", "aki")] {
        srv.post(&[
            ("x-image-meta-disk_format", disk),
            ("x-image-meta-container_format", container),
        ])
        .assert_error(400, mismatch);
    }
    let kernel = srv.create(&[("x-image-meta-disk_format", "aki")]);
    assert_eq!(kernel["container_format"], "aki");
    let ramdisk = srv.create(&[("x-image-meta-container_format", "ari")]);
    assert_eq!(ramdisk["disk_format"], "ari");
    let machine = srv.create(&[
        ("x-image-meta-disk_format", "ami"),
        ("x-image-meta-container_format", "ami"),
    ]);
    assert_eq!(machine["disk_format"], "ami");
}

fn name_longer_than_255_is_400(srv: &ImageServer) {
    let long = "n".repeat(256);
    srv.post(&[("x-image-meta-name", &long)])
        .assert_error(400, "Image name too long: 256");
    // Characters, not bytes.
    let wide = "é".repeat(255);
    let image = srv.create(&[("x-image-meta-name", &wide)]);
    assert_eq!(image["name"], wide.as_str());
    srv.put(&id_of(&image), &[("x-image-meta-name", &long)])
        .assert_error(400, "Image name too long: 256");
}

fn checksum_longer_than_32_is_400(srv: &ImageServer) {
    let long = "a".repeat(33);
    srv.post(&[("x-image-meta-checksum", &long)]).assert_error(
        400,
        &format!("Invalid checksum '{long}': can't exceed 32 characters"),
    );
    let image = srv.create(&[("x-image-meta-checksum", &"a".repeat(32))]);
    assert_eq!(image["checksum"], "a".repeat(32));
}

fn out_of_range_min_values_and_bad_timestamps_are_400(srv: &ImageServer) {
    srv.post(&[("x-image-meta-min_disk", "2147483648")])
        .assert_error(400, "must not exceed 2147483647");
    srv.post(&[("x-image-meta-min_ram", "2147483648")])
        .assert_error(400, "must not exceed 2147483647");
    srv.post(&[("x-image-meta-updated_at", "soon")])
        .assert_error(400, "Invalid time format for updated_at.");
    srv.post(&[("x-image-meta-created_at", "1850-01-01T00:00:00")])
        .assert_error(400, "Invalid time format for created_at.");
}
