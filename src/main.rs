//! Entry point: logging, the command line, and nothing else.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("hallway=info")))
        .with_writer(std::io::stderr)
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
