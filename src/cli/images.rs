//! The image commands: `add`, `update`, `delete`, `index`, `details`, `show`, `download`,
//! `convert` and `clear`, on [`crate::client::Client`]. Arguments follow the original tool: `field=value`
//! pairs, where any field that is not an image field becomes a custom property.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::output::{image_record, image_table, Progress};
use super::UsageError;
use crate::client::{Client, Error, Upload};
use crate::model::{parse_image_id, Image};
use crate::patch::ImagePatch;

/// Overview of the image commands.
pub const USAGE: &str = "\
Image commands (talk to the Images API at --url, GLINT_URL, default http://127.0.0.1:9292):
  add       create an image: glint add name=NAME [field=value ...] [--file PATH | < DATA]
  update    change an image: glint update ID [field=value ...] [--purge-props] [--file PATH]
  delete    delete images:   glint delete ID [ID ...] [--yes]
  index     list images as a table: glint index [--all] [filter=value ...]
  details   list images with every field: glint details [--all] [filter=value ...]
  show      show one image: glint show ID
  download  save an image's data: glint download ID [-o FILE]
  convert   convert to another format: glint convert ID disk_format=FORMAT [field=value ...]
  clear     delete every image: glint clear [--yes]

Common options: --url URL, --json (machine-readable output), -v/--verbose, -y/--yes.
";

const ADD_HELP: &str = "\
Usage: glint add name=NAME [field=value ...] [--file PATH] [--store NAME] [< DATA]

Creates an image. Image data comes from --file PATH, or from standard input when it is not a
terminal; without data (or with location=URL) only the record is created. disk_format defaults
to raw and container_format to ovf. Fields: name disk_format container_format size checksum
is_public protected min_ram min_disk owner location id virtual_size; any other field becomes a
custom property. A progress bar is shown on stderr when it is a terminal.

Example:
  glint add name=\"My Image\" disk_format=raw container_format=ovf is_public=true < image.raw
";

const UPDATE_HELP: &str = "\
Usage: glint update ID [field=value ...] [--purge-props] [--file PATH]

Changes an image's fields; unknown fields become custom properties. Properties not named are
kept, unless --purge-props is given. --file uploads data to an image that has none yet (queued).

Example:
  glint update 2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11 is_public=true type=kernel
";

const DELETE_HELP: &str = "\
Usage: glint delete ID [ID ...] [--yes]

Deletes images; on a terminal, asks first unless --yes is given.

Example:
  glint delete 2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11 --yes
";

const INDEX_HELP: &str = "\
Usage: glint index [--all] [--json] [filter=value ...]

Lists images as a table (ID, name, formats, size, status). Without --all, only public images
are listed (as the server does for callers without an owner). Filters: name status disk_format
container_format size_min size_max min_ram min_disk protected changes-since property-KEY,
sort_key sort_dir limit.

Example:
  glint index --all status=active sort_key=size sort_dir=asc
";

const DETAILS_HELP: &str = "\
Usage: glint details [--all] [--json] [filter=value ...]

Lists images with every field and property; same filters as index.

Example:
  glint details name=cirros
";

const SHOW_HELP: &str = "\
Usage: glint show ID [--json]

Shows every field and property of one image.

Example:
  glint show 2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11
";

const DOWNLOAD_HELP: &str = "\
Usage: glint download ID [-o FILE]

Saves an image's data to FILE (or standard output when it is not a terminal), checking the MD5
against the image's checksum. A progress bar is shown on stderr when it is a terminal.

Example:
  glint download 2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11 -o cirros.qcow2
";

const CONVERT_HELP: &str = "\
Usage: glint convert ID disk_format=FORMAT [field=value ...] [--store NAME] [--json]

Creates a new image whose data is image ID's converted by the server with qemu-img to FORMAT
(raw, qcow2, vmdk, vhd, vhdx, vdi), and prints it once it is active. The new image takes the
source's name, container format, min_disk, min_ram and properties, unless given here, and gets
the property converted_from=ID. --store picks the store of the new image.

