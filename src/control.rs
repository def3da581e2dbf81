//! The control socket: how `hallway backup` reaches the server that has the data file open.
//!
//! A Unix socket beside the data file (`hallway.redb.sock` for `hallway.redb`), never a
//! network port: it is created mode 0600 (bound under a temporary name, restricted, then
//! renamed into place, so it is never reachable by others even for a moment), and a peer
//! whose user is neither the server's nor root is turned away (`SO_PEERCRED`). One request
//! per connection, one JSON line each way. A socket left by a server that crashed is stale:
//! the server that opens the data file next holds redb's lock on it, so no other server can be
//! listening there, and it replaces the socket. A clean shutdown removes it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::backups::Backups;

/// The longest request line read; a path fits easily.
const MAX_REQUEST: u64 = 16 * 1024;

/// The socket of the server that has `data` open.
pub fn socket_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sock");
    data.with_file_name(name)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Is a server there?
    Ping,
    /// Write a checked backup to `to` (absolute, must not exist), as the server's user.
    Backup { to: PathBuf },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// Why not, in words for the admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub entries: u64,
    /// `pages` or `tables` (`store::backup::Method`).
    #[serde(default)]
    pub method: String,
    /// Time to copy the file, and to check the copy.
    #[serde(default)]
    pub copy_millis: u64,
    #[serde(default)]
    pub check_millis: u64,
}

/// The listening socket; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlSocket {
    /// Listens beside `data`, which this process must already hold open (redb's lock): any
    /// socket found there is then stale. Something else at that name is left alone.
    pub fn bind(data: &Path, backups: Backups) -> std::io::Result<ControlSocket> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let path = socket_path(data);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                tracing::info!(path = %path.display(), "removing the control socket a server left when it stopped uncleanly");
                std::fs::remove_file(&path)?;
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket; move it away", path.display()),
                ));
            }
            Err(_) => {}
        }
        let mut temp = path.as_os_str().to_os_string();
        temp.push(format!(".{}", std::process::id()));
        let temp = PathBuf::from(temp);
        let _ = std::fs::remove_file(&temp);
        let listener = UnixListener::bind(&temp)?;
        let placed =
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        let task = tokio::spawn(accept(listener, backups));
        Ok(ControlSocket { path, task })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn accept(listener: UnixListener, backups: Backups) {
    // SAFETY: a plain system call without arguments.
    let own = unsafe { libc::geteuid() };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "the control socket could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = stream.peer_cred().map(|c| c.uid());
        if !matches!(uid, Ok(uid) if uid == own || uid == 0) {
            tracing::warn!(peer_uid = ?uid.ok(), "refused a control connection from another account");
            continue;
        }
        tokio::spawn(serve(stream, backups.clone()));
    }
}

async fn serve(stream: UnixStream, backups: Backups) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut read = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let reply = match read.read_line(&mut line).await {
        Err(e) => Reply { error: Some(format!("reading the request: {e}")), ..Reply::default() },
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply { error: Some(format!("not a request this server knows: {e}")), ..Reply::default() },
            Ok(Request::Ping) => Reply { ok: true, ..Reply::default() },
            Ok(Request::Backup { to }) if !to.is_absolute() => {
                Reply { error: Some(format!("{} is not an absolute path", to.display())), ..Reply::default() }
            }
            Ok(Request::Backup { to }) => {
                tracing::info!(to = %to.display(), "a backup was asked for on the control socket");
                match backups.backup_to(to).await {
                    Ok(copied) => Reply {
                        ok: true,
                        error: None,
                        bytes: copied.bytes,
                        entries: copied.entries,
                        method: copied.method.as_str().into(),
                        copy_millis: copied.copying.as_millis() as u64,
                        check_millis: copied.checking.as_millis() as u64,
                    },
                    Err(e) => Reply { error: Some(e.to_string()), ..Reply::default() },
                }
            }
        },
    };
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    bytes.push(b'\n');
    let _ = write.write_all(&bytes).await;
}

/// What asking the server found.
pub enum Asked {
    /// No server listens beside the data file (no socket, or a stale one).
    NoServer,
    Replied(Reply),
}

/// Asks the server that has `data` open (blocking: for the command line).
pub fn ask(data: &Path, request: &Request) -> anyhow::Result<Asked> {
    let path = socket_path(data);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(Asked::NoServer);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "the running server's control socket {} is not ours to use: run this command as the account the \
             server runs as (or as root)",
            path.display()
        ),
        Err(e) => anyhow::bail!("cannot reach the running server on {}: {e}", path.display()),
    };
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        anyhow::bail!(
            "the server on {} closed the connection without an answer (it may have stopped, or it refused this \
             account); see its log",
            path.display()
        );
    }
    Ok(Asked::Replied(serde_json::from_str(&answer)?))
}
