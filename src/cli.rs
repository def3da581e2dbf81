//! The command line: `hallway` serves; `hallway user ...` manages accounts (add, list,
//! passwd, disable, enable, role) and `hallway compact` rewrites the data file while the
//! server is stopped; `hallway backup` works either way (through the running server's
//! control socket, `control.rs`). Each option is declared once here with its environment
//! variable; defaults live in `config.rs`; `config_file.rs` reads the same options from a file.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::core::records::Policy;
use crate::core::{AccountChange, By, Hub, Settings, new_account};
use crate::discovery::{self, HostName};
use crate::limits::RateLimits;
use crate::model::Role;
use crate::server::Server;
use crate::store::writer::Writer;
use crate::store::{Change, ContentKey, Store, StoreError};

mod file;
use file::{backup, check, compact, purge, restore};

#[derive(Parser, Debug)]
#[command(name = "hallway", version, about = "The office chat appliance: one binary, one data file.")]
pub struct Cli {
    /// A configuration file of these same options (TOML: `listen = "0.0.0.0:8088"`); default
    /// /etc/hallway/hallway.toml when it exists. Environment variables and flags win over it.
    #[arg(long, global = true, env = "HALLWAY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The data file (created if missing).
    #[arg(long, global = true, env = "HALLWAY_DATA", value_name = "PATH", default_value = config::DEFAULT_DATA)]
    pub data: PathBuf,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "HALLWAY_LISTEN", value_name = "ADDR:PORT", help_heading = "Network", default_value_t = config::default_listen())]
    pub listen: SocketAddr,
    /// Also serve GET /metrics (Prometheus) on this address, without sign-in: keep it on
    /// loopback or a monitoring network. Without it, /metrics is for signed-in admins only.
    #[arg(long, env = "HALLWAY_METRICS_LISTEN", value_name = "ADDR:PORT", help_heading = "Network")]
    pub metrics_listen: Option<SocketAddr>,
    /// Do not announce the server on the LAN over mDNS.
    #[arg(long, env = "HALLWAY_NO_MDNS", help_heading = "Network")]
    pub no_mdns: bool,
    /// The name announced on the LAN: people open http://NAME.local:PORT/ (a name another
    /// machine already uses gets a suffix, such as hallway-2).
    #[arg(long, env = "HALLWAY_NAME", value_name = "NAME", help_heading = "Network", default_value = crate::discovery::DEFAULT_NAME)]
    pub name: HostName,
    /// Serve HTTPS, with a certificate authority of the server's own (made once, kept in
    /// DATA.tls/ beside the data file): people install it once per device from /ca. Plain
    /// HTTP on the same port is redirected. Browsers show desktop notifications only on a
    /// secure page: over HTTPS, or on the server's own machine.
    #[arg(long, env = "HALLWAY_HTTPS", help_heading = "Network")]
    pub https: bool,
    /// Announce on these network interfaces only (comma-separated names, such as eth0);
    /// default: every one but loopback.
    #[arg(long, env = "HALLWAY_MDNS_INTERFACE", value_name = "IFACES", help_heading = "Network", value_delimiter = ',')]
    pub mdns_interface: Vec<String>,
    /// Largest WebSocket frame or request body, in bytes.
    #[arg(long, env = "HALLWAY_MAX_FRAME", value_name = "BYTES", help_heading = "Limits", default_value_t = config::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Largest file one may attach to a message, in bytes (the web client says so before
    /// sending; the server refuses bigger ones with 413).
    #[arg(long, env = "HALLWAY_MAX_FILE_SIZE", value_name = "BYTES", help_heading = "Limits", default_value_t = config::DEFAULT_MAX_FILE_SIZE,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_file_size: u64,
    /// Turn off the per-tab and per-person rate limits (for load tests of the server itself;
    /// never on an office's server: one broken client could then stall everyone).
    #[arg(long, env = "HALLWAY_NO_RATE_LIMITS", help_heading = "Limits")]
    pub no_rate_limits: bool,
    /// What is kept of conversations: off (nothing ever reaches the disk), keep (each
    /// conversation chooses), retain:DAYS (at most DAYS days) or archive (everything, for a
    /// compliance reviewer; nobody can turn it off). Without it, what an admin chose on the
    /// admin page, else keep; with it, the admin page cannot change it.
    #[arg(long, env = "HALLWAY_RECORDS", value_name = "POLICY", help_heading = "Records")]
    pub records: Option<Policy>,
    /// Seconds a message that is not recorded stays in memory for tabs catching up.
    #[arg(long, env = "HALLWAY_RECORDS_BUFFER", value_name = "SECS", help_heading = "Records", default_value_t = config::DEFAULT_RECORDS_BUFFER.as_secs())]
    pub records_buffer: u64,
    /// Days a signed-in browser may go unused before its session ends.
    #[arg(long, env = "HALLWAY_SESSION_IDLE_DAYS", value_name = "DAYS", help_heading = "Accounts", default_value_t = config::DEFAULT_SESSION_IDLE_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub session_idle_days: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "HALLWAY_HEADER_TIMEOUT", value_name = "SECS", help_heading = "Limits", default_value_t = config::DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "HALLWAY_IDLE_TIMEOUT", value_name = "SECS", help_heading = "Limits", default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Connections open at once (0: as many as the open-file limit allows).
    #[arg(long, env = "HALLWAY_MAX_CONNECTIONS", value_name = "N", help_heading = "Limits", default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections open at once from one address (0: no cap).
    #[arg(long, env = "HALLWAY_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N", help_heading = "Limits", default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Failed sign-ins one address may make at once (browsers without a device cookie).
    #[arg(long, env = "HALLWAY_SIGNIN_ADDRESS_BURST", value_name = "N", help_heading = "Accounts", default_value_t = config::DEFAULT_SIGNIN_ADDRESS_BURST)]
    pub signin_address_burst: u32,
    /// Seconds until an address may make one more failed sign-in once its burst is spent.
    #[arg(long, env = "HALLWAY_SIGNIN_ADDRESS_REFILL", value_name = "SECS", help_heading = "Accounts", default_value_t = config::DEFAULT_SIGNIN_ADDRESS_REFILL_SECS)]
    pub signin_address_refill: u64,
    /// Write a checked backup into this folder every day (every hour with hourly ones kept),
    /// removing older ones as --backup-keep says.
    #[arg(long, env = "HALLWAY_BACKUP_DIR", value_name = "DIR", help_heading = "Backups")]
    pub backup_dir: Option<PathBuf>,
    /// Which scheduled backups stay: the newest of each of the last N hours, days, weeks or
    /// months, e.g. "7 daily, 4 weekly" or "24 hourly, 14 daily, 12 monthly".
    #[arg(long, env = "HALLWAY_BACKUP_KEEP", value_name = "RULE", help_heading = "Backups", default_value = config::DEFAULT_BACKUP_KEEP)]
    pub backup_keep: crate::backups::Keep,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve (the default when no command is given).
    Serve,
    /// Print the configuration in effect (TOML) and where each value came from: a flag, an
    /// environment variable, the configuration file or the default.
    Config,
    /// Manage accounts (while the server is stopped).
    #[command(subcommand)]
    User(UserCommand),
    /// Purge what each conversation may no longer keep under --records (while the server is
    /// stopped; the running server does this on its own), leaving no byte of it in the file.
    Purge,
    /// Rewrite the data file from what it holds now (while the server is stopped): its free
    /// space goes back to the disk, and no byte of deleted or purged messages is left in it.
    Compact {
        /// The data file (defaults to --data).
        file: Option<PathBuf>,
    },
    /// Write a checked copy of the data file to OUT_FILE (a new file), whether the server is
    /// running (it makes the copy, as its own user) or stopped.
    Backup {
        #[arg(value_name = "OUT_FILE")]
        out: PathBuf,
    },
    /// Put a backup in the data file's place (while the server is stopped); the file it
    /// replaces is kept beside it as DATA.replaced-YYYYMMDD-HHMMSS.
    Restore {
        #[arg(value_name = "BACKUP_FILE")]
        backup: PathBuf,
    },
    /// Check a data file or a backup: every page, every record, every index against its
    /// table. Exits non-zero on any problem.
    Check {
        /// The file to check (defaults to --data; a running server's file: check a backup of it).
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is asked for (or read from standard input).
    Add {
        name: String,
        /// The name colleagues see (defaults to NAME).
        #[arg(long, default_value = "")]
        display_name: String,
        /// admin, reviewer or member.
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
    },
    /// List every account.
    List,
    /// Set a new password for an account.
    Passwd { name: String },
    /// Turn an account off: it can no longer sign in, and its sessions end.
    Disable { name: String },
    /// Let a disabled account sign in again.
    Enable { name: String },
    /// Give an account another role (the last admin keeps theirs).
    Role {
        name: String,
        /// admin, reviewer or member.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
}

/// The chat core over a stopped server's file, so that the command line changes accounts
/// by the same rules as the admin page (`core/hub/accounts.rs`).
struct CliCore {
    hub: Hub,
    hub_task: tokio::task::JoinHandle<()>,
    writer: Writer,
    writer_thread: crate::store::writer::WriterThread,
}

impl CliCore {
    fn start(store: &Store, key: ContentKey) -> anyhow::Result<CliCore> {
        let (writer, writer_thread) = Writer::start(store.clone());
        let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), Settings::default())?;
        Ok(CliCore { hub, hub_task, writer, writer_thread })
    }

    /// Stops the core and the writer: everything it was asked is on disk.
    async fn stop(self) {
        self.hub.shutdown().await;
        let _ = self.hub_task.await;
        drop(self.hub);
        self.writer_thread.stop(self.writer).await;
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "admin" => Ok(Role::Admin),
        "reviewer" => Ok(Role::Reviewer),
        "member" => Ok(Role::Member),
        _ => Err("the role is admin, reviewer or member".into()),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None | Some(Command::Serve) => serve(cli.data, cli.serve).await,
        // Printed by `main`, which holds what the configuration was made of.
        Some(Command::Config) => Ok(()),
        Some(Command::User(command)) => user(cli.data, command).await,
        Some(Command::Compact { file }) => compact(file.unwrap_or(cli.data)),
        Some(Command::Purge) => purge(cli.data, cli.serve.records).await,
        Some(Command::Backup { out }) => backup(cli.data, out).await,
        Some(Command::Restore { backup }) => restore(cli.data, backup),
        Some(Command::Check { file }) => check(file.unwrap_or(cli.data)),
    }
}

