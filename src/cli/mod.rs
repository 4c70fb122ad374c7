//! The `glint` command line: the server commands (`serve`, `api`, `registry`) and the image
//! commands of the original tool (`add`, `update`, `delete`, `index`, `details`, `show`,
//! `clear`) plus `download`. Exit codes: 0 success, 1 a failure the server or network reported,
//! 2 a usage error.

mod images;
pub mod output;
mod server;
mod systemd;

use std::ffi::OsString;
use std::process::ExitCode;

use crate::config::App;

/// A usage error: printed with a hint, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Walks command-line arguments, splitting `--name=value`; [`ArgWalker::value`] takes a flag's
/// value from after the `=` or else from the next argument.
struct ArgWalker<'a> {
    rest: std::slice::Iter<'a, String>,
    /// The `value` of the current `--name=value`.
    inline: Option<&'a str>,
}

impl<'a> ArgWalker<'a> {
    fn new(args: &'a [String]) -> ArgWalker<'a> {
        ArgWalker {
            rest: args.iter(),
            inline: None,
        }
    }

    /// The next argument as `(name, whole argument)`: the name of `--name=value` is `--name`,
    /// of anything else the whole argument.
    fn next_arg(&mut self) -> Option<(&'a str, &'a str)> {
        let arg = self.rest.next()?;
        match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                self.inline = Some(value);
                Some((name, arg))
            }
            _ => {
                self.inline = None;
                Some((arg, arg))
            }
        }
    }

    /// The value of flag `name` (the current argument).
    fn value(&mut self, name: &str) -> Result<String, UsageError> {
        self.inline
            .take()
            .or_else(|| self.rest.next().map(String::as_str))
            .map(str::to_string)
            .ok_or_else(|| UsageError(format!("{name} needs a value")))
    }
}

const USAGE: &str = "\
glint: an OpenStack Glance v1 compatible image service and its client

Usage: glint <command> [options] [field=value ...]
       glint <command> --help

";

/// Runs the command line `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<String> = match args
        .into_iter()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument is not UTF-8: {a:?}"))
        })
        .collect()
    {
        Ok(args) => args,
        Err(e) => return usage_error(&e, None),
    };
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}{}\n{}", images::USAGE, server::USAGE);
        return ExitCode::from(2);
    };
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    let result = match command.as_str() {
        "help" | "--help" | "-h" => {
            match rest.first().map(String::as_str) {
                Some(cmd) if images::help(cmd).is_some() => {
                    print!("{}", images::help(cmd).unwrap_or_default())
                }
                _ => print!("{USAGE}{}\n{}", images::USAGE, server::USAGE),
            }
            return ExitCode::SUCCESS;
        }
        "--version" | "version" => {
            println!("glint {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        "serve" | "api" | "registry" | "check" if wants_help => {
            print!("{}", server::USAGE);
            return ExitCode::SUCCESS;
        }
        "serve" => server::run(App::Serve, rest),
        "api" => server::run(App::Api, rest),
        "registry" => server::run(App::Registry, rest),
        "check" => server::check(rest),
        cmd => match images::help(cmd) {
            Some(help) if wants_help => {
                print!("{help}");
                return ExitCode::SUCCESS;
            }
            Some(_) => images::run(cmd, rest),
            None => Err(UsageError(format!("unknown command '{cmd}'"))),
        },
    };
    match result {
        Ok(code) => code,
        Err(UsageError(msg)) => usage_error(&msg, Some(command)),
    }
}

fn usage_error(msg: &str, command: Option<&str>) -> ExitCode {
    match command {
        Some(cmd)
            if images::help(cmd).is_some()
                || ["serve", "api", "registry", "check"].contains(&cmd) =>
        {
            eprintln!("glint {cmd}: {msg}\nRun 'glint {cmd} --help' for usage.")
        }
        _ => eprintln!("glint: {msg}\nRun 'glint help' for usage."),
    }
    ExitCode::from(2)
}
