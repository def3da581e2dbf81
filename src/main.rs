//! Entry point: logging, the command line, and nothing else.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Colours only for a person at a terminal: a log file or journald would get the escape
    // sequences as text. NO_COLOR (no-color.org) turns them off there too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("hallway=info")))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let cli = hallway::cli::Cli::parse();
    match hallway::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hallway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