async fn serve(data: PathBuf, args: ServeArgs) -> anyhow::Result<()> {
    // Every open tab is a socket: allow as many as the system's hard limit.
    let fds = raise_fd_limit();
    tracing::info!(open_file_limit = fds, "raised the open-file limit to the system's hard limit");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}; choose another with --listen ADDR:PORT", args.listen))?;
    let limits = if args.no_rate_limits { RateLimits::unlimited() } else { RateLimits::default() };
    let config = Config {
        max_frame: args.max_frame,
        max_file_size: args.max_file_size,
        https: args.https.then(|| args.name.clone()),
        mdns: (!args.no_mdns).then_some(discovery::Options {
            name: args.name,
            interfaces: args.mdns_interface,
            https: args.https,
        }),
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        signin_address_burst: args.signin_address_burst,
        signin_address_refill: Duration::from_secs(args.signin_address_refill),
        records: args.records.unwrap_or(Policy::Keep),
        records_fixed: args.records.is_some(),
        records_buffer: Duration::from_secs(args.records_buffer),
        metrics_listen: args.metrics_listen,
        session_idle: Duration::from_secs(args.session_idle_days * 24 * 3600),
        limits,
        backup: args.backup_dir.map(|dir| crate::backups::Schedule { dir, keep: args.backup_keep }),
        ..Config::new(data.clone())
    };
    let mut signals = StopSignals::new()?;
    let mut server = Server::start(listener, config).await.map_err(explain_in_use)?;
    let addr = server.local_addr();
    let tls = server.tls();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut urls = urls(addr, scheme);
    if let Some(name) = server.mdns_name() {
        // Probing the name on the LAN takes about a second; print the one that won.
        let name = tokio::task::spawn_blocking(move || name.settled(Duration::from_secs(3))).await.unwrap_or_default();
        if !name.is_empty() {
            urls.insert(0, format!("{scheme}://{name}:{}", addr.port()));
        }
    }
    // One block a newcomer can read at a glance: where to go, what to do first, where the
    // data is, how to stop.
    let data_shown = std::fs::canonicalize(&data).unwrap_or_else(|_| data.clone());
    println!();
    println!("Hallway {} is serving on {addr}", env!("CARGO_PKG_VERSION"));
    for (i, url) in urls.iter().enumerate() {
        let this_machine = if url.contains("://localhost:") { " (on this machine)" } else { "" };
        println!("  {:<12} {url}/{this_machine}", if i == 0 { "Open:" } else { "" });
    }
    if let Some(tls) = &tls {
        // Over plain HTTP: a browser that does not trust the server yet can fetch it.
        let plain = urls[0].replacen("https://", "http://", 1);
        println!("  {:<12} each device installs this server's certificate once, from {plain}/ca", "HTTPS:");
        println!("  {:<12} its SHA-256 fingerprint: {}", "", tls.fingerprint());
    }
    println!("  {:<12} {}", "Data file:", data_shown.display());
    if let Some(token) = server.setup_token() {
        println!("  {:<12} this one-time link creates the first admin account:", "First start:");
        println!("  {:<12} {}/setup#{token}", "", urls[0]);
    }
    if let Some(metrics) = server.metrics_addr() {
        println!("  {:<12} http://{metrics}/metrics (Prometheus, no sign-in)", "Metrics:");
    }
    println!("Press Ctrl-C to stop (tabs are told, everything is written, then the server exits).");
    println!();
    let _ = std::io::stdout().flush();
    let core_ended = tokio::select! {
        () = signals.recv() => false,
        () = server.core_ended() => true,
    };
    println!("Shutting down (a second Ctrl-C stops at once)...");
    let _ = std::io::stdout().flush();
    tokio::select! {
        () = server.shutdown() => {}
        () = signals.recv() => {
            // Every acknowledged change is already durable (acks follow the fsync), so
            // stopping here loses only answers to tabs, which resend.
            tracing::warn!("second stop signal: exiting without finishing the shutdown");
            eprintln!("hallway: stopped at once (second signal); acknowledged messages are on disk");
            std::process::exit(130);
        }
    }
    if core_ended {
        // Exit non-zero so that a service manager restarts the server.
        anyhow::bail!("the chat core stopped after an internal error (see the log above); restart the server");
    }
    Ok(())
}

