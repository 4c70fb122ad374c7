//! What the CLI prints: aligned tables, human-readable sizes, record listings, and a progress bar
//! on stderr for long transfers (only when stderr is a terminal).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::Image;

/// `1536` → `1.5 KiB`; bytes below 1 KiB are shown exactly.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Prints rows under a header, each column as wide as its widest cell; the last column of
/// numbers is right-aligned.
pub fn table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
    right_align: &[usize],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = w - cell.chars().count();
            if right_align.contains(&i) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    line(out, &head)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for row in rows {
        line(out, row)?;
    }
    Ok(())
}

/// The index table of images.
pub fn image_table(out: &mut impl Write, images: &[Image]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.name.clone().unwrap_or_default(),
                i.disk_format.clone().unwrap_or_default(),
                i.container_format.clone().unwrap_or_default(),
                human_size(i.size),
                i.status.to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "ID",
            "Name",
            "Disk Format",
            "Container Format",
            "Size",
            "Status",
        ],
        &rows,
        &[4],
    )
}

/// Every field and property of an image, one per line.
pub fn image_record(out: &mut impl Write, image: &Image) -> std::io::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let yes_no = |b: bool| if b { "Yes" } else { "No" };
    let fields: Vec<(&str, String)> = vec![
        ("Id", image.id.to_string()),
        ("Name", opt(&image.name)),
        ("Status", image.status.to_string()),
        ("Public", yes_no(image.is_public).into()),
        ("Protected", yes_no(image.protected).into()),
        (
            "Size",
            if image.size < 1024 {
                format!("{} B", image.size)
            } else {
                format!("{} ({} bytes)", human_size(image.size), image.size)
            },
        ),
        (
            "Virtual size",
            image.virtual_size.map_or("-".into(), |v| v.to_string()),
        ),
        ("Disk format", opt(&image.disk_format)),
        ("Container format", opt(&image.container_format)),
        ("Checksum", opt(&image.checksum)),
        ("Min RAM (MB)", image.min_ram.to_string()),
        ("Min disk (GB)", image.min_disk.to_string()),
        ("Owner", opt(&image.owner)),
        ("Created at", image.created_at.to_string()),
        ("Updated at", image.updated_at.to_string()),
        ("Deleted", yes_no(image.deleted).into()),
        (
            "Deleted at",
            image.deleted_at.map_or("-".into(), |t| t.to_string()),
        ),
    ];
    for (name, value) in fields {
        writeln!(out, "{name:<17} {value}")?;
    }
    for (key, value) in &image.properties {
        writeln!(out, "Property '{key}': {}", value.as_deref().unwrap_or("-"))?;
    }
    Ok(())
}

/// A transfer progress bar on stderr: bytes, percentage, rate and ETA, redrawn at most every
/// 100 ms. Created only when stderr is a terminal.
pub struct Progress {
    total: Option<u64>,
    start: Instant,
    state: Mutex<(Instant, u64)>,
    label: String,
}

impl Progress {
    /// A bar for a transfer of `total` bytes (if known).
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            start: now,
            state: Mutex::new((now - Duration::from_secs(1), 0)),
            label: label.to_string(),
        }
    }

    /// Records that `done` bytes have moved; redraws if it is time.
    pub fn update(&self, done: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        state.1 = done;
        if now.duration_since(state.0) < Duration::from_millis(100) {
            return;
        }
        state.0 = now;
        self.draw(done, false);
    }

    /// Draws the final state and ends the line.
    pub fn finish(&self) {
        let done = self.state.lock().map(|s| s.1).unwrap_or(0);
        self.draw(done, true);
    }

    fn draw(&self, done: u64, last: bool) {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let mut line = format!("\r{} ", self.label);
        match self.total {
            Some(total) if total > 0 => {
                let frac = (done as f64 / total as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                let eta = if rate > 0.0 {
                    (total.saturating_sub(done)) as f64 / rate
                } else {
                    0.0
                };
                line.push_str(&format!(
                    "[{}{}] {:3.0}% {} / {} {}/s ETA {}s",
                    "=".repeat(filled),
                    " ".repeat(30 - filled),
                    frac * 100.0,
                    human_size(done),
                    human_size(total),
                    human_size(rate as u64),
                    eta.ceil() as u64
                ));
            }
            _ => line.push_str(&format!(
                "{} {}/s",
                human_size(done),
                human_size(rate as u64)
            )),
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{line}\x1b[K");
        if last {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(13_287_936), "12.7 MiB");
        assert_eq!(human_size(1 << 40), "1.0 TiB");
    }

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_string(), "1 B".to_string()],
            vec!["long name".to_string(), "10.0 KiB".to_string()],
        ];
        table(&mut out, &["Name", "Size"], &rows, &[1]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Name           Size\n---------  --------\na               1 B\nlong name  10.0 KiB\n"
        );
    }
}
