//! What an uploaded disk image really is, learnt from its bytes as they stream past (issue 13):
//! the format, the guest disk size (`virtual_size`) where the format records one, and the
//! features that make a hypervisor read other files of its host (CVE-2022-47951,
//! CVE-2024-32498): a qcow2 backing file or external data file, unknown qcow2 incompatible
//! features, a VMDK whose descriptor names anything but its own sparse data.
//!
//! Memory is bounded: the first [`HEAD_LEN`] bytes (every header and descriptor glint reads
//! lives there) and the last 512 (a fixed VHD's footer). Nothing is read twice and nothing is
//! copied to disk.

use std::fmt;

/// Bytes kept from the start of the data.
pub const HEAD_LEN: usize = 1 << 20;

/// Bytes kept from the end (the VHD footer).
const TAIL_LEN: usize = 512;

/// The formats glint recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Nothing recognised: a raw disk (also one with a GPT or MBR partition table).
    Raw,
    /// QEMU copy-on-write, versions 2 and 3.
    Qcow2,
    /// VMware sparse (monolithicSparse, streamOptimized) or a descriptor file.
    Vmdk,
    /// Virtual PC / Hyper-V, fixed or dynamic.
    Vhd,
    /// Hyper-V v2.
    Vhdx,
    /// VirtualBox.
    Vdi,
    /// ISO 9660.
    Iso,
    /// QEMU enhanced disk.
    Qed,
    /// A LUKS encrypted volume.
    Luks,
}

impl Format {
    /// The Glance `disk_format` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vdi => "vdi",
            Format::Iso => "iso",
            Format::Qed => "qed",
            Format::Luks => "luks",
        }
    }

    /// The name `qemu-img` knows the format by (`-f`, `-O`): `vpc` for a VHD, and `raw` for an
    /// ISO (qemu has no ISO format; it reads one as the raw bytes it is).
    pub fn qemu_name(self) -> &'static str {
        match self {
            Format::Vhd => "vpc",
            Format::Iso => "raw",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The format.
    pub format: Format,
    /// The guest disk size in bytes, for formats that record one.
    pub virtual_size: Option<u64>,
    /// Why the data must be refused whatever it was declared as, if it must.
    pub unsafe_because: Option<String>,
    /// The partition table raw data starts with, if it starts with one.
    pub partition_table: Option<PartitionTable>,
}

/// A partition table at the start of a raw disk. Raw data with one is still raw (qemu-img
/// and Glance take it as such); the inspector names it so that the upload's log line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    /// A DOS (MBR) partition table.
    Mbr,
    /// A GUID partition table behind its protective MBR.
    Gpt,
}

impl PartitionTable {
    /// The usual name (`mbr`, `gpt`).
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionTable::Mbr => "mbr",
            PartitionTable::Gpt => "gpt",
        }
    }
}

/// The partition table `head` starts with: an MBR is the `55 aa` signature at byte 510 with
/// four entries whose boot flags are `00` or `80` and at least one of them in use (a FAT boot
/// sector carries the signature too, but code where the entries would be); a GPT is an MBR
/// with the protective type `ee` and the `EFI PART` header in the next sector.
fn partition_table(head: &[u8]) -> Option<PartitionTable> {
    if head.get(510..512) != Some(&[0x55, 0xaa][..]) {
        return None;
    }
    let mut used = 0;
    let mut protective = false;
    for entry in head.get(446..510)?.chunks_exact(16) {
        if entry[0] != 0x00 && entry[0] != 0x80 {
            return None;
        }
        if entry[4] != 0 {
            used += 1;
            protective |= entry[4] == 0xee;
        }
    }
    match (used, protective) {
        (0, _) => None,
        (_, true) if head.get(512..520) == Some(&b"EFI PART"[..]) => Some(PartitionTable::Gpt),
        _ => Some(PartitionTable::Mbr),
    }
}

impl Inspection {
    /// The guest disk size to record for data declared as `declared`: only when the declared
    /// format is one glint recognises and the data is it (a `ploop` image is not sized as raw).
    pub fn virtual_size_for(&self, declared: &str) -> Option<u64> {
        let recognised = matches!(
            declared,
            "raw" | "ami" | "ari" | "aki" | "qcow2" | "vmdk" | "vhd" | "vhdx" | "vdi" | "iso"
        );
        if recognised && self.mismatch(declared).is_none() {
            self.virtual_size
        } else {
            None
        }
    }