Example:
  glint convert 2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11 disk_format=qcow2 name=\"cirros (qcow2)\"
";

const CLEAR_HELP: &str = "\
Usage: glint clear [--yes] [-v]

Deletes every image (public and private). On a terminal, asks first unless --yes is given.

Example:
  glint clear --yes -v
";

/// The help text of an image command, or `None` if `cmd` is not one.
pub fn help(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "add" => ADD_HELP,
        "update" => UPDATE_HELP,
        "delete" => DELETE_HELP,
        "index" => INDEX_HELP,
        "details" => DETAILS_HELP,
        "show" => SHOW_HELP,
        "download" => DOWNLOAD_HELP,
        "convert" => CONVERT_HELP,
        "clear" => CLEAR_HELP,
        _ => return None,
    })
}

/// Parsed arguments of an image command.
#[derive(Debug, Default)]
struct Args {
    url: Option<String>,
    json: bool,
    verbose: bool,
    yes: bool,
    all: bool,
    purge_props: bool,
    file: Option<String>,
    output: Option<String>,
    store: Option<String>,
    positional: Vec<String>,
    fields: Vec<(String, String)>,
}

fn parse(cmd: &str, raw: &[String]) -> Result<Args, UsageError> {
    let mut a = Args::default();
    let mut args = super::ArgWalker::new(raw);
    while let Some((name, arg)) = args.next_arg() {
        match name {
            "--url" => a.url = Some(args.value(name)?),
            "--json" => a.json = true,
            "-v" | "--verbose" => a.verbose = true,
            "-y" | "--yes" => a.yes = true,
            "--all" if matches!(cmd, "index" | "details") => a.all = true,
            "--purge-props" if cmd == "update" => a.purge_props = true,
            "-f" | "--file" if matches!(cmd, "add" | "update") => a.file = Some(args.value(name)?),
            "--store" if matches!(cmd, "add" | "convert") => a.store = Some(args.value(name)?),
            "-o" | "--output" if cmd == "download" => a.output = Some(args.value(name)?),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(UsageError(format!("unknown option '{flag}'")))
            }
            _ => match arg.split_once('=') {
                Some((k, v)) if !k.is_empty() => a
                    .fields
                    .push((k.to_string(), v.trim_end_matches(',').to_string())),
                Some(_) => {
                    return Err(UsageError(format!(
                        "Arguments should be in the form of field=value. You specified {arg}."
                    )))
                }
                None => a.positional.push(arg.to_string()),
            },
        }
    }
    Ok(a)
}

