//! Entry point: logging, the configuration file, the command line, and nothing else.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use hallway::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Colours only for a person at a terminal: a log file or journald would get the escape
    // sequences as text. NO_COLOR (no-color.org) turns them off there too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("hallway=info")))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    // The file first, while this is the only thread: its values become environment variables.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let loaded = match hallway::config_file::load(&Cli::command(), &args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("hallway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let matches = Cli::command().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(Command::Config) = cli.command {
        print!("{}", hallway::config_file::describe(&Cli::command(), &matches, &loaded));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hallway: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hallway::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hallway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