    /// Why the data does not match the declared `disk_format`, if it does not. `raw` (and the
    /// kernel/ramdisk formats) take raw data, a partitioned disk and an ISO, as Glance allows;
    /// the formats glint cannot recognise (`ploop`, ...) are not checked.
    pub fn mismatch(&self, declared: &str) -> Option<String> {
        let matches = match declared {
            "raw" | "ami" | "ari" | "aki" => matches!(self.format, Format::Raw | Format::Iso),
            "qcow2" | "vmdk" | "vhd" | "vhdx" | "vdi" | "iso" => self.format.as_str() == declared,
            _ => true,
        };
        (!matches).then(|| {
            format!(
                "Image data is {} but disk_format is {declared}; refused \
                 (image_format.require_image_format_match)",
                self.format
            )
        })
    }
}

/// Most bytes kept of a region further in (a VHDX metadata region).
const WINDOW_LEN: u64 = 1 << 20;

/// The most memory [`Inspector::retained`] can report: each buffer at most twice its bound (a
/// `Vec` grows by doubling); the tail holds up to three times its length before it is cut.
pub const MAX_RETAINED: usize = 2 * (HEAD_LEN + 4 * TAIL_LEN + WINDOW_LEN as usize);

/// Sees the data chunk by chunk; [`Inspector::finish`] says what it was.
#[derive(Debug, Default)]
pub struct Inspector {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
    /// A range further in that the head asked for (offset, length), and its bytes so far.
    window: Option<(u64, u64)>,
    window_bytes: Vec<u8>,
}

impl Inspector {
    /// A new inspector.
    pub fn new() -> Inspector {
        Inspector::default()
    }