/// Raises this process's soft limit of open files to its hard limit; returns the new limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The addresses people can open: the listen address, or for 0.0.0.0 every LAN one and then
/// localhost (for this machine only).
fn urls(addr: SocketAddr, scheme: &str) -> Vec<String> {
    let port = addr.port();
    if !addr.ip().is_unspecified() {
        return vec![format!("{scheme}://{addr}")];
    }
    let mut urls = Vec::new();
    for ip in discovery::lan_addresses(addr) {
        match ip {
            std::net::IpAddr::V4(ip) => urls.push(format!("{scheme}://{ip}:{port}")),
            std::net::IpAddr::V6(ip) if !ip.is_unicast_link_local() => urls.push(format!("{scheme}://[{ip}]:{port}")),
            std::net::IpAddr::V6(_) => {}
        }
    }
    urls.push(format!("{scheme}://localhost:{port}"));
    urls
}

/// SIGTERM (a service manager stopping the server) and SIGINT (Ctrl-C), registered once so
/// that a second one during the shutdown is not missed.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(StopSignals { term, int })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn explain_in_use(e: anyhow::Error) -> anyhow::Error {
    if let Some(StoreError::InUse(path)) = e.downcast_ref::<StoreError>() {
        return anyhow::anyhow!("the data file {path} is already open: another hallway is running with it");
    }
    e
}

