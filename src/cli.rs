//! The command line: `hallway` serves; `hallway user ...` manages accounts (add, list,
//! passwd, disable, enable, role) and `hallway compact` rewrites the data file while the
//! server is stopped. Each option is declared once here with its environment variable; defaults
//! live in `config.rs`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::core::records::Policy;
use crate::core::{AccountChange, By, Hub, Settings, new_account};
use crate::limits::RateLimits;
use crate::model::Role;
use crate::server::Server;
use crate::store::writer::Writer;
use crate::store::{Change, ContentKey, Store, StoreError};

#[derive(Parser, Debug)]
#[command(name = "hallway", version, about = "The office chat appliance: one binary, one data file.")]
pub struct Cli {
    /// The data file (created if missing).
    #[arg(long, global = true, env = "HALLWAY_DATA", default_value = config::DEFAULT_DATA)]
    pub data: PathBuf,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "HALLWAY_LISTEN", default_value_t = config::default_listen())]
    pub listen: SocketAddr,
    /// Do not announce the server on the LAN over mDNS.
    #[arg(long, env = "HALLWAY_NO_MDNS")]
    pub no_mdns: bool,
    /// Largest WebSocket frame or request body, in bytes.
    #[arg(long, env = "HALLWAY_MAX_FRAME", default_value_t = config::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Turn off the per-tab and per-person rate limits (for load tests of the server itself;
    /// never on an office's server: one broken client could then stall everyone).
    #[arg(long, env = "HALLWAY_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// What is kept of conversations: off (nothing ever reaches the disk), keep (each
    /// conversation chooses), retain:DAYS (at most DAYS days) or archive (everything, for a
    /// compliance reviewer; nobody can turn it off).
    #[arg(long, env = "HALLWAY_RECORDS", default_value = "keep")]
    pub records: Policy,
    /// Seconds a message that is not recorded stays in memory for tabs catching up.
    #[arg(long, env = "HALLWAY_RECORDS_BUFFER", default_value_t = config::DEFAULT_RECORDS_BUFFER.as_secs())]
    pub records_buffer: u64,
    /// Days a signed-in browser may go unused before its session ends.
    #[arg(long, env = "HALLWAY_SESSION_IDLE_DAYS", default_value_t = config::DEFAULT_SESSION_IDLE_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub session_idle_days: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "HALLWAY_HEADER_TIMEOUT", default_value_t = config::DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "HALLWAY_IDLE_TIMEOUT", default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Connections open at once (0: as many as the open-file limit allows).
    #[arg(long, env = "HALLWAY_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections open at once from one address (0: no cap).
    #[arg(long, env = "HALLWAY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Failed sign-ins one address may make at once (browsers without a device cookie).
    #[arg(long, env = "HALLWAY_SIGNIN_ADDRESS_BURST", default_value_t = config::DEFAULT_SIGNIN_ADDRESS_BURST)]
    pub signin_address_burst: u32,
    /// Seconds until an address may make one more failed sign-in once its burst is spent.
    #[arg(long, env = "HALLWAY_SIGNIN_ADDRESS_REFILL", default_value_t = config::DEFAULT_SIGNIN_ADDRESS_REFILL_SECS)]
    pub signin_address_refill: u64,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve (the default when no command is given).
    Serve,
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
        Some(Command::User(command)) => user(cli.data, command).await,
        Some(Command::Compact { file }) => compact(file.unwrap_or(cli.data)),
        Some(Command::Purge) => purge(cli.data, cli.serve.records).await,
    }
}

async fn purge(data: PathBuf, records: Policy) -> anyhow::Result<()> {
    let (store, key) = open_for_cli(&data)?;
    let (writer, writer_thread) = Writer::start(store.clone());
    let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), Settings { records, ..Settings::default() })?;
    let purged = hub.purge(crate::model::now_millis()).await;
    hub.shutdown().await;
    let _ = hub_task.await;
    writer_thread.stop(writer).await;
    drop(store);
    // A purge that removed something also rewrote the file, so no byte of it is left.
    println!("Purged {purged} messages past what their conversations keep (--records {records}).");
    Ok(())
}

fn compact(data: PathBuf) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("there is no data file {}", data.display());
    }
    let store = match Store::open(&data) {
        Ok(store) => store,
        Err(StoreError::InUse(_)) => {
            bail!("the server is running with {}; stop it, then run hallway compact again", data.display())
        }
        Err(e) => return Err(e).with_context(|| format!("opening the data file {}", data.display())),
    };
    let done = store.vacuum().with_context(|| format!("compacting {}", data.display()))?;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "Compacted {}: {:.1} MiB -> {:.1} MiB ({} entries) in {:.1} s.",
        data.display(),
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.total.as_secs_f64()
    );
    Ok(())
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
        mdns: !args.no_mdns,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        signin_address_burst: args.signin_address_burst,
        signin_address_refill: Duration::from_secs(args.signin_address_refill),
        records: args.records,
        records_buffer: Duration::from_secs(args.records_buffer),
        session_idle: Duration::from_secs(args.session_idle_days * 24 * 3600),
        limits,
        ..Config::new(data.clone())
    };
    let mut server = Server::start(listener, config).await.map_err(explain_in_use)?;
    let addr = server.local_addr();
    println!("Hallway is serving on {addr} with data file {}", data.display());
    let urls = urls(addr);
    for url in &urls {
        println!("  open {url}/");
    }
    if let Some(token) = server.setup_token() {
        println!("First start: create the admin account at {}/setup#{token}", urls[0]);
        println!("  (this link works once)");
    }
    println!("Press Ctrl-C to stop.");
    let _ = std::io::stdout().flush();
    let core_ended = tokio::select! {
        () = shutdown_signal() => false,
        () = server.core_ended() => true,
    };
    println!("Shutting down...");
    server.shutdown().await;
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

/// The addresses people can open: the listen address, or every local one for 0.0.0.0.
fn urls(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    if !addr.ip().is_unspecified() {
        return vec![format!("http://{addr}")];
    }
    let mut urls = vec![format!("http://localhost:{port}")];
    if let Ok(interfaces) = if_addrs::get_if_addrs() {
        for interface in interfaces.iter().filter(|i| !i.is_loopback()) {
            match interface.ip() {
                std::net::IpAddr::V4(ip) if addr.is_ipv4() => urls.push(format!("http://{ip}:{port}")),
                std::net::IpAddr::V6(ip) if addr.is_ipv6() && !ip.is_unicast_link_local() => {
                    urls.push(format!("http://[{ip}]:{port}"))
                }
                _ => {}
            }
        }
    }
    urls
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
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