    /// The next bytes of the data.
    pub fn feed(&mut self, chunk: &[u8]) {
        let at = self.total;
        self.total += chunk.len() as u64;
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() == HEAD_LEN && self.head.starts_with(b"vhdxfile") {
                self.open_window();
            }
        }
        if let Some((offset, len)) = self.window {
            // The window's next byte, if this chunk holds it, and what follows up to its end.
            let next = offset.saturating_add(self.window_bytes.len() as u64);
            let end = offset.saturating_add(len).min(self.total);
            if at <= next && next < end {
                let from = (next - at) as usize;
                let to = (end - at) as usize;
                self.window_bytes.extend_from_slice(&chunk[from..to]);
            }
        }
        if chunk.len() >= TAIL_LEN {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - TAIL_LEN..]);
        } else {
            // Up to twice the tail is kept, so that tiny chunks cost a copy of themselves and
            // not of the whole tail each.
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > 2 * TAIL_LEN {
                let excess = self.tail.len() - TAIL_LEN;
                self.tail.drain(..excess);
            }
        }
    }

    /// Learns the VHDX metadata region from the full head, and takes the part of it the head
    /// already holds: a region in the first MiB has passed by then.
    fn open_window(&mut self) {
        self.window =
            vhdx_metadata_region(&self.head).map(|(offset, len)| (offset, len.min(WINDOW_LEN)));
        if let Some((offset, len)) = self.window {
            if let Ok(start) = usize::try_from(offset) {
                let end = start.saturating_add(len as usize).min(self.head.len());
                if start < end {
                    self.window_bytes.extend_from_slice(&self.head[start..end]);
                }
            }
        }
    }

    /// Bytes of memory the inspector holds for the data (its buffers' capacities): bounded by
    /// [`MAX_RETAINED`] whatever the data.
    pub fn retained(&self) -> usize {
        self.head.capacity() + self.tail.capacity() + self.window_bytes.capacity()
    }

    /// Whether the head of the data has been seen whole (from then on [`Inspector::early`]
    /// can answer).
    pub fn head_seen(&self) -> bool {
        self.head.len() >= HEAD_LEN
    }

    /// What the head of the data already shows, once it has been seen whole: a format found at
    /// the start of the data is final (only a VHDX's size waits for a region further in), so an
    /// upload that must be refused can stop here rather than at its end. `None`: the head shows
    /// no format (raw, or a format found at the end).
    pub fn early(&self) -> Option<Inspection> {
        if !self.head_seen() {
            return None;
        }
        inspect_head(&self.head)
    }

    /// What the data was.
    pub fn finish(&self) -> Inspection {
        if let Some(mut found) = inspect_head(&self.head) {
            if found.format == Format::Vhdx {
                found.virtual_size = vhdx_size(&self.window_bytes);
            }
            return found;
        }
        // A fixed VHD is raw data followed by its footer.
        let tail = &self.tail[self.tail.len().saturating_sub(TAIL_LEN)..];
        if self.total >= TAIL_LEN as u64 && tail.starts_with(b"conectix") {
            return Inspection {
                format: Format::Vhd,
                virtual_size: be_u64(tail, 48),
                unsafe_because: None,
                partition_table: None,
            };
        }
        Inspection {
            format: Format::Raw,
            virtual_size: Some(self.total),
            unsafe_because: None,
            partition_table: partition_table(&self.head),
        }
    }
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The format the head of the data shows, if any but raw.
fn inspect_head(head: &[u8]) -> Option<Inspection> {
    let found = |format, virtual_size, unsafe_because| Inspection {
        format,
        virtual_size,
        unsafe_because,
        partition_table: None,
    };
    if head.starts_with(b"QFI\xfb") {
        return Some(qcow2(head));
    }
    if head.starts_with(b"KDMV") {
        return Some(vmdk_sparse(head));
    }
    if head.starts_with(b"# Disk DescriptorFile") {
        return Some(found(
            Format::Vmdk,
            None,
            Some("a VMDK descriptor file names its data in other files".into()),
        ));
    }
    if head.starts_with(b"conectix") {
        return Some(found(Format::Vhd, be_u64(head, 48), None));
    }
    if head.starts_with(b"vhdxfile") {
        return Some(found(Format::Vhdx, None, None));
    }
    if le_u32(head, 64) == Some(0xbeda_107f) {
        return Some(found(Format::Vdi, le_u64(head, 368), None));
    }
    // No disk_format holds qed or LUKS data, and a hypervisor that probes would open either as
    // a disk: refused whatever the image declares (even with require_image_format_match off,
    // or declared as a format glint does not recognise, such as ploop).
    if head.starts_with(b"QED\0") {
        let backing = le_u64(head, 16).is_some_and(|features| features & 1 != 0);
        let why = if backing {
            "a qed image with a backing file"
        } else {
            "a qed image, which no disk_format holds (a hypervisor would open it as a disk)"
        };
        return Some(found(Format::Qed, le_u64(head, 48), Some(why.to_string())));
    }
    if head.starts_with(b"LUKS\xba\xbe") {
        let why =
            "a LUKS volume, which no disk_format holds (a hypervisor would open it as a disk)";
        return Some(found(Format::Luks, None, Some(why.to_string())));
    }
    if [0x8001, 0x8801, 0x9001]
        .iter()
        .any(|at| head.get(*at..*at + 5) == Some(b"CD001"))
    {
        return Some(found(Format::Iso, None, None));
    }
    None
}

/// qcow2: the virtual size at 24; a backing file (offset at 8) or, in version 3, the external
/// data file bit or any incompatible feature bit glint does not know makes it unsafe.
fn qcow2(head: &[u8]) -> Inspection {
    let version = be_u32(head, 4).unwrap_or(0);
    let mut why = None;
    if be_u64(head, 8).is_some_and(|off| off != 0) {
        why = Some("a qcow2 image with a backing file".to_string());
    } else if version >= 3 {
        // Bits 0 dirty, 1 corrupt, 2 external data file, 3 compression type, 4 extended L2.
        let features = be_u64(head, 72).unwrap_or(u64::MAX);
        if features & (1 << 2) != 0 {
            why = Some("a qcow2 image with an external data file".to_string());
        } else if features & !0b11011 != 0 {
            why = Some(format!(
                "a qcow2 image with unknown incompatible features ({features:#x})"
            ));
        }
    } else if version != 2 {
        why = Some(format!("a qcow2 image of unknown version {version}"));
    }
    Inspection {
        format: Format::Qcow2,
        virtual_size: be_u64(head, 24),
        unsafe_because: why,
        partition_table: None,
    }
}

