//! `ofctl`: the vswitch command-line tool, in the manner of `ovs-ofctl`.
//!
//! It turns one command line into one request on vswitchd's control socket
//! (`control::client`), and the reply into text for people (`print`) or,
//! with `--json`, into the reply's JSON for programs. Flow, match and group
//! texts are checked locally first (`cli`), so syntax errors need no daemon.
//!
//! The exit status and stderr are a contract for scripts: 0 on success; on
//! failure exactly one line, `ofctl: <message>`, with status 2 for a usage
//! error (as clap reports them) and 1 for everything else (bad flow text,
//! no daemon, daemon refusal).
//!
//! It holds no state and never retries: every run is one connection and one
//! request, so `add-flows` of a whole file is one atomic change.
#![forbid(unsafe_code)]

mod cli;
mod print;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::error::ErrorKind;
use clap::Parser;
use control::client::Client;

use cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(&cli) {
        Ok(text) => emit(&text),
        Err(e) => fail(1, &e.to_string()),
    }
}

/// Does what `cli` says and returns what to print.
fn run(cli: &Cli) -> Result<String> {
    let request = cli.command.request()?;
    let timeout = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
    let mut client = Client::connect_with_timeout(&cli.socket, timeout)?;
    let reply = client.call(request)?;
    if cli.json {
        let mut s = serde_json::to_string_pretty(&reply)?;
        s.push('\n');
        Ok(s)
    } else {
        print::human(&cli.command, &reply).map_err(|e| anyhow!(e))
    }
}

/// Writes the output; a reader that went away (`ofctl dump-flows | head`)
/// is not an error.
fn emit(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(1, &format!("cannot write output: {}", cli::io_message(&e))),
    }
}

/// `--help` and `--version` print as clap prints them; every other clap
/// error becomes one line and status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            fail(2, "no command given (try 'ofctl --help')")
        }
        _ => fail(
            2,
            &control::oneline::clap_error_line(&e.render().to_string(), "ofctl"),
        ),
    }
}

/// Prints `ofctl: <msg>` as one line on stderr and returns `code`.
fn fail(code: u8, msg: &str) -> ExitCode {
    let msg = control::oneline::one_line(msg);
    let _ = writeln!(std::io::stderr().lock(), "ofctl: {msg}");
    ExitCode::from(code)
}