fn open_for_cli(data: &std::path::Path) -> anyhow::Result<(Store, ContentKey)> {
    match Store::open_with_key(data) {
        Ok(opened) => Ok(opened),
        Err(StoreError::InUse(_)) => bail!(
            "the server is running with {}. Manage accounts in the web client (signed in as an admin: \
             the Add user form), or stop the server and run this command again.",
            data.display()
        ),
        Err(e) => Err(e).with_context(|| format!("opening the data file {}", data.display())),
    }
}

async fn user(data: PathBuf, command: UserCommand) -> anyhow::Result<()> {
    // The key goes to the chat core, the one reader of message content (`core::access`).
    let (store, key) = open_for_cli(&data)?;
    match command {
        UserCommand::List => {
            let users = store.users()?;
            if users.is_empty() {
                println!("No accounts yet: start the server and open the setup link it prints.");
            }
            for (id, user) in users {
                let role = format!("{:?}", user.role).to_lowercase();
                let disabled = if user.disabled { "  (disabled)" } else { "" };
                println!("{:>5}  {:<32}  {:<8}  {}{disabled}", id, user.name, role, user.display_name);
            }
        }
        UserCommand::Add { name, display_name, role } => {
            let password = read_password(&format!("Password for {name}: "), true)?;
            let record = new_account(&name, &display_name, &password, role).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            // Create the account through the chat core, so it joins #general exactly as an
            // account made in the web client does.
            let core = CliCore::start(&store, key)?;
            let created = core.hub.create_user(record).await;
            core.stop().await;
            let user = created.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Created {} ({}) with id {}.", user.name, format!("{:?}", user.role).to_lowercase(), user.id);
        }
        UserCommand::Passwd { name } => {
            let Some((id, mut record)) = store.user_by_name(&name)? else {
                bail!("there is no account named {name}; `hallway user list` shows them");
            };
            let password = read_password(&format!("New password for {name}: "), true)?;
            if password.chars().count() < crate::auth::MIN_PASSWORD {
                bail!("a password needs at least {} characters", crate::auth::MIN_PASSWORD);
            }
            record.password_hash = crate::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e))?;
            let sessions = store.session_count(id)?;
            // A new password signs the account out everywhere: whoever knew the old one is out.
            store.apply_now(vec![Change::PutUser(id, record), Change::DeleteUserSessions { user: id, except: None }])?;
            println!("Password of {name} changed; {sessions} signed-in browser(s) signed out.");
        }
        UserCommand::Disable { name } => {
            let id = account_id(&store, &name)?;
            let sessions = store.session_count(id)?;
            change_account(&store, key, id, AccountChange::Disable).await?;
            println!("Disabled {name}: it can no longer sign in; {sessions} signed-in browser(s) signed out.");
        }
        UserCommand::Enable { name } => {
            change_account(&store, key, account_id(&store, &name)?, AccountChange::Enable).await?;
            println!("Enabled {name}: it can sign in again.");
        }
        UserCommand::Role { name, role } => {
            let user = change_account(&store, key, account_id(&store, &name)?, AccountChange::Role(role)).await?;
            println!("{name} is now {}.", format!("{:?}", user.role).to_lowercase());
        }
    }
    Ok(())
}

fn account_id(store: &Store, name: &str) -> anyhow::Result<crate::model::UserId> {
    match store.user_by_name(name)? {
        Some((id, _)) => Ok(id),
        None => bail!("there is no account named {name}; `hallway user list` shows them"),
    }
}

async fn change_account(
    store: &Store,
    key: ContentKey,
    id: crate::model::UserId,
    change: AccountChange,
) -> anyhow::Result<crate::protocol::User> {
    let core = CliCore::start(store, key)?;
    let changed = core.hub.change_account(By::Console, id, change).await;
    core.stop().await;
    changed.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Asks on the terminal without echo (twice, to catch typos), or reads one line from a pipe.
fn read_password(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        if confirm && rpassword::prompt_password("Again: ")? != first {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}