/// Runs image command `cmd` with its arguments.
pub fn run(cmd: &str, raw: &[String]) -> Result<ExitCode, UsageError> {
    let args = parse(cmd, raw)?;
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("GLINT_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "http://127.0.0.1:9292".to_string());
    if !url.starts_with("http://") {
        return Err(UsageError(format!(
            "--url must be an http:// URL, got '{url}'"
        )));
    }
    let client = Client::new(&url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))?;
    let outcome = runtime.block_on(async {
        match cmd {
            "add" => add(&client, &args).await,
            "update" => update(&client, &args).await,
            "delete" => delete(&client, &args).await,
            "index" => index(&client, &args, false).await,
            "details" => index(&client, &args, true).await,
            "show" => show(&client, &args).await,
            "download" => download(&client, &args).await,
            "convert" => convert(&client, &args).await,
            "clear" => clear(&client, &args).await,
            _ => Err(Failure::Usage(UsageError(format!(
                "unknown command '{cmd}'"
            )))),
        }
    });
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Usage(u)) => Err(u),
        Err(Failure::Client(e)) => {
            eprintln!("glint {cmd}: {}", one_line(&e.to_string()));
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Other(msg)) => {
            eprintln!("glint {cmd}: {}", one_line(&msg));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// How an image command failed.
enum Failure {
    /// Bad arguments: exit 2.
    Usage(UsageError),
    /// The server or the network said no: exit 1.
    Client(Error),
    /// A local failure (files, terminal): exit 1.
    Other(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Client(e)
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(UsageError(msg.into()))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns `field=value` pairs into a patch; fields that are not image fields become properties.
fn patch_from_fields(fields: &[(String, String)], creating: bool) -> Result<ImagePatch, Failure> {
    let mut p = ImagePatch::default();
    let mut props = BTreeMap::new();
    for (key, value) in fields {
        let field = key.to_ascii_lowercase().replace('-', "_");
        let text = || (!value.is_empty()).then(|| value.clone());
        let int = || {
            value.parse::<u64>().map_err(|_| {
                usage(format!(
                    "{field} must be a non-negative integer, got '{value}'"
                ))
            })
        };
        match field.as_str() {
            "name" => p.name = Some(text()),
            "disk_format" => p.disk_format = Some(text()),
            "container_format" => p.container_format = Some(text()),
            "checksum" => p.checksum = Some(text()),
            "owner" => p.owner = Some(text()),
            "location" => p.location = Some(text()),
            "size" => p.size = Some(int()?),
            "min_ram" => p.min_ram = Some(int()?),
            "min_disk" => p.min_disk = Some(int()?),
            "virtual_size" => {
                p.virtual_size = Some(if value == "None" || value.is_empty() {
                    None
                } else {
                    Some(int()?)
                })
            }
            "is_public" => p.is_public = Some(crate::http::meta_headers::truthy(value)),
            "protected" => p.protected = Some(crate::http::meta_headers::truthy(value)),
            "id" if creating => {
                p.id = Some(
                    parse_image_id(value)
                        .ok_or_else(|| usage(format!("id must be a UUID, got '{value}'")))?,
                )
            }
            "id" | "status" | "created_at" | "updated_at" | "deleted_at" | "deleted" => {
                return Err(usage(format!(
                    "{field} is managed by the server and cannot be set"
                )))
            }
            _ => {
                props.insert(field, text());
            }
        }
    }
    if !props.is_empty() {
        p.properties = Some(props);
    }
    Ok(p)
}

/// Writes to standard output; a closed pipe (`glint index | head`) ends output quietly.
fn emit(
    write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Other(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

fn say(text: &str) -> Result<(), Failure> {
    emit(|out| writeln!(out, "{text}"))
}

/// An image as JSON, without the registry-only `location` (as the Images API shows it, §4.3).
fn print_image_json(image: &Image) -> Result<(), Failure> {
    print_json(&image.public_view())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Other(e.to_string()))?;
    say(&text)
}

fn print_record(image: &Image) -> Result<(), Failure> {
    emit(|out| image_record(out, image))
}

/// Opens the data to upload: `--file PATH` (`-` is standard input), or standard input when it is
/// not a terminal and `stdin_by_default`. A regular file is sent with its length.
async fn open_data(
    args: &Args,
    stdin_by_default: bool,
) -> Result<Option<(Upload, Option<Arc<Progress>>)>, Failure> {
    let path = match &args.file {
        Some(p) => p.clone(),
        None if stdin_by_default && !std::io::stdin().is_terminal() => "-".to_string(),
        None => return Ok(None),
    };
    let file = if path == "-" {
        let fd = std::io::stdin().lock();
        let owned = std::os::fd::AsFd::as_fd(&fd)
            .try_clone_to_owned()
            .map_err(|e| Failure::Other(format!("cannot read standard input: {e}")))?;
        std::fs::File::from(owned)
    } else {
        std::fs::File::open(&path)
            .map_err(|e| Failure::Other(format!("cannot open {path}: {e}")))?
    };
    let meta = file
        .metadata()
        .map_err(|e| Failure::Other(format!("cannot read {path}: {e}")))?;
    let length = meta.is_file().then_some(meta.len());
    let upload = Upload::new(tokio::fs::File::from_std(file), length);
    Ok(Some(if std::io::stderr().is_terminal() {
        let bar = Arc::new(Progress::new("upload", length));
        let b = bar.clone();
        (upload.with_progress(move |n| b.update(n)), Some(bar))
    } else {
        (upload, None)
    }))
}

async fn add(client: &Client, args: &Args) -> Result<(), Failure> {
    if let Some(extra) = args.positional.first() {
        return Err(usage(format!(
            "Arguments should be in the form of field=value. You specified {extra}."
        )));
    }
    let mut patch = patch_from_fields(&args.fields, true)?;
    if !matches!(&patch.name, Some(Some(_))) {
        return Err(usage(
            "Please specify a name for the image using name=VALUE",
        ));
    }
    patch.disk_format.get_or_insert(Some("raw".into()));
    patch.container_format.get_or_insert(Some("ovf".into()));
    let has_location = matches!(&patch.location, Some(Some(_)));
    if has_location && args.file.is_some() {
        return Err(usage("Either supply a location=LOCATION argument or supply image data with --file, not both."));
    }
    let (data, bar) = open_data(args, !has_location).await?.unzip();
    let image = client.create(&patch, args.store.as_deref(), data).await?;
    if let Some(bar) = bar.flatten() {
        bar.finish();
    }
    if args.json {
        return print_image_json(&image);
    }
    say(&format!("Added new image with ID: {}", image.id))?;
    if args.verbose {
        print_record(&image)?;
    }
    Ok(())
}

fn one_id(args: &Args, cmd: &str) -> Result<String, Failure> {
    match args.positional.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(usage(format!("{cmd} needs an image ID"))),
        [_, extra, ..] => Err(usage(format!("unexpected argument '{extra}'"))),
    }
}

async fn update(client: &Client, args: &Args) -> Result<(), Failure> {
    let id = one_id(args, "update")?;
    let patch = patch_from_fields(&args.fields, false)?;
    let (data, bar) = open_data(args, false).await?.unzip();
    let image = client.update(&id, &patch, args.purge_props, data).await?;
    if let Some(bar) = bar.flatten() {
        bar.finish();
    }
    if args.json {
        return print_image_json(&image);
    }
    say(&format!("Updated image {}", image.id))?;
    if args.verbose {
        print_record(&image)?;
    }
    Ok(())
}

/// Asks on the terminal; without one (or with --yes) the answer is yes.
fn confirm(args: &Args, question: &str) -> Result<bool, Failure> {
    if args.yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::Other(e.to_string()))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

async fn delete(client: &Client, args: &Args) -> Result<(), Failure> {
    if args.positional.is_empty() {
        return Err(usage("delete needs at least one image ID"));
    }
    let question = format!(
        "Delete {} image(s): {}?",
        args.positional.len(),
        args.positional.join(", ")
    );
    if !confirm(args, &question)? {
        return Err(Failure::Other("not confirmed; nothing deleted".into()));
    }
    for id in &args.positional {
        client.delete(id).await?;
        if !args.json {
            say(&format!("Deleted image {id}"))?;
        }
    }
    Ok(())
}

async fn index(client: &Client, args: &Args, detail: bool) -> Result<(), Failure> {
    if let Some(extra) = args.positional.first() {
        return Err(usage(format!(
            "unexpected argument '{extra}' (filters are field=value)"
        )));
    }
    let mut filters: Vec<(&str, &str)> = args
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if args.all {
        filters.push(("is_public", "None"));
    }
    // The table shows the status, which only the detailed list carries.
    let images = client.details(&filters).await?;
    if args.json {
        let images: Vec<_> = images.iter().map(Image::public_view).collect();
        return print_json(&images);
    }
    if images.is_empty() {
        return say("No images found.");
    }
    emit(|out| {
        if detail {
            for image in &images {
                writeln!(out, "{}", "=".repeat(80))?;
                image_record(out, image)?;
            }
            writeln!(out, "{}", "=".repeat(80))
        } else {
            image_table(out, &images)
        }
    })
}

async fn show(client: &Client, args: &Args) -> Result<(), Failure> {
    let id = one_id(args, "show")?;
    let image = client.show(&id).await?;
    if args.json {
        print_image_json(&image)
    } else {
        print_record(&image)
    }
}

async fn download(client: &Client, args: &Args) -> Result<(), Failure> {
    let id = one_id(args, "download")?;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(usage(
            "refusing to write image data to a terminal; use -o FILE or a redirect",
        ));
    }
    let mut download = client.download(&id).await?;
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| Progress::new("download", download.size));
    let (mut out, partial): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<String>) =
        match &args.output {
            Some(path) if path != "-" => {
                let partial = format!("{path}.partial");
                let file = tokio::fs::File::create(&partial)
                    .await
                    .map_err(|e| Failure::Other(format!("cannot create {partial}: {e}")))?;
                (Box::new(file), Some(partial))
            }
            _ => (Box::new(tokio::io::stdout()), None),
        };
    let result = async {
        let mut md5 = Md5::new();
        let mut done = 0u64;
        while let Some(chunk) = download.chunk().await? {
            md5.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| Failure::Other(format!("write failed: {e}")))?;
            done += chunk.len() as u64;
            if let Some(bar) = &bar {
                bar.update(done);
            }
        }
        out.flush()
            .await
            .map_err(|e| Failure::Other(format!("write failed: {e}")))?;
        if let Some(bar) = &bar {
            bar.finish();
        }
        if download.size.is_some_and(|s| s != done) {
            return Err(Failure::Other(format!(
                "download ended after {done} of {} bytes",
                download.size.unwrap_or(0)
            )));
        }
        let actual: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        match &download.image.checksum {
            Some(expected) if *expected != actual => Err(Failure::Other(format!(
                "checksum mismatch: the server says {expected}, the data is {actual}"
            ))),
            _ => Ok(()),
        }
    }
    .await;
    drop(out);
    match (&result, partial, &args.output) {
        (Ok(()), Some(partial), Some(path)) => tokio::fs::rename(&partial, path)
            .await
            .map_err(|e| Failure::Other(format!("cannot rename {partial} to {path}: {e}")))?,
        (Err(_), Some(partial), _) => {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        _ => {}
    }
    result
}