/// VMDK sparse extent: capacity in sectors at 12, the embedded descriptor at the sector offset
/// and length of 28 and 36. Only monolithicSparse and streamOptimized, with one SPARSE extent
/// (the file itself), are safe; a grain directory at the end with no capacity in the header is
/// a footer glint cannot read while streaming.
fn vmdk_sparse(head: &[u8]) -> Inspection {
    let capacity = le_u64(head, 12).map(|sectors| sectors.saturating_mul(512));
    let refuse = |why: String| Inspection {
        format: Format::Vmdk,
        virtual_size: capacity,
        unsafe_because: Some(why),
        partition_table: None,
    };
    let (Some(offset), Some(len)) = (le_u64(head, 28), le_u64(head, 36)) else {
        return refuse("a VMDK header too short to read".into());
    };
    let start = usize::try_from(offset.saturating_mul(512)).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(len.saturating_mul(512)).unwrap_or(usize::MAX));
    let Some(descriptor) = head
        .get(start..end.min(head.len()))
        .filter(|d| !d.is_empty())
    else {
        return refuse("a VMDK whose descriptor glint cannot read while streaming".into());
    };
    let text = String::from_utf8_lossy(descriptor);
    let text = text.trim_end_matches('\0');
    let create_type = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("createType="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    if !matches!(create_type.as_str(), "monolithicSparse" | "streamOptimized") {
        return refuse(format!(
            "a VMDK of createType \"{create_type}\" (its data lives in other files)"
        ));
    }
    let extents: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["RW ", "RDONLY ", "NOACCESS "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let one_sparse = extents.len() == 1 && extents[0].split_whitespace().nth(2) == Some("SPARSE");
    if !one_sparse {
        return refuse(format!(
            "a VMDK whose descriptor names other extents than its own sparse data: {extents:?}"
        ));
    }
    const GD_AT_END: u64 = u64::MAX;
    if le_u64(head, 56) == Some(GD_AT_END) && capacity == Some(0) {
        return refuse("a VMDK whose size is only in a footer".into());
    }
    Inspection {
        format: Format::Vmdk,
        virtual_size: capacity,
        unsafe_because: None,
        partition_table: None,
    }
}

const VHDX_METADATA_REGION: [u8; 16] = guid_bytes(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const VHDX_VIRTUAL_DISK_SIZE: [u8; 16] = guid_bytes(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);

/// VHDX: where the metadata region is (offset, length), from the region table at 192 KiB.
fn vhdx_metadata_region(head: &[u8]) -> Option<(u64, u64)> {
    let table = 192 * 1024;
    if head.get(table..table + 4) != Some(b"regi") {
        return None;
    }
    let count = le_u32(head, table + 8)? as usize;
    (0..count.min(2047)).find_map(|i| {
        let entry = table + 16 + i * 32;
        if head.get(entry..entry + 16)? != VHDX_METADATA_REGION {
            return None;
        }
        Some((
            le_u64(head, entry + 16)?,
            u64::from(le_u32(head, entry + 24)?),
        ))
    })
}

/// VHDX: the virtual disk size item of the metadata region.
fn vhdx_size(region: &[u8]) -> Option<u64> {
    if region.get(..8) != Some(b"metadata") {
        return None;
    }
    let entries = region.get(10..12)?;
    let entries = u16::from_le_bytes([entries[0], entries[1]]) as usize;
    (0..entries.min(2047)).find_map(|i| {
        let entry = 32 + i * 32;
        if region.get(entry..entry + 16)? != VHDX_VIRTUAL_DISK_SIZE {
            return None;
        }
        le_u64(region, le_u32(region, entry + 16)? as usize)
    })
}

/// A GUID as it is stored on disk (the first three fields little-endian).
const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(data: &[u8]) -> Inspection {
        let mut i = Inspector::new();
        // Odd chunk sizes: the result must not depend on where chunks end.
        for chunk in data.chunks(7919) {
            i.feed(chunk);
        }
        i.finish()
    }

    fn qcow2_header(version: u32, backing: u64, features: u64, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[8..16].copy_from_slice(&backing.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        h[72..80].copy_from_slice(&features.to_be_bytes());
        h
    }

    #[test]
    fn qcow2_size_and_its_dangerous_features() {
        let plain = inspect(&qcow2_header(3, 0, 0, 1 << 30));
        assert_eq!(plain.format, Format::Qcow2);
        assert_eq!(plain.virtual_size, Some(1 << 30));
        assert_eq!(plain.unsafe_because, None);
        assert!(inspect(&qcow2_header(2, 0x1000, 0, 1))
            .unsafe_because
            .unwrap()
            .contains("backing"));
        assert!(inspect(&qcow2_header(3, 0, 1 << 2, 1))
            .unsafe_because
            .unwrap()
            .contains("data file"));
        assert!(inspect(&qcow2_header(3, 0, 1 << 9, 1))
            .unsafe_because
            .unwrap()
            .contains("unknown"));
        assert_eq!(
            inspect(&qcow2_header(3, 0, 1, 1)).unsafe_because,
            None,
            "dirty is fine"
        );
        assert_eq!(plain.mismatch("qcow2"), None);
        assert_eq!(plain.virtual_size_for("qcow2"), Some(1 << 30));
        assert_eq!(
            plain.virtual_size_for("ploop"),
            None,
            "not sized as what it is not"
        );
        assert!(plain
            .mismatch("raw")
            .unwrap()
            .contains("qcow2 but disk_format is raw"));
    }

    fn vmdk(descriptor: &str, capacity_sectors: u64) -> Vec<u8> {
        let mut h = vec![0u8; 64 * 1024];
        h[..4].copy_from_slice(b"KDMV");
        h[12..20].copy_from_slice(&capacity_sectors.to_le_bytes());
        h[28..36].copy_from_slice(&1u64.to_le_bytes());
        h[36..44].copy_from_slice(&20u64.to_le_bytes());
        h[512..512 + descriptor.len()].copy_from_slice(descriptor.as_bytes());
        h
    }

    #[test]
    fn vmdk_allows_only_its_own_sparse_extent() {
        let ok = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\n\
                  RW 2048 SPARSE \"disk.vmdk\"\n";
        let i = inspect(&vmdk(ok, 2048));
        assert_eq!(
            (i.format, i.virtual_size, i.unsafe_because),
            (Format::Vmdk, Some(1 << 20), None)
        );
        let flat = "createType=\"monolithicSparse\"\nRW 2048 SPARSE \"disk.vmdk\"\nRW 8 FLAT \"/etc/shadow\" 0\n";
        assert!(inspect(&vmdk(flat, 2048))
            .unsafe_because
            .unwrap()
            .contains("other extents"));
        let split = "createType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"a.vmdk\"\n";
        assert!(inspect(&vmdk(split, 2048))
            .unsafe_because
            .unwrap()
            .contains("createType"));
        let text = inspect(b"# Disk DescriptorFile\nRW 8 FLAT \"/dev/sda\" 0\n");
        assert!(text.unsafe_because.unwrap().contains("descriptor file"));
    }

    /// MBR and GPT partition tables are named on raw data; a FAT-like boot sector (signature,
    /// code where the entries are) and a bare signature are not tables.
    #[test]
    fn partition_tables_are_recognised_on_raw_data() {
        let disk = |entries: &[(u8, u8)], efi: bool| {
            let mut d = vec![0u8; 8192];
            for (i, (boot, kind)) in entries.iter().enumerate() {
                d[446 + 16 * i] = *boot;
                d[446 + 16 * i + 4] = *kind;
            }
            d[510] = 0x55;
            d[511] = 0xaa;
            if efi {
                d[512..520].copy_from_slice(b"EFI PART");
            }
            d
        };
        let found = |d: &[u8]| inspect(d).partition_table;
        assert_eq!(
            found(&disk(&[(0x80, 0x83), (0, 0x82)], false)),
            Some(PartitionTable::Mbr)
        );
        assert_eq!(found(&disk(&[(0, 0xee)], true)), Some(PartitionTable::Gpt));
        assert_eq!(found(&disk(&[(0, 0xee)], false)), Some(PartitionTable::Mbr));
        assert_eq!(
            found(&disk(&[(0x3c, 0x90)], false)),
            None,
            "boot code, not entries"
        );
        assert_eq!(found(&disk(&[], false)), None);
        let gpt = inspect(&disk(&[(0, 0xee)], true));
        assert_eq!(gpt.format, Format::Raw);
        assert_eq!(
            gpt.mismatch("raw"),
            None,
            "a partitioned disk may be declared raw"
        );
        assert!(gpt.mismatch("qcow2").is_some());
        assert_eq!(PartitionTable::Gpt.as_str(), "gpt");
    }

    #[test]
    fn other_formats_are_named_and_raw_takes_iso_and_partitions() {
        let mut iso = vec![0u8; 40_000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        let iso = inspect(&iso);
        assert_eq!(iso.format, Format::Iso);
        assert_eq!(iso.mismatch("raw"), None, "an iso may be declared raw");
        assert_eq!(iso.mismatch("iso"), None);

        let mut mbr = vec![0u8; 4096];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let raw = inspect(&mbr);
        assert_eq!((raw.format, raw.virtual_size), (Format::Raw, Some(4096)));
        assert_eq!(raw.partition_table, None, "a signature and no partition");
        assert!(raw.mismatch("qcow2").is_some());

        let mut fixed_vhd = vec![0u8; 10_000];
        let footer = fixed_vhd.len() - 512;
        fixed_vhd[footer..footer + 8].copy_from_slice(b"conectix");
        fixed_vhd[footer + 48..footer + 56].copy_from_slice(&9488u64.to_be_bytes());
        let vhd = inspect(&fixed_vhd);
        assert_eq!((vhd.format, vhd.virtual_size), (Format::Vhd, Some(9488)));

        let mut luks = vec![0u8; 1024];
        luks[..6].copy_from_slice(b"LUKS\xba\xbe");
        assert!(inspect(&luks).mismatch("raw").unwrap().contains("luks"));
        assert!(inspect(&luks).unsafe_because.unwrap().contains("LUKS"));

        let mut qed = vec![0u8; 1024];
        qed[..4].copy_from_slice(b"QED\0");
        qed[16] = 1;
        assert!(inspect(&qed).unsafe_because.unwrap().contains("backing"));
        assert_eq!(
            inspect(&qed).mismatch("ploop"),
            None,
            "unknown formats are not checked"
        );
    }

    /// A VHDX head whose metadata region (64 KiB) is at `region`, recording `size`.
    fn vhdx(region: u64, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 4 << 20];
        h[..8].copy_from_slice(b"vhdxfile");
        let table = 192 * 1024;
        h[table..table + 4].copy_from_slice(b"regi");
        h[table + 8..table + 12].copy_from_slice(&1u32.to_le_bytes());
        let entry = table + 16;
        h[entry..entry + 16].copy_from_slice(&VHDX_METADATA_REGION);
        h[entry + 16..entry + 24].copy_from_slice(&region.to_le_bytes());
        h[entry + 24..entry + 28].copy_from_slice(&(64u32 << 10).to_le_bytes());
        if let Some(at) = usize::try_from(region)
            .ok()
            .filter(|r| r.checked_add(4096).is_some_and(|end| end <= h.len()))
        {
            h[at..at + 8].copy_from_slice(b"metadata");
            h[at + 10..at + 12].copy_from_slice(&1u16.to_le_bytes());
            h[at + 32..at + 48].copy_from_slice(&VHDX_VIRTUAL_DISK_SIZE);
            h[at + 48..at + 52].copy_from_slice(&1024u32.to_le_bytes());
            h[at + 1024..at + 1032].copy_from_slice(&size.to_le_bytes());
        }
        h
    }

    #[test]
    fn a_vhdx_metadata_region_is_read_wherever_it_lies_and_however_the_data_is_cut() {
        for region in [256 << 10, 1 << 20, (1 << 20) - 4096, 3 << 20] {
            let data = vhdx(region, 5 << 30);
            for chunk in [1 << 12, 65_536, 1 << 20, 3 << 20, 4 << 20] {
                let mut i = Inspector::new();
                for piece in data.chunks(chunk) {
                    i.feed(piece);
                }
                let found = i.finish();
                assert_eq!(
                    (found.format, found.virtual_size),
                    (Format::Vhdx, Some(5 << 30)),
                    "region at {region}, chunks of {chunk}"
                );
            }
        }
        // A region offset at the end of the address space is no region, not an overflow.
        for region in [u64::MAX, u64::MAX - 100] {
            let found = inspect(&vhdx(region, 1));
            assert_eq!((found.format, found.virtual_size), (Format::Vhdx, None));
        }
    }

    #[test]
    fn memory_stays_bounded_whatever_the_size() {
        let mut i = Inspector::new();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            i.feed(&chunk);
        }
        assert_eq!(i.head.len(), HEAD_LEN);
        assert_eq!(i.tail.len(), TAIL_LEN);
        assert!(i.retained() <= MAX_RETAINED);
        assert_eq!(i.finish().virtual_size, Some(64 << 20));
        // Tiny chunks too: the tail stays bounded.
        for _ in 0..10_000 {
            i.feed(&[7u8; 3]);
        }
        assert!(i.tail.len() <= 3 * TAIL_LEN);
        assert!(i.retained() <= MAX_RETAINED);
    }
}

/// The inspector against images made by the real `qemu-img` (Debian's qemu-utils, which
/// `scripts/test.sh` installs): format, virtual size as qemu-img reports it, and the refusals.
#[cfg(test)]
mod qemu_img {
    use super::*;
    use std::process::Command;

    /// Runs `qemu-img create` in `dir`; `None` (with a loud line) when qemu-img is missing and
    /// the run does not require it.
    fn create(dir: &std::path::Path, args: &[&str]) -> Option<Vec<u8>> {
        let status = Command::new("qemu-img")
            .current_dir(dir)
            .args(["create", "-q"])
            .args(args)
            .status();
        match status {
            Ok(s) => assert!(s.success(), "qemu-img create {args:?} failed"),
            Err(e) => {
                assert!(
                    std::env::var("GLINT_REQUIRE_STORES").as_deref() != Ok("1"),
                    "qemu-img is needed ({e}); scripts/test.sh installs it"
                );
                eprintln!("SKIPPED: qemu-img not installed ({e})");
                return None;
            }
        }
        // The image is the first positional argument: the one after the options.
        let mut rest = args.iter();
        let name = loop {
            match rest.next() {
                Some(flag) if flag.starts_with('-') => {
                    rest.next();
                }
                Some(name) => break *name,
                None => panic!("no file name in {args:?}"),
            }
        };
        Some(std::fs::read(dir.join(name)).unwrap())
    }

    #[test]
    fn images_made_by_qemu_img_are_recognised_and_the_dangerous_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        /// `qemu-img create` arguments, the format, the virtual size, part of the refusal.
        type Case<'a> = (&'a [&'a str], Format, Option<u64>, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (
                &["-f", "qcow2", "a.qcow2", "1G"],
                Format::Qcow2,
                Some(1 << 30),
                None,
            ),
            (
                &["-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2"],
                Format::Qcow2,
                Some(1 << 30),
                Some("backing file"),
            ),
            (
                &["-f", "qcow2", "-o", "data_file=ext.raw", "c.qcow2", "64M"],
                Format::Qcow2,
                Some(64 << 20),
                Some("external data file"),
            ),
            (
                &["-f", "vmdk", "d.vmdk", "100M"],
                Format::Vmdk,
                Some(100 << 20),
                None,
            ),
            (
                &[
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=streamOptimized",
                    "e.vmdk",
                    "100M",
                ],
                Format::Vmdk,
                Some(100 << 20),
                None,
            ),
            (
                &[
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=twoGbMaxExtentFlat",
                    "f.vmdk",
                    "10M",
                ],
                Format::Vmdk,
                None,
                Some("descriptor file"),
            ),
            (
                &["-f", "vpc", "g.vhd", "100M"],
                Format::Vhd,
                Some(104_865_792),
                None,
            ),
            (
                &["-f", "vpc", "-o", "subformat=fixed", "h.vhd", "10M"],
                Format::Vhd,
                Some(10_514_432),
                None,
            ),
            (
                &["-f", "vhdx", "i.vhdx", "100M"],
                Format::Vhdx,
                Some(100 << 20),
                None,
            ),
            (
                &["-f", "vdi", "j.vdi", "100M"],
                Format::Vdi,
                Some(100 << 20),
                None,
            ),
            (
                &["-f", "qed", "k.qed", "100M"],
                Format::Qed,
                Some(100 << 20),
                Some("no disk_format holds"),
            ),
            (
                &[
                    "--object",
                    "secret,id=s0,data=glint",
                    "-f",
                    "luks",
                    "-o",
                    "key-secret=s0,iter-time=10",
                    "l.luks",
                    "16M",
                ],
                Format::Luks,
                None,
                Some("LUKS volume"),
            ),
        ];
        for (args, format, size, refusal) in cases {
            let Some(data) = create(d, args) else { return };
            let mut inspector = Inspector::new();
            for chunk in data.chunks(65_536) {
                inspector.feed(chunk);
            }
            let got = inspector.finish();
            assert_eq!(got.format, *format, "{args:?}");
            if size.is_some() {
                assert_eq!(got.virtual_size, *size, "{args:?}");
            }
            match refusal {
                None => assert_eq!(got.unsafe_because, None, "{args:?}"),
                Some(why) => assert!(
                    got.unsafe_because
                        .as_deref()
                        .is_some_and(|w| w.contains(why)),
                    "{args:?}: {:?}",
                    got.unsafe_because
                ),
            }
        }
    }
}