async fn convert(client: &Client, args: &Args) -> Result<(), Failure> {
    let id = one_id(args, "convert")?;
    let patch = patch_from_fields(&args.fields, false)?;
    if !matches!(&patch.disk_format, Some(Some(_))) {
        return Err(usage(
            "Please name the format to convert to with disk_format=FORMAT",
        ));
    }
    let image = client.convert(&id, &patch, args.store.as_deref()).await?;
    if args.json {
        return print_image_json(&image);
    }
    print_record(&image)
}

async fn clear(client: &Client, args: &Args) -> Result<(), Failure> {
    if let Some(extra) = args.positional.first() {
        return Err(usage(format!("unexpected argument '{extra}'")));
    }
    let images = client.details(&[("is_public", "None")]).await?;
    if images.is_empty() {
        if !args.json {
            say("No images to delete.")?;
        }
        return Ok(());
    }
    if !confirm(args, &format!("Delete all {} images?", images.len()))? {
        return Err(Failure::Other("not confirmed; nothing deleted".into()));
    }
    let mut failed = 0;
    for image in &images {
        let name = image.name.as_deref().unwrap_or("");
        match client.delete(&image.id.to_string()).await {
            Ok(()) if args.verbose => {
                say(&format!("Deleting image {} \"{name}\" ... done", image.id))?
            }
            Ok(()) => {}
            Err(e) => {
                failed += 1;
                eprintln!(
                    "glint clear: could not delete {} \"{name}\": {}",
                    image.id,
                    one_line(&e.to_string())
                );
            }
        }
    }
    if failed > 0 {
        return Err(Failure::Other(format!(
            "{failed} of {} images could not be deleted",
            images.len()
        )));
    }
    if !args.verbose && !args.json {
        say(&format!("Deleted {} images.", images.len()))?;
    }
    Ok(())
}
